// quant/quantize: the --quant policy, names, and the fast row quantizers against formats.h's.
#include "herd/quant/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "herd/quant/formats.h"

namespace herd {
namespace {

TEST(QuantMode, NamesRoundTrip) {
  for (QuantMode m : {QuantMode::kBF16, QuantMode::kInt8, QuantMode::kInt4, QuantMode::kInt4All})
    EXPECT_EQ(parse_quant_mode(quant_mode_name(m)), m);
  EXPECT_FALSE(parse_quant_mode("q4_0").has_value());
}

TEST(QuantMode, RouterAndEmbeddingStayBf16) {
  for (QuantMode m : {QuantMode::kBF16, QuantMode::kInt8, QuantMode::kInt4, QuantMode::kInt4All}) {
    EXPECT_EQ(run_dtype(m, WeightClass::kRouter), DType::BF16);
    EXPECT_EQ(run_dtype(m, WeightClass::kEmbedding), DType::BF16);
  }
  EXPECT_EQ(run_dtype(QuantMode::kInt4, WeightClass::kShared), DType::Q4G);
  EXPECT_EQ(run_dtype(QuantMode::kInt4, WeightClass::kLmHead), DType::BF16);
  EXPECT_EQ(run_dtype(QuantMode::kInt4All, WeightClass::kLmHead), DType::Q4G);
  EXPECT_EQ(run_dtype(QuantMode::kInt8, WeightClass::kDense), DType::Q8G);
}

// Awkward widths (partial last group), exact ties at .5, zeros, and the clamped +max of Q4G.
TEST(FastQuantizers, BitIdenticalToTheScalarReference) {
  for (int64_t cols : {1, 5, 127, 128, 129, 300, 1024}) {
    std::vector<float> x(static_cast<size_t>(cols));
    uint32_t s = uint32_t(cols) * 2654435761u;
    for (auto& v : x) {
      s = s * 1664525u + 1013904223u;
      v = (float(s >> 8) / 16777216.0f - 0.5f) * 3.0f;
    }
    if (cols > 4) x[2] = 0, x[3] = -x[1];
    if (cols > 8) x[6] = 1.0f, x[7] = 0.5f / 127.0f * 2, x[8] = -std::fabs(x[1]);
    for (DType t : {DType::Q8G, DType::Q4G}) {
      const size_t rb = size_t(packed_row_bytes(t, cols)), ng = size_t(quant_groups(cols));
      std::vector<uint8_t> a(rb), b(rb);
      std::vector<float> sa(ng), sb(ng);
      if (t == DType::Q8G) {
        quantize_row_q8g(x.data(), cols, a.data(), sa.data());
        quantize_row_q8g_fast(x.data(), cols, b.data(), sb.data());
      } else {
        quantize_row_q4g(x.data(), cols, a.data(), sa.data());
        quantize_row_q4g_fast(x.data(), cols, b.data(), sb.data());
      }
      EXPECT_EQ(a, b) << dtype_name(t) << " cols " << cols;
      EXPECT_EQ(sa, sb) << dtype_name(t) << " cols " << cols;
    }
  }
}

TEST(EncodeRow, Bf16IsRoundToNearestEven) {
  const float x[3] = {1.0f, 1.00390625f /* tie: 1 + 2^-8 */, -3.5f};
  uint8_t out[6];
  encode_row(x, 3, DType::BF16, out, nullptr);
  uint16_t v[3];
  std::memcpy(v, out, 6);
  EXPECT_EQ(v[0], f32_to_bf16(1.0f));
  EXPECT_EQ(v[1], f32_to_bf16(1.00390625f));
  EXPECT_EQ(bf16_to_f32(v[1]), 1.0f);
  EXPECT_EQ(bf16_to_f32(v[2]), -3.5f);
}

}  // namespace
}  // namespace herd
