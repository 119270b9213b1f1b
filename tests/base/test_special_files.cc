// MappedFile::open and read_text_file open regular files only: a FIFO with no writer, a
// directory, a device and a symlink loop are errors naming the path, returned at once.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "herd/base/mapped_file.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

struct Dir {
  fs::path p = fs::path(::testing::TempDir()) / ("herd_special_" + std::to_string(getpid()));
  Dir() {
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~Dir() { fs::remove_all(p); }
};

void expect_refused(const std::string& path, const std::string& what) {
  auto m = MappedFile::open(path);
  ASSERT_FALSE(m.is_ok()) << path;
  EXPECT_NE(m.status().message().find(path), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find(what), std::string::npos) << m.status().message();
  auto t = read_text_file(path);
  ASSERT_FALSE(t.is_ok()) << path;
  EXPECT_EQ(t.status().message(), m.status().message());
}

TEST(SpecialFiles, FifoDirectoryDeviceLoopMissing) {
  Dir d;
  const std::string fifo = (d.p / "fifo").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_refused(fifo, "not a regular file (a FIFO)");
  expect_refused(d.p.string(), "not a regular file (a directory)");
  expect_refused("/dev/null", "not a regular file (a character device)");
  fs::create_symlink(d.p / "b", d.p / "a");
  fs::create_symlink(d.p / "a", d.p / "b");
  expect_refused((d.p / "a").string(), "symbolic link loop");
  expect_refused((d.p / "missing").string(), "does not exist");
  EXPECT_TRUE(path_present((d.p / "a").string()));  // a loop is present, not absent
  EXPECT_FALSE(path_present((d.p / "missing").string()));
}

TEST(SpecialFiles, RegularFileReads) {
  Dir d;
  const std::string f = (d.p / "x.json").string();
  ASSERT_TRUE(write_text_file(f, "{\"a\": 1}").is_ok());
  auto t = read_text_file(f);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(*t, "{\"a\": 1}");
  auto m = MappedFile::open(f);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->size(), 8u);
}

// The resident (mapped) KiB of the mapping that starts at `p`, from /proc/self/smaps.
long mapped_kib(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool in_map = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(' ') < 30)
      in_map = lo == reinterpret_cast<uintptr_t>(p);
    else if (in_map && line.rfind("Rss:", 0) == 0)
      return std::atol(line.c_str() + 4);
  }
  return -1;
}

// populate_pages maps a range up front (what a decode step would otherwise fault in page by
// page): right after it the whole range is resident in this process's page tables, where a
// fresh map of the same file has nothing mapped until it is read.
TEST(MappedFile, PopulatePagesMapsTheRangeUpFront) {
#ifndef MADV_POPULATE_READ
  GTEST_SKIP() << "no MADV_POPULATE_READ in these headers";
#else
  Dir d;
  const std::string f = (d.p / "w.bin").string();
  constexpr size_t kBytes = 8 << 20;
  ASSERT_TRUE(write_text_file(f, std::string(kBytes, 'x')).is_ok());
  auto fresh = MappedFile::open(f);
  ASSERT_TRUE(fresh.is_ok());
  EXPECT_EQ(mapped_kib(fresh->data()), 0);
  auto m = MappedFile::open(f);
  ASSERT_TRUE(m.is_ok());
  populate_pages(m->data() + 1, kBytes - 2);  // rounded out to whole pages
  EXPECT_EQ(mapped_kib(m->data()), long(kBytes / 1024));
  populate_pages(nullptr, 0);  // no range: nothing to do
#endif
}

}  // namespace
}  // namespace herd
