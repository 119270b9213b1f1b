// gguf::Writer: header, metadata and tensor infos first, then each tensor streamed from its
// fill callback through a buffered file (see gguf.h for the layout).
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "herd/io/gguf.h"

namespace herd::gguf {
namespace {

uint64_t pad_to(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

// Buffered output that remembers the first error and counts bytes (for padding).
class Output {
 public:
  Output(std::FILE* f, std::string path) : f_(f), path_(std::move(path)) {
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  Status put(const void* data, size_t n) {
    if (n && std::fwrite(data, 1, n, f_) != n)
      return make_error("writing {}: {}", path_, std::strerror(errno));
    written_ += n;
    return Status::ok();
  }
  template <typename T>
  Status put_le(T v) {  // x86/ARM hosts are little-endian, which GGUF is
    static_assert(std::endian::native == std::endian::little);
    return put(&v, sizeof v);
  }
  Status put_string(const std::string& s) {
    HERD_TRY(put_le<uint64_t>(s.size()));
    return put(s.data(), s.size());
  }
  Status pad(uint64_t alignment) {
    static const uint8_t zeros[256] = {};
    uint64_t n = pad_to(written_, alignment) - written_;
    while (n) {
      const size_t k = size_t(std::min<uint64_t>(n, sizeof zeros));
      HERD_TRY(put(zeros, k));
      n -= k;
    }
    return Status::ok();
  }
  uint64_t written() const { return written_; }

 private:
  std::FILE* f_;
  std::string path_;
  uint64_t written_ = 0;
};

// Forwards one tensor's bytes and refuses to overrun its declared size.
class CountingSink : public TensorSink {
 public:
  CountingSink(Output& out, const std::string& name, uint64_t expected)
      : out_(out), name_(name), expected_(expected) {}
  Status write(const void* data, size_t nbytes) override {
    if (got_ + nbytes > expected_)
      return make_error("tensor {}: fill wrote more than its {} bytes", name_, expected_);
    got_ += nbytes;
    return out_.put(data, nbytes);
  }
  uint64_t got() const { return got_; }

 private:
  Output& out_;
  const std::string& name_;
  uint64_t expected_;
  uint64_t got_ = 0;
};

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};

}  // namespace

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  set("general.alignment", Value::u32(alignment));
}

void Writer::set(const std::string& key, Value value) {
  for (KeyValue& kv : kv_)
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  kv_.push_back({key, std::move(value)});
}

Status Writer::add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                          TensorFill fill) {
  if (name.empty() || name.size() > kMaxNameLength)
    return make_error("GGUF tensor name \"{}\": length must be 1..{}", name, kMaxNameLength);
  for (const PendingTensor& t : tensors_)
    if (t.name == name) return make_error("GGUF tensor {} added twice", name);
  if (ne.empty() || ne.size() > kMaxDims)
    return make_error("GGUF tensor {}: {} dimensions (1..{} allowed)", name, ne.size(), kMaxDims);
  // Any sized ggml type (block formats too: copying a tensor from one GGUF to another).
  uint64_t n = 1;
  for (int64_t d : ne) {
    if (d <= 0) return make_error("GGUF tensor {}: dimension {} is not positive", name, d);
    n *= uint64_t(d);
  }
  const uint64_t row = ggml_row_bytes(uint32_t(type), ne[0]);
  if (row == 0)
    return make_error("GGUF tensor {}: ggml type {} cannot hold rows of {}", name,
                      ggml_type_name(uint32_t(type)), ne[0]);
  const uint64_t offset =
      tensors_.empty() ? 0 : tensors_.back().offset + pad_to(tensors_.back().nbytes, alignment_);
  const uint64_t nbytes = n / uint64_t(ne[0]) * row;
  tensors_.push_back({name, std::move(ne), type, nbytes, offset, std::move(fill)});
  return Status::ok();
}

uint64_t Writer::data_bytes() const {
  return tensors_.empty() ? 0 : tensors_.back().offset + pad_to(tensors_.back().nbytes, alignment_);
}

Status Writer::write(const std::string& path) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)))
    return make_error("{}: GGUF alignment {} is not a power of two", path, alignment_);
  const std::string tmp = path + ".tmp";
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp.c_str(), "wb"));
  if (!f) return make_error("cannot create {}: {}", tmp, std::strerror(errno));
  Output out(f.get(), tmp);
  auto body = [&]() -> Status {
    HERD_TRY(out.put("GGUF", 4));
    HERD_TRY(out.put_le<uint32_t>(kVersion));
    HERD_TRY(out.put_le<uint64_t>(tensors_.size()));
    HERD_TRY(out.put_le<uint64_t>(kv_.size()));
    for (const KeyValue& kv : kv_) {
      const Value& v = kv.value;
      HERD_TRY(out.put_string(kv.key));
      HERD_TRY(out.put_le<uint32_t>(uint32_t(v.type_)));
      if (!v.is_array()) {
        if (v.type_ != ValueType::kString && v.raw_.size() != value_type_size(v.type_))
          return make_error("GGUF key {}: value has no content", kv.key);
        if (v.type_ == ValueType::kString) {
          HERD_TRY(out.put_string(v.str_));
        } else {
          HERD_TRY(out.put(v.raw_.data(), v.raw_.size()));
        }
        continue;
      }
      HERD_TRY(out.put_le<uint32_t>(uint32_t(v.elem_)));
      HERD_TRY(out.put_le<uint64_t>(v.array_size()));
      if (v.elem_ == ValueType::kString) {
        for (const std::string& s : v.strs_) HERD_TRY(out.put_string(s));
      } else {
        HERD_TRY(out.put(v.raw_.data(), v.raw_.size()));
      }
    }
    for (const PendingTensor& t : tensors_) {
      HERD_TRY(out.put_string(t.name));
      HERD_TRY(out.put_le<uint32_t>(uint32_t(t.ne.size())));
      for (int64_t d : t.ne) HERD_TRY(out.put_le<uint64_t>(uint64_t(d)));
      HERD_TRY(out.put_le<uint32_t>(uint32_t(t.type)));
      HERD_TRY(out.put_le<uint64_t>(t.offset));
    }
    HERD_TRY(out.pad(alignment_));
    const uint64_t data_start = out.written();
    for (const PendingTensor& t : tensors_) {
      if (out.written() - data_start != t.offset)
        return make_error("GGUF tensor {}: internal offset mismatch", t.name);
      CountingSink sink(out, t.name, t.nbytes);
      HERD_TRY(t.fill(sink).with_context(fmt::format("writing tensor {}", t.name)));
      if (sink.got() != t.nbytes)
        return make_error("tensor {}: fill wrote {} of {} bytes", t.name, sink.got(), t.nbytes);
      HERD_TRY(out.pad(alignment_));
    }
    if (std::fflush(f.get()) != 0) return make_error("writing {}: {}", tmp, std::strerror(errno));
    return Status::ok();
  };
  Status s = body();
  const int close_rc = std::fclose(f.release());
  if (s.is_ok() && close_rc != 0) s = make_error("closing {}: {}", tmp, std::strerror(errno));
  if (s.is_ok() && std::rename(tmp.c_str(), path.c_str()) != 0)
    s = make_error("renaming {} to {}: {}", tmp, path, std::strerror(errno));
  if (!s.is_ok()) std::remove(tmp.c_str());
  return s;
}

}  // namespace herd::gguf
