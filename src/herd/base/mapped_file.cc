#include "herd/base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace herd {

namespace {
// Opens `path` read-only without ever blocking: O_NONBLOCK makes open() of a FIFO with no writer
// return at once (a plain O_RDONLY open would wait forever for one), and fstat on the opened
// descriptor (no race with a rename between stat and open) refuses everything but a regular file
// before a byte is read. Returns the descriptor and fills *st.
Result<int> open_regular(const std::string& path, struct stat* st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return make_error("{}: does not exist", path);
    if (e == ELOOP) return make_error("{}: cannot open: symbolic link loop", path);
    return make_error("{}: cannot open: {}", path, std::strerror(e));
  }
  if (fstat(fd, st) != 0) {
    const int e = errno;
    ::close(fd);
    return make_error("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st->st_mode)) {
    ::close(fd);
    return make_error("{}: not a regular file ({})", path, file_kind_name(st->st_mode));
  }
  return fd;
}
}  // namespace

const char* file_kind_name(unsigned mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a special file";
}

bool path_present(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_ && size_) munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ && size_) munmap(const_cast<uint8_t*>(data_), size_);
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  struct stat st;
  HERD_ASSIGN_OR_RETURN(const int fd, open_regular(path, &st));
  MappedFile f;
  f.path_ = path;
  f.size_ = size_t(st.st_size);
  if (f.size_ > 0) {
    void* p = mmap(nullptr, f.size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return make_error("{}: mmap failed: {}", path, std::strerror(e));
    }
    f.data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

Result<std::string> read_text_file(const std::string& path) {
  struct stat st;
  HERD_ASSIGN_OR_RETURN(const int fd, open_regular(path, &st));
  std::string text;
  text.reserve(size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return make_error("{}: read error: {}", path, std::strerror(e));
    }
    text.append(buf, size_t(n));
  }
  ::close(fd);
  return text;
}

Status write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error("{}: cannot create: {}", path, std::strerror(errno));
  out.write(text.data(), std::streamsize(text.size()));
  out.close();
  if (!out) return make_error("{}: write failed", path);
  return Status::ok();
}

void populate_pages(const void* p, size_t bytes) {
#ifdef MADV_POPULATE_READ
  if (!p || bytes == 0) return;
  static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = uintptr_t(p) / page * page;
  const uintptr_t e = (uintptr_t(p) + bytes + page - 1) / page * page;
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_READ);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace herd
