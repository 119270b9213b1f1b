// safetensors reading (every validation error names file and tensor), TensorStore directory
// rules and the (sharded) writer.
#include "herd/io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace herd {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::path(::testing::TempDir()) / ("herd_st_" + std::string(info->name()) + "_" +
                                                 tag + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// A file from a literal header and `data_size` data bytes.
std::string raw_file(const std::string& header, size_t data_size, uint64_t hlen_override = 0) {
  uint64_t hlen = hlen_override ? hlen_override : header.size();
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char(hlen >> (8 * i));
  return s + header + std::string(data_size, '\x01');
}

// Opens a file built from `header` and expects an error containing every `needles` string.
void expect_error(const std::string& header, size_t data_size, std::vector<std::string> needles) {
  const std::string p = fresh_dir("e") + "/bad.safetensors";
  write_bytes(p, raw_file(header, data_size));
  auto r = SafetensorsFile::open(p);
  ASSERT_FALSE(r.is_ok()) << header;
  needles.push_back("bad.safetensors");
  for (const auto& n : needles)
    EXPECT_NE(r.status().message().find(n), std::string::npos)
        << "message '" << r.status().message() << "' lacks '" << n << "'";
}

TEST(Safetensors, RoundTripAndAlignment) {
  const std::string p = fresh_dir("rt") + "/m.safetensors";
  std::vector<uint16_t> a = {1, 2, 3};  // 6 bytes: would misalign a following F32
  std::vector<float> b = {1.5f, -2.0f};
  std::vector<TensorToWrite> ts = {
      {"a", DType::BF16, {3}, a.data(), {}},
      {"b", DType::F32, {2, 1}, nullptr, [&](uint8_t* d) { std::memcpy(d, b.data(), 8); }},
      {"empty", DType::F16, {0, 4}, nullptr, [](uint8_t*) {}},
  };
  ASSERT_TRUE(write_safetensors(p, ts, {{"format", "pt"}}).is_ok());
  auto f = SafetensorsFile::open(p);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  const TensorView* va = (*f)->find("a");
  const TensorView* vb = (*f)->find("b");
  ASSERT_TRUE(va && vb && (*f)->find("empty"));
  EXPECT_EQ(va->shape, std::vector<int64_t>{3});
  EXPECT_EQ(vb->shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(std::memcmp(va->data, a.data(), 6), 0);
  EXPECT_EQ(std::memcmp(vb->data, b.data(), 8), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(vb->data) % 4, 0u);  // F32 laid out first
  // Header length is a multiple of 8 (official padding).
  std::ifstream in(p, std::ios::binary);
  uint64_t hlen = 0;
  in.read(reinterpret_cast<char*>(&hlen), 8);
  EXPECT_EQ(hlen % 8, 0u);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
}

TEST(Safetensors, TruncatedFile) {
  const std::string p = fresh_dir("t") + "/short.safetensors";
  write_bytes(p, "abc");
  auto r = SafetensorsFile::open(p);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("short.safetensors"), std::string::npos);
  EXPECT_NE(r.status().message().find("shorter than"), std::string::npos);
}

TEST(Safetensors, HeaderLengthBeyondFile) {
  const std::string p = fresh_dir("h") + "/cut.safetensors";
  write_bytes(p, raw_file("{}", 0, 4096));
  auto r = SafetensorsFile::open(p);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("cut.safetensors"), std::string::npos);
  EXPECT_NE(r.status().message().find("exceeds the file size"), std::string::npos);
}

TEST(Safetensors, AbsurdHeaderLength) {
  const std::string p = fresh_dir("a") + "/huge.safetensors";
  write_bytes(p, raw_file("{}", 0, uint64_t(1) << 62));
  auto r = SafetensorsFile::open(p);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("absurd"), std::string::npos);
  EXPECT_NE(r.status().message().find("huge.safetensors"), std::string::npos);
}

TEST(Safetensors, BadJson) {
  expect_error("{\"a\": [", 0, {"not valid JSON"});
  expect_error("[1, 2]", 0, {"not an object"});
}

TEST(Safetensors, EntryErrorsNameTheTensor) {
  expect_error(R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,2]}})", 2,
               {"'w'", "unknown dtype 'Q7'"});
  expect_error(R"({"w":{"shape":[2],"data_offsets":[0,4]}})", 4, {"'w'", "dtype"});
  expect_error(R"({"w":{"dtype":"F16","shape":[-2],"data_offsets":[0,4]}})", 4,
               {"'w'", "non-negative"});
  expect_error(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,400]}})", 4,
               {"'w'", "past the data section"});
  expect_error(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[4,0]}})", 4,
               {"'w'", "begin > end"});
  expect_error(R"({"w":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}})", 6, {"'w'", "needs 6"});
  expect_error(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[-1,4]}})", 6,
               {"'w'", "data_offsets"});
  expect_error(R"({"w":{"dtype":"F16","shape":[2]}})", 6, {"'w'", "data_offsets"});
  expect_error(R"({"__metadata__":{"k":3}})", 0, {"__metadata__", "'k'"});
}

TEST(Safetensors, OverlappingTensors) {
  expect_error(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                   "y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               12, {"'x'", "'y'", "overlap"});
}

TEST(TensorStore, SingleFileAndGlob) {
  const std::string d = fresh_dir("g");
  std::vector<uint16_t> v(4, 7);
  ASSERT_TRUE(write_safetensors(d + "/b.safetensors", {{"t1", DType::BF16, {4}, v.data(), {}}}));
  ASSERT_TRUE(write_safetensors(d + "/a.safetensors", {{"t2", DType::BF16, {2, 2}, v.data(), {}}}));
  write_bytes(d + "/README.md", "ignored");
  auto s = TensorStore::open_dir(d);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ((*s)->names(), (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ((*s)->total_bytes(), 16u);
  // The same name in two files is an error naming both.
  ASSERT_TRUE(write_safetensors(d + "/c.safetensors", {{"t1", DType::BF16, {4}, v.data(), {}}}));
  auto dup = TensorStore::open_dir(d);
  ASSERT_FALSE(dup.is_ok());
  EXPECT_NE(dup.status().message().find("'t1'"), std::string::npos);
  EXPECT_NE(dup.status().message().find("c.safetensors"), std::string::npos);
  // model.safetensors wins over the glob.
  ASSERT_TRUE(
      write_safetensors(d + "/model.safetensors", {{"only", DType::F32, {1}, v.data(), {}}}));
  auto one = TensorStore::open_dir(d);
  ASSERT_TRUE(one.is_ok()) << one.status().message();
  EXPECT_EQ((*one)->names(), std::vector<std::string>{"only"});
}

TEST(TensorStore, EmptyDirIsAnError) {
  const std::string d = fresh_dir("empty");
  auto s = TensorStore::open_dir(d);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find(d), std::string::npos);
}

std::vector<TensorToWrite> some_tensors(std::vector<uint16_t>& buf) {
  buf.assign(64, 3);
  std::vector<TensorToWrite> ts;
  for (int i = 0; i < 7; ++i)
    ts.push_back({"t" + std::to_string(i), DType::BF16, {int64_t(1 + i)}, buf.data(), {}});
  return ts;
}

TEST(ShardedWriter, OneShardHasNoIndex) {
  const std::string d = fresh_dir("s1");
  std::vector<uint16_t> buf;
  ASSERT_TRUE(write_sharded_safetensors(d, some_tensors(buf), 1).is_ok());
  EXPECT_TRUE(fs::exists(d + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(d + "/model.safetensors.index.json"));
  auto s = TensorStore::open_dir(d);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ((*s)->size(), 7u);
}

TEST(ShardedWriter, ThreeShardsWithIndex) {
  const std::string d = fresh_dir("s3");
  std::vector<uint16_t> buf;
  ASSERT_TRUE(write_sharded_safetensors(d, some_tensors(buf), 3).is_ok());
  for (int k = 1; k <= 3; ++k)
    EXPECT_TRUE(fs::exists(d + "/model-0000" + std::to_string(k) + "-of-00003.safetensors"));
  std::ifstream in(d + "/model.safetensors.index.json");
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["metadata"]["total_size"].get<int64_t>(), 2 * (1 + 2 + 3 + 4 + 5 + 6 + 7));
  EXPECT_EQ(j["weight_map"].size(), 7u);
  EXPECT_EQ(j["weight_map"]["t0"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(j["weight_map"]["t6"], "model-00003-of-00003.safetensors");
  auto s = TensorStore::open_dir(d);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ((*s)->size(), 7u);
  EXPECT_EQ((*s)->find("t4")->nbytes, 10u);
}

TEST(ShardedWriter, IndexErrorsNameTensorAndShard) {
  const std::string d = fresh_dir("ix");
  std::vector<uint16_t> buf;
  ASSERT_TRUE(write_sharded_safetensors(d, some_tensors(buf), 2).is_ok());
  // Index mentions a tensor the shard lacks.
  auto j = nlohmann::json::parse(std::ifstream(d + "/model.safetensors.index.json"));
  j["weight_map"]["ghost"] = "model-00001-of-00002.safetensors";
  std::ofstream(d + "/model.safetensors.index.json") << j.dump();
  auto r = TensorStore::open_dir(d);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("'ghost'"), std::string::npos);
  EXPECT_NE(r.status().message().find("model-00001-of-00002.safetensors"), std::string::npos);
  // Index points at a missing shard.
  j["weight_map"].erase("ghost");
  std::ofstream(d + "/model.safetensors.index.json") << j.dump();
  ASSERT_TRUE(TensorStore::open_dir(d).is_ok());
  fs::remove(d + "/model-00002-of-00002.safetensors");
  auto m = TensorStore::open_dir(d);
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("model-00002-of-00002.safetensors"), std::string::npos);
  EXPECT_NE(m.status().message().find("does not exist"), std::string::npos);
  EXPECT_NE(m.status().message().find("'t"), std::string::npos);  // names a tensor
}

}  // namespace
}  // namespace herd
