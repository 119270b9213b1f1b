// MappedFile::open and read_text_file open regular files only: a FIFO with no writer, a
// directory, a device and a symlink loop are errors naming the path, returned at once.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
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

}  // namespace
}  // namespace herd
