// parse_json (io/json_parse.h) and its users: line and column in syntax errors, duplicate keys
// refused in safetensors headers and the shard index.
#include "herd/io/json_parse.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "herd/base/mapped_file.h"
#include "herd/io/safetensors.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

TEST(JsonParse, SyntaxErrorHasLineAndColumn) {
  auto r = parse_json("{\n\"a\": 1,\n\"b\": ]\n}", "f.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("f.json: not valid JSON: parse error at line 3, column 6"),
            std::string::npos)
      << r.status().message();
}

TEST(JsonParse, DuplicateKeys) {
  EXPECT_TRUE(parse_json("{\"a\": 1, \"a\": 2}", "f.json").is_ok());  // last wins by default
  auto r = parse_json("{\"a\": 1, \"b\": {\"x\": 1}, \"a\": 2}", "f.json", DuplicateKeys::kError);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "f.json: key 'a' appears twice at the top level");
  r = parse_json("{\"weight_map\": {\"w\": \"1\", \"v\": \"1\", \"w\": \"2\"}}", "i.json",
                 DuplicateKeys::kError);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "i.json: key 'w' appears twice in 'weight_map'");
  // The same key in different objects is fine.
  EXPECT_TRUE(parse_json("{\"a\": {\"k\": 1}, \"b\": {\"k\": 1}, \"c\": [{\"k\": 1}, {\"k\": 2}]}",
                         "f.json", DuplicateKeys::kError)
                  .is_ok());
}

std::string safetensors_bytes(const std::string& header) {
  std::string h = header;
  while (h.size() % 8) h += ' ';
  std::string out(8, '\0');
  uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h + std::string(16, '\0');
}

struct TmpDir {
  fs::path p = fs::path(::testing::TempDir()) / ("herd_json_" + std::to_string(getpid()));
  TmpDir() {
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~TmpDir() { fs::remove_all(p); }
};

TEST(JsonParse, SafetensorsHeaderDuplicateTensor) {
  TmpDir d;
  const std::string f = (d.p / "model.safetensors").string();
  const std::string e0 = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string e1 = R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})";
  ASSERT_TRUE(write_text_file(f, safetensors_bytes("{\"w\":" + e0 + ",\"w\":" + e1 + "}")));
  auto r = SafetensorsFile::open(f);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), f + ": header: key 'w' appears twice at the top level");
  ASSERT_TRUE(write_text_file(f, safetensors_bytes("{\"w\":\n" + e0 + ",\n\"v\": }")));
  r = SafetensorsFile::open(f);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(f + ": header: not valid JSON: parse error at line 3"),
            std::string::npos)
      << r.status().message();
}

TEST(JsonParse, IndexDuplicateWeight) {
  TmpDir d;
  const std::string idx = (d.p / "model.safetensors.index.json").string();
  ASSERT_TRUE(
      write_text_file(idx, R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})"));
  auto r = TensorStore::open_dir(d.p.string());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), idx + ": key 'a' appears twice in 'weight_map'");
}

}  // namespace
}  // namespace herd
