// Writing safetensors one tensor at a time, so a checkpoint larger than RAM can be produced.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "herd/io/model_dir.h"
#include "herd/io/safetensors.h"
#include "herd/quant/formats.h"

namespace herd {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

size_t TensorToWrite::nbytes() const {
  if (is_blocked(dtype))  // logical [rows, cols] (quant/formats.h)
    return shape.size() == 2 ? size_t(shape[0]) * size_t(packed_row_bytes(dtype, shape[1])) : 0;
  size_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

namespace {
struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
}  // namespace

Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  // Largest element size first (stable): every tensor then starts at a multiple of its own
  // element size, as the official library arranges it.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].dtype) > dtype_size(tensors[b].dtype);
  });
  ojson h = ojson::object();
  if (!metadata.empty()) {
    ojson m = ojson::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const TensorToWrite& t = tensors[i];
    if (dtype_size(t.dtype) == 0 && !(is_blocked(t.dtype) && t.shape.size() == 2))
      return make_error("{}: tensor '{}': dtype {} cannot be stored in safetensors", path, t.name,
                        dtype_name(t.dtype));
    if (!t.data && !t.fill) return make_error("{}: tensor '{}' has no data", path, t.name);
    if (h.contains(t.name)) return make_error("{}: tensor '{}' given twice", path, t.name);
    const uint64_t n = t.nbytes();
    h[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                 {"shape", t.shape},
                 {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp";
  std::unique_ptr<FILE, FileCloser> f(std::fopen(tmp.c_str(), "wb"));
  if (!f) return make_error("{}: cannot create: {}", tmp, std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f.get()) == 8 &&
            std::fwrite(header.data(), 1, header.size(), f.get()) == header.size();
  std::vector<uint8_t> buf;
  for (size_t i = 0; ok && i < order.size(); ++i) {
    const TensorToWrite& t = tensors[order[i]];
    const size_t n = t.nbytes();
    const void* src = t.data;
    if (!src) {
      buf.assign(n, 0);  // reused across tensors: peak memory = the largest tensor
      t.fill(buf.data());
      src = buf.data();
    }
    ok = n == 0 || std::fwrite(src, 1, n, f.get()) == n;
  }
  if (!ok) {
    int e = errno;
    f.reset();
    std::remove(tmp.c_str());
    return make_error("{}: write failed: {}", tmp, std::strerror(e));
  }
  if (std::fclose(f.release()) != 0) {
    std::remove(tmp.c_str());
    return make_error("{}: write failed (close): {}", tmp, std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return make_error("{}: cannot rename to {}: {}", tmp, path, ec.message());
  return Status::ok();
}

Status write_sharded_safetensors(const std::string& dir, const std::vector<TensorToWrite>& tensors,
                                 int num_shards, const std::map<std::string, std::string>& metadata,
                                 const std::function<void(const std::string&)>& on_file) {
  if (num_shards < 1) return make_error("{}: number of shards must be >= 1", dir);
  const fs::path d(dir);
  if (num_shards == 1) {
    const std::string p = (d / kSingleSafetensorsName).string();
    if (on_file) on_file(p);
    return write_safetensors(p, tensors, metadata);
  }
  if (size_t(num_shards) > tensors.size())
    return make_error("{}: cannot split {} tensors into {} shards", dir, tensors.size(),
                      num_shards);
  uint64_t total = 0;
  for (const auto& t : tensors) total += t.nbytes();
  // Contiguous runs in table order; shard k ends once the running total passes (k+1)/N of all
  // bytes, but always leaves at least one tensor for each remaining shard.
  std::vector<size_t> cut{0};
  uint64_t run = 0;
  for (size_t i = 0; i < tensors.size() && int(cut.size()) < num_shards; ++i) {
    run += tensors[i].nbytes();
    const size_t k = cut.size();  // shard being filled is k-1
    const size_t left = tensors.size() - (i + 1);
    if ((run * uint64_t(num_shards) >= total * k && left >= size_t(num_shards) - k) ||
        left == size_t(num_shards) - k)
      cut.push_back(i + 1);
  }
  cut.push_back(tensors.size());
  ojson weight_map = ojson::object();
  for (int k = 0; k < num_shards; ++k) {
    const std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", k + 1, num_shards);
    std::vector<TensorToWrite> part(tensors.begin() + long(cut[k]),
                                    tensors.begin() + long(cut[k + 1]));
    for (const auto& t : part) weight_map[t.name] = name;
    const std::string p = (d / name).string();
    if (on_file) on_file(p);
    HERD_TRY(write_safetensors(p, part, metadata));
  }
  ojson index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  return write_text_file((d / kSafetensorsIndexName).string(), index.dump(2) + "\n");
}

}  // namespace herd
