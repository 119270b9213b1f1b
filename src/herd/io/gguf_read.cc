// gguf::Reader: parses a mapped GGUF file, checking every length against the bytes left
// before using it (a corrupt or hostile file must give an error, never a crash). The rules are
// those of ggml's own reader (ggml/src/gguf.cpp): unique keys and tensor names, names shorter
// than 64 bytes, 1..4 dimensions, u32 power-of-two `general.alignment`, tensors laid out back
// to back at their padded offsets.
#include <fmt/format.h>

#include <cstring>
#include <unordered_set>

#include "herd/io/gguf.h"

namespace herd::gguf {
namespace {

// Cursor over the file bytes; every read checks the remaining length.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& source)
      : p_(data), size_(size), source_(source) {}

  template <typename T>
  Status read(T* out, const char* what) {
    if (size_ - pos_ < sizeof(T)) return truncated(what);
    std::memcpy(out, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }
  Status read_string(std::string* out, const char* what) {
    uint64_t n = 0;
    HERD_TRY(read(&n, what));
    if (n > size_ - pos_) return truncated(what);
    out->assign(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += size_t(n);
    return Status::ok();
  }
  Status read_bytes(std::vector<uint8_t>* out, uint64_t count, size_t elem, const char* what) {
    if (elem && count > (size_ - pos_) / elem) return truncated(what);
    out->assign(p_ + pos_, p_ + pos_ + size_t(count * elem));
    pos_ += size_t(count * elem);
    return Status::ok();
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

 private:
  Status truncated(const char* what) const {
    return make_error("{}: GGUF file truncated or corrupt while reading {} at byte {}", source_,
                      what, pos_);
  }
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& source_;
};

Status read_value(Cursor& c, const std::string& source, const std::string& key, Value* out) {
  uint32_t type = 0;
  HERD_TRY(c.read(&type, "a value type"));
  if (type > uint32_t(ValueType::kF64))
    return make_error("{}: key {} has unknown value type {}", source, key, type);
  const ValueType t = ValueType(type);
  if (t == ValueType::kString) {
    std::string s;
    HERD_TRY(c.read_string(&s, "a string value"));
    *out = Value::string(std::move(s));
    return Status::ok();
  }
  if (t != ValueType::kArray) {
    std::vector<uint8_t> raw;
    HERD_TRY(c.read_bytes(&raw, 1, value_type_size(t), "a scalar value"));
    *out = Value::scalar_bytes(t, raw.data());
    return Status::ok();
  }
  uint32_t elem = 0;
  uint64_t n = 0;
  HERD_TRY(c.read(&elem, "an array element type"));
  HERD_TRY(c.read(&n, "an array length"));
  if (elem > uint32_t(ValueType::kF64) || ValueType(elem) == ValueType::kArray)
    return make_error("{}: key {} is an array of unsupported type {}", source, key, elem);
  if (ValueType(elem) == ValueType::kString) {
    // Each string needs at least its 8-byte length: bounds the allocation before reading.
    if (n > c.remaining() / 8)
      return make_error("{}: key {} claims {} strings, more than the file holds", source, key, n);
    std::vector<std::string> list(static_cast<size_t>(n));
    for (std::string& s : list) HERD_TRY(c.read_string(&s, "an array string"));
    *out = Value::strings(std::move(list));
    return Status::ok();
  }
  std::vector<uint8_t> raw;
  HERD_TRY(c.read_bytes(&raw, n, value_type_size(ValueType(elem)), "array elements"));
  *out = Value::numbers(ValueType(elem), raw.data(), size_t(n));
  return Status::ok();
}

uint64_t pad_to(uint64_t n, uint64_t a) {
  return (n + a - 1) / a * a;
}

}  // namespace

Result<Reader> Reader::open(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  HERD_ASSIGN_OR_RETURN(Reader r, parse(file.data(), file.size(), path));
  r.file_ = std::move(file);  // the mapping's address does not move: tensor pointers stay valid
  return r;
}

Result<Reader> Reader::parse(const uint8_t* data, size_t size, const std::string& source) {
  Reader r;
  Cursor c(data, size, source);
  char magic[4];
  HERD_TRY(c.read(&magic, "the magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0)
    return make_error("{}: not a GGUF file (bad magic)", source);
  HERD_TRY(c.read(&r.version_, "the version"));
  if (r.version_ != 2 && r.version_ != 3)
    return make_error("{}: GGUF version {} is not supported (2 or 3)", source, r.version_);
  uint64_t n_tensors = 0, n_kv = 0;
  HERD_TRY(c.read(&n_tensors, "the tensor count"));
  HERD_TRY(c.read(&n_kv, "the key count"));
  // A key needs >= 12 bytes and a tensor info >= 24: bounds the counts before reserving.
  if (n_kv > c.remaining() / 12 || n_tensors > c.remaining() / 24)
    return make_error(
        "{}: GGUF file truncated or corrupt: {} keys and {} tensors exceed the file size", source,
        n_kv, n_tensors);
  std::unordered_set<std::string> seen;
  for (uint64_t i = 0; i < n_kv; ++i) {
    KeyValue kv;
    HERD_TRY(c.read_string(&kv.key, "a key"));
    if (!seen.insert(kv.key).second) return make_error("{}: duplicate key {}", source, kv.key);
    HERD_TRY(read_value(c, source, kv.key, &kv.value));
    r.kv_.push_back(std::move(kv));
  }
  if (const Value* a = r.find("general.alignment")) {
    int64_t v = 0;
    if (a->type() != ValueType::kU32 || !a->get_int(&v) || v == 0 || (v & (v - 1)))
      return make_error("{}: general.alignment must be a u32 power of two, got {}", source,
                        a->describe());
    r.alignment_ = uint32_t(v);
  }
  seen.clear();
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    uint32_t n_dims = 0;
    HERD_TRY(c.read_string(&t.name, "a tensor name"));
    if (t.name.size() > kMaxNameLength)
      return make_error("{}: tensor name {} longer than {} bytes", source, t.name, kMaxNameLength);
    if (!seen.insert(t.name).second) return make_error("{}: duplicate tensor {}", source, t.name);
    HERD_TRY(c.read(&n_dims, "a tensor's dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims)
      return make_error("{}: tensor {} has {} dimensions (1..4)", source, t.name, n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t v = 0;
      HERD_TRY(c.read(&v, "a tensor dimension"));
      if (v > (uint64_t(1) << 40) || (v && numel > (uint64_t(1) << 50) / v))
        return make_error("{}: tensor {} has an impossible shape", source, t.name);
      numel *= v;
      t.ne.push_back(int64_t(v));
    }
    HERD_TRY(c.read(&t.type, "a tensor type"));
    HERD_TRY(c.read(&t.offset, "a tensor offset"));
    const uint32_t block = ggml_block_size(t.type);
    if (block > 1 && t.ne[0] % block != 0)
      return make_error(
          "{}: tensor {} has rows of {} elements, not a whole number of {} blocks "
          "of {}",
          source, t.name, t.ne[0], ggml_type_name(t.type), block);
    t.nbytes = t.ne[0] ? numel / uint64_t(t.ne[0]) * ggml_row_bytes(t.type, t.ne[0]) : 0;
    r.tensors_.push_back(std::move(t));
  }
  r.data_offset_ = pad_to(c.pos(), r.alignment_);
  if (!r.tensors_.empty() && r.data_offset_ > size)
    return make_error("{}: GGUF data section starts past the end of the file", source);
  // Tensors sit back to back at padded offsets (ggml checks exactly this). After a tensor of
  // a type herd cannot size, later offsets can only be bounds-checked.
  uint64_t expected = 0;
  bool layout_known = true;
  const uint64_t data_size = r.data_offset_ <= size ? size - r.data_offset_ : 0;
  for (TensorInfo& t : r.tensors_) {
    if (layout_known && t.offset != expected)
      return make_error("{}: tensor {} at data offset {}, expected {}", source, t.name, t.offset,
                        expected);
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      return make_error(
          "{}: GGUF file truncated: tensor {} ({} bytes at data offset {}) runs past the end of "
          "the file",
          source, t.name, t.nbytes, t.offset);
    if (t.nbytes == 0) {
      layout_known = false;
      continue;
    }
    t.data = data + r.data_offset_ + t.offset;
    expected = t.offset + pad_to(t.nbytes, r.alignment_);
  }
  return r;
}

const Value* Reader::find(const std::string& key) const {
  for (const KeyValue& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const TensorInfo* Reader::find_tensor(const std::string& name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace herd::gguf
