// A GGUF model as one or more files: llama.cpp's gguf-split writes NAME-00001-of-0000N.gguf,
// each part a complete GGUF whose tensors are a slice of the model (split.no / split.count /
// split.tensors.count keys); metadata other than split.* sits in the first part. Any part's
// path opens the whole set, in order, every part mapped (tensor data stays in the mappings).
#pragma once

#include <string>
#include <vector>

#include "herd/base/status.h"
#include "herd/io/gguf.h"

namespace herd::gguf {

// True when `path` names a GGUF file (by its extension; the magic is checked on open).
bool is_gguf_path(const std::string& path);

// "X-00002-of-00003.gguf" -> {"X", 2, 3}; false for a name that is not a split part.
struct SplitName {
  std::string prefix;
  int no = 0, count = 0;
};
bool parse_split_name(const std::string& path, SplitName* out);
std::string split_part_path(const std::string& prefix, int no, int count);

class Files {
 public:
  static Result<Files> open(const std::string& path);

  const std::vector<Reader>& parts() const { return parts_; }
  const std::vector<std::string>& paths() const { return paths_; }
  const Reader& first() const { return parts_.front(); }
  const std::string& path() const { return paths_.front(); }
  const Value* find(const std::string& key) const { return first().find(key); }
  // A tensor of any part, and the index of the part holding it.
  const TensorInfo* find_tensor(const std::string& name, size_t* part = nullptr) const;
  uint64_t file_bytes() const;

 private:
  std::vector<Reader> parts_;
  std::vector<std::string> paths_;
};

}  // namespace herd::gguf
