// Read-only memory map of a whole file (weights are used in place, never read into RAM).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "herd/base/status.h"

namespace herd {

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // Only a regular file is opened; a FIFO, device, directory or symlink loop is an error naming
  // the path, never a wait.
  static Result<MappedFile> open(const std::string& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Maps the pages of [p, p + bytes) now (MADV_POPULATE_READ), for memory read sparsely and at
// random later, such as the embedding table one row per token: each first touch would be a page
// fault inside a decode step, and a fault costs 20-90 µs on a VM with shadow paging (measured on
// the Zen 5 VM: the embedding lookup took ~60 µs of a 3 ms step). Advice only: kernels before
// 5.14 refuse it and the pages fault in as before.
void populate_pages(const void* p, size_t bytes);

// Whole-file helpers for small files (config.json, index, tokenizer). read_text_file opens
// regular files only, like MappedFile::open.
Result<std::string> read_text_file(const std::string& path);
// "a directory", "a FIFO", ... for a st_mode (for messages that say what is there instead).
const char* file_kind_name(unsigned mode);
// True when anything is at `path`, even a dangling symlink or a loop (lstat succeeds): such a
// path is opened, and fails with a message, rather than treated as absent.
bool path_present(const std::string& path);
Status write_text_file(const std::string& path, const std::string& text);

}  // namespace herd
