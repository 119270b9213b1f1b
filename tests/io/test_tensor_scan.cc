// NaN / Inf scanning (io/tensor_scan.h): every float dtype, counts and first index exact, at
// every position of a word (the SWAR test handles 8 bytes at once) and across chunks.
#include "herd/io/tensor_scan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include "herd/base/dtype.h"

namespace herd {
namespace {

template <typename T>
int64_t scan(DType t, const std::vector<T>& v, int64_t* first) {
  return count_nonfinite(t, reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T),
                         first);
}

TEST(TensorScan, FiniteValuesCountZero) {
  std::vector<float> f = {0.f, -0.f, 1.f, -3e38f, 3e38f, 1e-45f, -1e-45f};
  int64_t first = -7;
  EXPECT_EQ(scan(DType::F32, f, &first), 0);
  EXPECT_EQ(first, -7);  // untouched
  std::vector<uint16_t> b;
  for (float x : f) b.push_back(f32_to_bf16(x));
  b.push_back(0x7F7F);  // largest finite bf16
  b.push_back(0xFF7F);
  EXPECT_EQ(scan(DType::BF16, b, &first), 0);
  std::vector<uint16_t> h = {0x0000, 0x7BFF, 0xFBFF, 0x3C00, 0x0001};  // f16: max, -max, 1
  EXPECT_EQ(scan(DType::F16, h, &first), 0);
  std::vector<uint8_t> e = {0x00, 0x7E, 0xFE, 0x38, 0x80};  // fp8 e4m3: 448 is 0x7E
  EXPECT_EQ(scan(DType::F8_E4M3, e, &first), 0);
}

TEST(TensorScan, EveryLanePositionAndTail) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (size_t n : {1u, 2u, 3u, 4u, 5u, 7u, 8u, 9u, 17u}) {
    for (size_t pos = 0; pos < n; ++pos) {
      std::vector<float> f(n, 1.5f);
      f[pos] = pos % 2 ? -inf : nan;
      int64_t first = -1;
      EXPECT_EQ(scan(DType::F32, f, &first), 1) << n << " " << pos;
      EXPECT_EQ(first, int64_t(pos));
      std::vector<uint16_t> b(n, f32_to_bf16(1.5f));
      b[pos] = pos % 2 ? 0xFF80 : 0x7FC1;  // -inf, a NaN
      first = -1;
      EXPECT_EQ(scan(DType::BF16, b, &first), 1) << n << " " << pos;
      EXPECT_EQ(first, int64_t(pos));
      std::vector<uint16_t> h(n, 0x3C00);
      h[pos] = pos % 2 ? 0x7C00 : 0xFE01;  // +inf, a negative NaN
      first = -1;
      EXPECT_EQ(scan(DType::F16, h, &first), 1);
      EXPECT_EQ(first, int64_t(pos));
      std::vector<uint8_t> e(n, 0x38);
      e[pos] = pos % 2 ? 0x7F : 0xFF;  // the e4m3fn NaNs
      first = -1;
      EXPECT_EQ(scan(DType::F8_E4M3, e, &first), 1);
      EXPECT_EQ(first, int64_t(pos));
      std::vector<double> d(n, 2.0);
      d[pos] = -std::numeric_limits<double>::infinity();
      first = -1;
      EXPECT_EQ(scan(DType::F64, d, &first), 1);
      EXPECT_EQ(first, int64_t(pos));
    }
  }
}

TEST(TensorScan, CountsAllAndKeepsTheFirst) {
  std::vector<uint16_t> b(1000, 0x3F80);
  for (size_t i : {13u, 14u, 500u, 999u}) b[i] = 0x7F80;
  int64_t first = -1;
  EXPECT_EQ(scan(DType::BF16, b, &first), 4);
  EXPECT_EQ(first, 13);
}

TEST(TensorScan, IntegerAndPackedFormatsAreNotInspected) {
  std::vector<uint8_t> q(64, 0xFF);
  int64_t first = -1;
  EXPECT_EQ(count_nonfinite(DType::Q8G, q.data(), q.size(), &first), 0);
  EXPECT_EQ(count_nonfinite(DType::I8, q.data(), q.size(), &first), 0);
  EXPECT_FALSE(dtype_can_be_nonfinite(DType::Q4G));
  EXPECT_TRUE(dtype_can_be_nonfinite(DType::BF16T));
}

TEST(TensorScan, StoreReportsNameCountAndFirstIndexAcrossChunks) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "herd_tensor_scan";
  std::filesystem::create_directories(dir);
  // 3 M floats (12 MB): three 4 MiB chunks, the poison in the second and third.
  std::vector<float> big(3 << 20, 0.25f);
  big[(1 << 20) + 5] = std::numeric_limits<float>::quiet_NaN();
  big[(5 << 19) + 1] = std::numeric_limits<float>::infinity();
  std::vector<uint16_t> ok(64, 0x3F80);
  std::vector<TensorToWrite> ts(2);
  ts[0].name = "big";
  ts[0].dtype = DType::F32;
  ts[0].shape = {3 << 10, 1 << 10};
  ts[0].data = big.data();
  ts[1].name = "ok";
  ts[1].dtype = DType::BF16;
  ts[1].shape = {8, 8};
  ts[1].data = ok.data();
  const std::string path = (dir / "model.safetensors").string();
  ASSERT_TRUE(write_safetensors(path, ts).is_ok());
  auto store = TensorStore::open_file(path);
  ASSERT_TRUE(store.is_ok()) << store.status().message();
  ThreadPool pool(3);
  const ScanResult r = scan_nonfinite(**store, pool);
  EXPECT_EQ(r.tensors, 2);
  EXPECT_EQ(r.scanned_bytes, big.size() * 4 + ok.size() * 2);
  ASSERT_EQ(r.bad.size(), 1u);
  EXPECT_EQ(r.bad[0].name, "big");
  EXPECT_EQ(r.bad[0].count, 2);
  EXPECT_EQ(r.bad[0].first_index, (1 << 20) + 5);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herd
