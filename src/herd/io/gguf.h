// GGUF v3 files (llama.cpp's format), little-endian: written to hand herd's checkpoints to
// llama.cpp for conformance tests, read back for tests and (later) import.
//
// Layout (ggml/docs/gguf.md; ggml/src/gguf.cpp is the reader that must accept our files):
//   "GGUF"  u32 version=3  u64 n_tensors  u64 n_kv
//   n_kv x      { string key, u32 value_type, value }
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   zero padding to `general.alignment` (default 32), then the data section: each tensor at
//   its offset (relative to the section start), tensors back to back, each padded to the
//   alignment.
// A string is u64 length + bytes (no NUL); an array is u32 element type + u64 count + elements.
// `ne` is in GGML order: ne[0] is the contiguous axis, i.e. the PyTorch shape reversed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "herd/base/mapped_file.h"
#include "herd/base/status.h"

namespace herd::gguf {

inline constexpr uint32_t kVersion = 3;
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr size_t kMaxNameLength = 63;  // ggml's GGML_MAX_NAME (64) includes the NUL
inline constexpr size_t kMaxDims = 4;         // GGML_MAX_DIMS

enum class ValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
// Bytes of one element of a fixed-size type; 0 for string / array / unknown.
size_t value_type_size(ValueType t);
const char* value_type_name(ValueType t);

// Tensor element types we write (ggml_type numbering); others are read but not interpreted.
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kI32 = 26, kBF16 = 30 };
size_t ggml_type_size(GgmlType t);  // 0 when unknown to herd
// Any ggml type id (gguf_types.cc): its name ("Q4_K"; "unknown" for ids ggml never had or
// removed), elements per block, and the bytes of a row of ne0 elements (0 when the id is
// unknown or ne0 is not a whole number of blocks).
const char* ggml_type_name(uint32_t type);
uint32_t ggml_block_size(uint32_t type);
uint64_t ggml_row_bytes(uint32_t type, int64_t ne0);

// One metadata value: a scalar, a string, or a flat array of either (GGUF allows nested
// arrays; llama.cpp never uses them and neither do we). Numbers are kept as their exact bytes,
// so every type round-trips.
class Value {
 public:
  Value() = default;
  static Value u8(uint8_t v) { return scalar(ValueType::kU8, &v, 1); }
  static Value i8(int8_t v) { return scalar(ValueType::kI8, &v, 1); }
  static Value u16(uint16_t v) { return scalar(ValueType::kU16, &v, 2); }
  static Value i16(int16_t v) { return scalar(ValueType::kI16, &v, 2); }
  static Value u32(uint32_t v) { return scalar(ValueType::kU32, &v, 4); }
  static Value i32(int32_t v) { return scalar(ValueType::kI32, &v, 4); }
  static Value f32(float v) { return scalar(ValueType::kF32, &v, 4); }
  static Value u64(uint64_t v) { return scalar(ValueType::kU64, &v, 8); }
  static Value i64(int64_t v) { return scalar(ValueType::kI64, &v, 8); }
  static Value f64(double v) { return scalar(ValueType::kF64, &v, 8); }
  static Value boolean(bool v) {
    uint8_t b = v ? 1 : 0;
    return scalar(ValueType::kBool, &b, 1);
  }
  static Value string(std::string s);
  static Value strings(std::vector<std::string> v);
  static Value i32s(std::span<const int32_t> v) {
    return numbers(ValueType::kI32, v.data(), v.size());
  }
  static Value u32s(std::span<const uint32_t> v) {
    return numbers(ValueType::kU32, v.data(), v.size());
  }
  static Value f32s(std::span<const float> v) {
    return numbers(ValueType::kF32, v.data(), v.size());
  }
  static Value i64s(std::span<const int64_t> v) {
    return numbers(ValueType::kI64, v.data(), v.size());
  }
  // A scalar of any fixed-size type from its little-endian bytes.
  static Value scalar_bytes(ValueType t, const void* bytes) {
    return scalar(t, bytes, value_type_size(t));
  }
  // An array of any fixed-size element type from its little-endian bytes.
  static Value numbers(ValueType elem, const void* data, size_t count);

  ValueType type() const { return type_; }
  bool is_array() const { return type_ == ValueType::kArray; }
  ValueType array_type() const { return elem_; }  // meaningful when is_array()
  size_t array_size() const;

  // Scalar accessors; false when the value is not a scalar of a compatible kind.
  bool get_int(int64_t* out) const;       // any integer type or bool (u64 above INT64_MAX fails)
  bool get_float(double* out) const;      // f32 / f64 / any integer
  const std::string* get_string() const;  // kString only
  // Array accessors; false when the value is not an array of a compatible kind.
  const std::vector<std::string>* get_strings() const;
  bool get_ints(std::vector<int64_t>* out) const;
  bool get_floats(std::vector<double>* out) const;

  std::string describe() const;  // "u32 32", "array[string; 3]" — for messages and dumps
  bool operator==(const Value& o) const;

 private:
  friend class Writer;
  friend class Reader;
  static Value scalar(ValueType t, const void* bytes, size_t n);
  // Element i of a numeric scalar (raw_ holds one element) or array, widened.
  bool int_at(size_t i, int64_t* out) const;
  bool float_at(size_t i, double* out) const;

  ValueType type_ = ValueType::kU8;
  ValueType elem_ = ValueType::kU8;  // element type of scalars too (== type_)
  std::vector<uint8_t> raw_;         // numeric scalar / array bytes, little-endian
  std::string str_;                  // kString
  std::vector<std::string> strs_;    // array of strings
};

struct KeyValue {
  std::string key;
  Value value;
};

// Receives one tensor's bytes in order, in chunks of any size.
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  virtual Status write(const void* data, size_t nbytes) = 0;
};
// Produces one tensor's bytes: must write exactly the tensor's size in total.
using TensorFill = std::function<Status(TensorSink& out)>;

// Streaming writer: metadata and tensor descriptions are collected first; write() then emits
// the header and calls each tensor's fill in order, so no tensor is ever held whole in memory.
class Writer {
 public:
  explicit Writer(uint32_t alignment = kDefaultAlignment);
  // Adds or replaces a key (order of first insertion is kept). `general.alignment` is always
  // written, first, from the constructor argument.
  void set(const std::string& key, Value value);
  // ne in GGML order (PyTorch shape reversed). Checks name length, duplicates, dims 1..4.
  Status add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                    TensorFill fill);
  // Writes the whole file (to path + ".tmp", renamed on success: a failed export leaves no
  // half-written file behind).
  Status write(const std::string& path);

  const std::vector<KeyValue>& metadata() const { return kv_; }
  uint64_t data_bytes() const;  // padded size of the data section

 private:
  struct PendingTensor {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type;
    uint64_t nbytes;
    uint64_t offset;
    TensorFill fill;
  };
  uint32_t alignment_;
  std::vector<KeyValue> kv_;
  std::vector<PendingTensor> tensors_;
};

// A tensor as read from a file; `data` points into the mapping.
struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // GGML order
  uint32_t type = 0;        // ggml_type (ggml_type_name)
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;      // 0 when the type id is unknown
  const uint8_t* data = nullptr;
};

// Reads and validates a whole GGUF file: every length, count and offset is checked against the
// file size before use; errors name the file and the key or tensor.
class Reader {
 public:
  static Result<Reader> open(const std::string& path);
  // Parses bytes owned by the caller (kept alive while the Reader is used).
  static Result<Reader> parse(const uint8_t* data, size_t size, const std::string& source);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;

 private:
  MappedFile file_;  // empty when parse() was given caller-owned bytes
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace herd::gguf
