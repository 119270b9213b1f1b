// Reading safetensors: every field of the header is checked before any pointer into the data
// section is formed, so a corrupt or hostile file becomes a Status naming file and tensor.
#include "herd/io/safetensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "herd/io/json_parse.h"
#include "herd/quant/formats.h"

namespace herd {

using json = nlohmann::json;

namespace {
// The official library refuses headers above 100 MB; real Llama 4 shards have < 1 MB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct Range {
  uint64_t begin, end;
  size_t tensor;
};

Status parse_entry(const std::string& path, const std::string& name, const json& e,
                   uint64_t data_size, TensorView* out, Range* range) {
  auto err = [&](const std::string& what) {
    return make_error("{}: tensor '{}': {}", path, name, what);
  };
  if (!e.is_object()) return err("header entry is not an object");
  if (!e.contains("dtype") || !e["dtype"].is_string()) return err("missing string 'dtype'");
  const std::string dt = e["dtype"].get<std::string>();
  // herd's packed formats (HERD_Q8G, HERD_Q4G: pre-quantized files, docs/prequantized.md) have
  // no per-element size; their byte size follows from the logical [rows, cols] shape.
  if (!parse_dtype(dt, &out->dtype) || (dtype_size(out->dtype) == 0 && !is_blocked(out->dtype)))
    return err(fmt::format("unknown dtype '{}'", dt));
  if (!e.contains("shape") || !e["shape"].is_array()) return err("missing list 'shape'");
  uint64_t numel = 1;
  for (const json& d : e["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      return err(fmt::format("shape entry {} is not a non-negative integer", d.dump()));
    uint64_t v = d.get<uint64_t>();
    if (v > (uint64_t(1) << 48) || __builtin_mul_overflow(numel, v, &numel))
      return err(fmt::format("shape {} is too large", e["shape"].dump()));
    out->shape.push_back(int64_t(v));
  }
  const json& off = e.contains("data_offsets") ? e["data_offsets"] : json();
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    return err("'data_offsets' must be [begin, end] with non-negative integers");
  uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
  if (b > en) return err(fmt::format("data_offsets [{}, {}]: begin > end", b, en));
  if (en > data_size)
    return err(fmt::format("data_offsets [{}, {}] extend past the data section ({} bytes)", b, en,
                           data_size));
  uint64_t want = 0;
  if (is_blocked(out->dtype)) {
    if (out->shape.size() != 2) return err(fmt::format("{} needs a [rows, cols] shape", dt));
    const uint64_t row = uint64_t(packed_row_bytes(out->dtype, out->shape[1]));
    if (__builtin_mul_overflow(uint64_t(out->shape[0]), row, &want) || want != en - b)
      return err(fmt::format("data_offsets [{}, {}] hold {} bytes, but {} {} needs {}", b, en,
                             en - b, dt, shape_str(out->shape), want));
  } else if (__builtin_mul_overflow(numel, uint64_t(dtype_size(out->dtype)), &want) ||
             want != en - b)
    return err(fmt::format("data_offsets [{}, {}] hold {} bytes, but {} {} needs {}", b, en, en - b,
                           dt, shape_str(out->shape), want));
  out->name = name;
  out->nbytes = size_t(en - b);
  out->file = path;
  range->begin = b;
  range->end = en;
  return Status::ok();
}
}  // namespace

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  HERD_ASSIGN_OR_RETURN(auto f, parse(file.data(), file.size(), path));
  f->file_ = std::move(file);  // the views point into the mapping, which moves with its pointer
  return f;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::parse(const uint8_t* p, uint64_t size,
                                                                const std::string& path) {
  auto f = std::make_unique<SafetensorsFile>();
  f->path_ = path;
  f->size_ = size;
  if (size < 8)
    return make_error("{}: not a safetensors file: {} bytes, shorter than the 8-byte header length",
                      path, size);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | p[i];  // little-endian on any host
  if (hlen > kMaxHeaderBytes)
    return make_error("{}: header length {} is absurd (limit {}); not a safetensors file?", path,
                      hlen, kMaxHeaderBytes);
  if (hlen > size - 8)
    return make_error("{}: header length {} exceeds the file size {} (truncated file?)", path, hlen,
                      size);
  const char* htext = reinterpret_cast<const char*>(p + 8);
  // A tensor named twice would silently resolve to one of its entries: refused.
  HERD_ASSIGN_OR_RETURN(
      json h, parse_json(std::string_view(htext, hlen), path + ": header", DuplicateKeys::kError));
  if (!h.is_object()) return make_error("{}: header JSON is not an object", path);
  const uint64_t data_size = size - 8 - hlen;
  const uint8_t* data = p + 8 + hlen;
  std::vector<Range> ranges;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object())
        return make_error("{}: __metadata__ must be an object of strings", path);
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string())
          return make_error("{}: __metadata__ entry '{}' is not a string", path, m.key());
        f->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    TensorView v;
    Range r{};
    HERD_TRY(parse_entry(path, it.key(), it.value(), data_size, &v, &r));
    v.data = data + r.begin;
    r.tensor = f->tensors_.size();
    ranges.push_back(r);
    f->tensors_.push_back(std::move(v));
  }
  // Overlap check: sort by begin; empty tensors occupy nothing and never overlap.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Range* prev = nullptr;
  for (const Range& r : ranges) {
    if (r.begin == r.end) continue;
    if (prev && r.begin < prev->end)
      return make_error("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", path,
                        f->tensors_[prev->tensor].name, prev->begin, prev->end,
                        f->tensors_[r.tensor].name, r.begin, r.end);
    prev = &r;
  }
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
  return f;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView* TensorStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [n, v] : by_name_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t TensorStore::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, v] : by_name_) n += v->nbytes;
  return n;
}

std::vector<std::string> TensorStore::file_paths() const {
  std::vector<std::string> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

Status TensorStore::add_file_all(std::unique_ptr<SafetensorsFile> f) {
  for (const TensorView& v : f->tensors()) {
    auto [it, inserted] = by_name_.emplace(v.name, &v);
    if (!inserted)
      return make_error("tensor '{}' is stored twice: in {} and in {}", v.name, it->second->file,
                        f->path());
  }
  files_.push_back(std::move(f));
  return Status::ok();
}

Result<std::unique_ptr<TensorStore>> TensorStore::open_file(const std::string& path) {
  auto s = std::unique_ptr<TensorStore>(new TensorStore());
  HERD_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(path));
  HERD_TRY(s->add_file_all(std::move(f)));
  return s;
}

}  // namespace herd
