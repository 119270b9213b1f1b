// GGUF writer/reader: exact byte layout of a tiny file checked by hand, round trips of every
// metadata type and of streamed tensors, and the reader's bounds checks on damaged files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "herd/io/gguf.h"

namespace herd::gguf {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("herd_test_gguf_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

TensorFill bytes_fill(std::vector<uint8_t> bytes, size_t chunk = 3) {
  return [bytes = std::move(bytes), chunk](TensorSink& out) -> Status {
    for (size_t i = 0; i < bytes.size(); i += chunk)
      HERD_TRY(out.write(bytes.data() + i, std::min(chunk, bytes.size() - i)));
    return Status::ok();
  };
}

template <typename T>
T at(const std::vector<uint8_t>& b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

// One key, one F32 tensor of 3 elements: every byte position computed by hand.
TEST(Gguf, TinyFileByteLayout) {
  const std::string path = temp_path("layout.gguf");
  Writer w;  // alignment 32, written as the first key
  ASSERT_TRUE(
      w.add_tensor("t", {3}, GgmlType::kF32, bytes_fill({0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}))
          .is_ok());
  ASSERT_TRUE(w.write(path).is_ok());
  const std::vector<uint8_t> b = read_all(path);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "GGUF");
  EXPECT_EQ(at<uint32_t>(b, 4), 3u);   // version
  EXPECT_EQ(at<uint64_t>(b, 8), 1u);   // tensors
  EXPECT_EQ(at<uint64_t>(b, 16), 1u);  // keys
  // key: u64 len 17, "general.alignment", u32 type 4 (u32), u32 32
  EXPECT_EQ(at<uint64_t>(b, 24), 17u);
  EXPECT_EQ(std::string(b.begin() + 32, b.begin() + 49), "general.alignment");
  EXPECT_EQ(at<uint32_t>(b, 49), 4u);
  EXPECT_EQ(at<uint32_t>(b, 53), 32u);
  // tensor info: u64 len 1, "t", u32 n_dims 1, u64 ne0 3, u32 type 0, u64 offset 0
  EXPECT_EQ(at<uint64_t>(b, 57), 1u);
  EXPECT_EQ(b[65], 't');
  EXPECT_EQ(at<uint32_t>(b, 66), 1u);
  EXPECT_EQ(at<uint64_t>(b, 70), 3u);
  EXPECT_EQ(at<uint32_t>(b, 78), 0u);
  EXPECT_EQ(at<uint64_t>(b, 82), 0u);
  // header ends at 90, data at 96 (next multiple of 32), 12 bytes padded to 32
  ASSERT_EQ(b.size(), 96u + 32u);
  for (size_t i = 90; i < 96; ++i) EXPECT_EQ(b[i], 0) << i;
  EXPECT_EQ(at<float>(b, 96), 1.0f);
  EXPECT_EQ(at<float>(b, 104), 3.0f);
  for (size_t i = 108; i < 128; ++i) EXPECT_EQ(b[i], 0) << i;
  std::filesystem::remove(path);
}

TEST(Gguf, RoundTripsEveryValueTypeAndTensors) {
  const std::string path = temp_path("roundtrip.gguf");
  Writer w(64);
  std::vector<std::pair<std::string, Value>> keys = {
      {"u8", Value::u8(200)},
      {"i8", Value::i8(-5)},
      {"u16", Value::u16(65000)},
      {"i16", Value::i16(-30000)},
      {"u32", Value::u32(4000000000u)},
      {"i32", Value::i32(-2000000000)},
      {"f32", Value::f32(0.1f)},
      {"bool", Value::boolean(true)},
      {"str", Value::string("llama4 \xF0\x9F\xA6\x99")},
      {"u64", Value::u64(~uint64_t(0))},
      {"i64", Value::i64(-(int64_t(1) << 60))},
      {"f64", Value::f64(1e-300)},
      {"strs", Value::strings({"a", "", "Ġthe", "<|begin_of_text|>"})},
      {"empty_strs", Value::strings({})},
  };
  const std::vector<int32_t> ints = {1, -2, 3};
  const std::vector<float> floats = {1.5f, -0.0f, 1e30f};
  keys.push_back({"i32s", Value::i32s(ints)});
  keys.push_back({"f32s", Value::f32s(floats)});
  for (auto& [k, v] : keys) w.set(k, v);
  w.set("u8", Value::u8(201));  // replacing keeps one entry
  keys[0].second = Value::u8(201);

  std::vector<uint8_t> a(2 * 3 * 4), b(5 * 2);
  for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 7);
  for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(255 - i);
  // PyTorch [2, 3] F32 is ne {3, 2}; a BF16 vector after it lands at a 64-aligned offset.
  ASSERT_TRUE(w.add_tensor("blk.0.attn_q.weight", {3, 2}, GgmlType::kF32, bytes_fill(a)).is_ok());
  ASSERT_TRUE(w.add_tensor("v", {5, 1}, GgmlType::kBF16, bytes_fill(b, 1000)).is_ok());
  ASSERT_TRUE(w.write(path).is_ok());

  auto r = Reader::open(path);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->version(), 3u);
  EXPECT_EQ(r->alignment(), 64u);
  EXPECT_EQ(r->data_offset() % 64, 0u);
  ASSERT_EQ(r->metadata().size(), keys.size() + 1);
  EXPECT_EQ(r->metadata()[0].key, "general.alignment");
  for (auto& [k, v] : keys) {
    const Value* got = r->find(k);
    ASSERT_NE(got, nullptr) << k;
    EXPECT_TRUE(*got == v) << k << ": " << got->describe() << " vs " << v.describe();
  }
  int64_t i = 0;
  double f = 0;
  EXPECT_TRUE(r->find("i16")->get_int(&i));
  EXPECT_EQ(i, -30000);
  EXPECT_FALSE(r->find("u64")->get_int(&i));  // does not fit int64
  EXPECT_TRUE(r->find("f32")->get_float(&f));
  EXPECT_EQ(float(f), 0.1f);
  std::vector<int64_t> got_ints;
  EXPECT_TRUE(r->find("i32s")->get_ints(&got_ints));
  EXPECT_EQ(got_ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(r->find("strs")->get_strings()->at(2), "Ġthe");
  EXPECT_EQ(r->find("str")->get_strings(), nullptr);

  ASSERT_EQ(r->tensors().size(), 2u);
  const TensorInfo* q = r->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->ne, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(q->type, uint32_t(GgmlType::kF32));
  ASSERT_EQ(q->nbytes, a.size());
  EXPECT_EQ(std::memcmp(q->data, a.data(), a.size()), 0);
  const TensorInfo* v = r->find_tensor("v");
  EXPECT_EQ(v->offset, 64u);
  EXPECT_EQ(v->type, 30u);
  EXPECT_EQ(std::memcmp(v->data, b.data(), b.size()), 0);
  std::filesystem::remove(path);
}

TEST(Gguf, WriterRejectsBadTensors) {
  Writer w;
  EXPECT_FALSE(w.add_tensor(std::string(64, 'x'), {1}, GgmlType::kF32, bytes_fill({})).is_ok());
  EXPECT_FALSE(w.add_tensor("t", {}, GgmlType::kF32, bytes_fill({})).is_ok());
  EXPECT_FALSE(w.add_tensor("t", {1, 1, 1, 1, 1}, GgmlType::kF32, bytes_fill({})).is_ok());
  EXPECT_FALSE(w.add_tensor("t", {0}, GgmlType::kF32, bytes_fill({})).is_ok());
  ASSERT_TRUE(w.add_tensor("t", {2}, GgmlType::kF16, bytes_fill({1, 2, 3})).is_ok());
  EXPECT_FALSE(w.add_tensor("t", {2}, GgmlType::kF16, bytes_fill({1, 2, 3, 4})).is_ok());
  // The fill gives 3 of 4 bytes: the write fails naming the tensor and leaves no file.
  const std::string path = temp_path("short.gguf");
  Status s = w.write(path);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("tensor t"), std::string::npos) << s.message();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Gguf, ReaderRejectsEveryTruncationAndBadFields) {
  const std::string path = temp_path("trunc.gguf");
  Writer w;
  w.set("tokens", Value::strings({"a", "b"}));
  w.set("f", Value::f32s(std::vector<float>{1, 2}));
  ASSERT_TRUE(
      w.add_tensor("x", {4}, GgmlType::kF32, bytes_fill(std::vector<uint8_t>(16, 1))).is_ok());
  ASSERT_TRUE(w.write(path).is_ok());
  std::vector<uint8_t> b = read_all(path);
  ASSERT_TRUE(Reader::parse(b.data(), b.size(), "full").is_ok());
  // Every strict prefix that cuts into the header or the tensor's bytes must fail cleanly.
  const size_t tensor_end = b.size() - 16;  // 16 data bytes padded to 32
  for (size_t n = 0; n < tensor_end; ++n)
    EXPECT_FALSE(Reader::parse(b.data(), n, "prefix").is_ok()) << n;

  auto corrupt = [&](size_t off, uint64_t value, size_t width) {
    std::vector<uint8_t> c = b;
    std::memcpy(c.data() + off, &value, width);
    return Reader::parse(c.data(), c.size(), "corrupt");
  };
  EXPECT_FALSE(corrupt(0, 0x46554746, 4).is_ok());          // magic
  EXPECT_FALSE(corrupt(4, 4, 4).is_ok());                   // version
  EXPECT_FALSE(corrupt(8, uint64_t(1) << 60, 8).is_ok());   // tensor count
  EXPECT_FALSE(corrupt(16, uint64_t(1) << 60, 8).is_ok());  // key count
  EXPECT_FALSE(corrupt(24, uint64_t(1) << 62, 8).is_ok());  // first key's length
  EXPECT_FALSE(corrupt(53, 48, 4).is_ok());                 // alignment not a power of 2
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace herd::gguf
