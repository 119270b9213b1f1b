// safetensors files: mmap'd reading with full header validation, and a streaming writer.
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data section; offsets are relative to the start of the data section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "herd/base/dtype.h"
#include "herd/base/mapped_file.h"
#include "herd/base/status.h"

namespace herd {

// One tensor inside a mapped file. `data` stays valid while the owning file/store lives.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // path of the file holding it (for error messages)
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// "[a, b, c]" — how shapes are spelled in every error message.
std::string shape_str(const std::vector<int64_t>& shape);

// One .safetensors file, mapped read-only and validated (see safetensors.cc for the checks).
class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  // The same checks on caller-owned bytes (which must outlive the result); `source` names them
  // in errors. open() is this on the file's mapping; the fuzz target calls it directly.
  static Result<std::unique_ptr<SafetensorsFile>> parse(const uint8_t* data, uint64_t size,
                                                        const std::string& source);

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }  // in header order
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t file_size() const { return size_; }

 private:
  MappedFile file_;  // empty when parse() was given caller-owned bytes
  std::string path_;
  uint64_t size_ = 0;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// model.safetensors.index.json's weight_map, grouped by shard file name (sorted), with every
// check that needs no file: an object of strings, no duplicate tensor, shard names that stay in
// the directory, not empty. `source` names the index in errors.
Result<std::map<std::string, std::vector<std::string>>> parse_safetensors_index(
    std::string_view text, const std::string& source);

// All tensors of a checkpoint, possibly spread over shards.
class TensorStore {
 public:
  // Directory rules, in order:
  //  1. model.safetensors.index.json: its weight_map decides (every shard it names must exist
  //     and hold the tensors mapped to it; tensors a shard holds but the map omits are ignored,
  //     as transformers does);
  //  2. model.safetensors;
  //  3. every *.safetensors in the directory (sorted; a name in two files is an error).
  // Other files are ignored.
  static Result<std::unique_ptr<TensorStore>> open_dir(const std::string& dir);
  static Result<std::unique_ptr<TensorStore>> open_file(const std::string& path);

  const TensorView* find(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  size_t size() const { return by_name_.size(); }
  uint64_t total_bytes() const;  // sum of tensor data bytes
  std::vector<std::string> file_paths() const;

 private:
  Status add_file_all(std::unique_ptr<SafetensorsFile> f);
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const TensorView*> by_name_;
};

// A tensor to write: either `data` (exactly nbytes()) or `fill`, which writes exactly nbytes()
// into dst. `fill` lets a writer stream a 2 GB checkpoint one tensor at a time.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::BF16;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::function<void(uint8_t* dst)> fill;
  size_t nbytes() const;
};

// Writes one file (to path + ".tmp", renamed on success). The header is padded with spaces to a
// multiple of 8 like the official library; tensors are laid out largest dtype first (stable),
// so every tensor is aligned to its element size.
Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

// Splits `tensors` (in order, balanced by bytes) into `num_shards` files
// model-0000k-of-0000N.safetensors plus model.safetensors.index.json
// ({"metadata": {"total_size": ...}, "weight_map": {...}}). num_shards == 1 writes a single
// model.safetensors and no index. `on_file` (optional) is told each file before it is written.
Status write_sharded_safetensors(const std::string& dir, const std::vector<TensorToWrite>& tensors,
                                 int num_shards,
                                 const std::map<std::string, std::string>& metadata = {},
                                 const std::function<void(const std::string&)>& on_file = {});

}  // namespace herd
