// gguf::Value: metadata values kept as their exact little-endian bytes (see gguf.h).
#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "herd/io/gguf.h"

namespace herd::gguf {

size_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kBool:
      return 1;
    case ValueType::kU16:
    case ValueType::kI16:
      return 2;
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kF32:
      return 4;
    case ValueType::kU64:
    case ValueType::kI64:
    case ValueType::kF64:
      return 8;
    default:
      return 0;
  }
}

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kU8:
      return "u8";
    case ValueType::kI8:
      return "i8";
    case ValueType::kU16:
      return "u16";
    case ValueType::kI16:
      return "i16";
    case ValueType::kU32:
      return "u32";
    case ValueType::kI32:
      return "i32";
    case ValueType::kF32:
      return "f32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kU64:
      return "u64";
    case ValueType::kI64:
      return "i64";
    case ValueType::kF64:
      return "f64";
  }
  return "unknown";
}

size_t ggml_type_size(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
    case GgmlType::kI32:
      return 4;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return 2;
  }
  return 0;
}

Value Value::scalar(ValueType t, const void* bytes, size_t n) {
  Value v;
  v.type_ = v.elem_ = t;
  v.raw_.assign(static_cast<const uint8_t*>(bytes), static_cast<const uint8_t*>(bytes) + n);
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = v.elem_ = ValueType::kString;
  v.str_ = std::move(s);
  return v;
}

Value Value::strings(std::vector<std::string> list) {
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_ = ValueType::kString;
  v.strs_ = std::move(list);
  return v;
}

Value Value::numbers(ValueType elem, const void* data, size_t count) {
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_ = elem;
  const size_t n = count * value_type_size(elem);
  v.raw_.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + n);
  return v;
}

size_t Value::array_size() const {
  if (!is_array()) return 0;
  if (elem_ == ValueType::kString) return strs_.size();
  const size_t es = value_type_size(elem_);
  return es ? raw_.size() / es : 0;
}

template <typename T>
static T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool Value::int_at(size_t i, int64_t* out) const {
  if ((i + 1) * value_type_size(elem_) > raw_.size()) return false;  // also: no value at all
  const uint8_t* p = raw_.data() + i * value_type_size(elem_);
  switch (elem_) {
    case ValueType::kU8:
    case ValueType::kBool:
      *out = p[0];
      return true;
    case ValueType::kI8:
      *out = load<int8_t>(p);
      return true;
    case ValueType::kU16:
      *out = load<uint16_t>(p);
      return true;
    case ValueType::kI16:
      *out = load<int16_t>(p);
      return true;
    case ValueType::kU32:
      *out = load<uint32_t>(p);
      return true;
    case ValueType::kI32:
      *out = load<int32_t>(p);
      return true;
    case ValueType::kI64:
      *out = load<int64_t>(p);
      return true;
    case ValueType::kU64: {
      const uint64_t u = load<uint64_t>(p);
      if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
      *out = int64_t(u);
      return true;
    }
    default:
      return false;
  }
}

bool Value::float_at(size_t i, double* out) const {
  if ((i + 1) * value_type_size(elem_) > raw_.size()) return false;
  const uint8_t* p = raw_.data() + i * value_type_size(elem_);
  if (elem_ == ValueType::kF32) {
    *out = load<float>(p);
    return true;
  }
  if (elem_ == ValueType::kF64) {
    *out = load<double>(p);
    return true;
  }
  if (elem_ == ValueType::kU64) {
    *out = double(load<uint64_t>(p));
    return true;
  }
  int64_t v;
  if (!int_at(i, &v)) return false;
  *out = double(v);
  return true;
}

bool Value::get_int(int64_t* out) const {
  return !is_array() && int_at(0, out);
}
bool Value::get_float(double* out) const {
  return !is_array() && float_at(0, out);
}
const std::string* Value::get_string() const {
  return type_ == ValueType::kString ? &str_ : nullptr;
}
const std::vector<std::string>* Value::get_strings() const {
  return is_array() && elem_ == ValueType::kString ? &strs_ : nullptr;
}

bool Value::get_ints(std::vector<int64_t>* out) const {
  if (!is_array() || elem_ == ValueType::kString) return false;
  out->resize(array_size());
  for (size_t i = 0; i < out->size(); ++i)
    if (!int_at(i, &(*out)[i])) return false;
  return true;
}

bool Value::get_floats(std::vector<double>* out) const {
  if (!is_array() || elem_ == ValueType::kString) return false;
  out->resize(array_size());
  for (size_t i = 0; i < out->size(); ++i)
    if (!float_at(i, &(*out)[i])) return false;
  return true;
}

std::string Value::describe() const {
  if (is_array()) return fmt::format("array[{}; {}]", value_type_name(elem_), array_size());
  if (type_ == ValueType::kString) return fmt::format("string \"{}\"", str_);
  double f;
  int64_t i;
  if ((type_ == ValueType::kF32 || type_ == ValueType::kF64) && get_float(&f))
    return fmt::format("{} {}", value_type_name(type_), f);
  if (type_ == ValueType::kU64) return fmt::format("u64 {}", load<uint64_t>(raw_.data()));
  if (get_int(&i)) return fmt::format("{} {}", value_type_name(type_), i);
  return value_type_name(type_);
}

bool Value::operator==(const Value& o) const {
  return type_ == o.type_ && elem_ == o.elem_ && raw_ == o.raw_ && str_ == o.str_ &&
         strs_ == o.strs_;
}

}  // namespace herd::gguf
