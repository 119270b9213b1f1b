// RMSNorm and the weightless QK-norm (spec §3 steps 2.1 and 2.4, §7.3) against hand values.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "herd/ops/norm.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

TEST(RmsNorm, HandValues) {
  // mean(x^2) = (1+4+9+16)/4 = 7.5; scale = 1/sqrt(7.5 + 1e-5) = 0.3651481282381064.
  const float x[] = {1, 2, 3, 4}, gain[] = {1, 0.5f, 2, -1};
  float out[4];
  rms_norm(x, gain, out, 4, 1e-5f);
  EXPECT_NEAR(out[0], 0.3651481282381064, 1e-7);
  EXPECT_NEAR(out[1], 0.3651481282381064, 1e-7);
  EXPECT_NEAR(out[2], 2.1908887694286383, 1e-6);
  EXPECT_NEAR(out[3], -1.4605925129524255, 1e-6);
}

TEST(RmsNorm, InPlaceEqualsOutOfPlace) {
  test::Rng rng(11);
  std::vector<float> x = rng.vec(67, 3.0f), gain = rng.vec(67), out(67);
  rms_norm(x.data(), gain.data(), out.data(), 67, 1e-5f);
  rms_norm(x.data(), gain.data(), x.data(), 67, 1e-5f);
  EXPECT_EQ(x, out);
}

TEST(RmsNorm, ZeroInputStaysFinite) {
  const float x[] = {0, 0, 0}, gain[] = {1, 1, 1};
  float out[3];
  rms_norm(x, gain, out, 3, 1e-5f);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

TEST(QkNorm, HandValuesPerHead) {
  // Two heads of 2: [3, 4] (mean square 12.5) and [1, 2, ...] normalised independently.
  float x[] = {3, 4, 1, 2};
  qk_norm(x, 2, 2, 1e-5f);
  EXPECT_NEAR(x[0], 0.8485277980128058, 1e-7);
  EXPECT_NEAR(x[1], 1.1313703973504077, 1e-7);
  const double s = 1.0 / std::sqrt(2.5 + 1e-5);
  EXPECT_NEAR(x[2], 1 * s, 1e-7);
  EXPECT_NEAR(x[3], 2 * s, 1e-7);
}

// Spec §7.3: an RMS norm, not L2 to unit length — each head's L2 norm comes out ≈ sqrt(head_dim).
TEST(QkNorm, IsRmsNotUnitLength) {
  test::Rng rng(12);
  const int64_t heads = 3, hd = 128;
  std::vector<float> x = rng.vec(size_t(heads * hd), 5.0f);
  qk_norm(x.data(), heads, hd, 1e-5f);
  for (int64_t h = 0; h < heads; ++h) {
    double ss = 0;
    for (int64_t i = 0; i < hd; ++i) ss += double(x[size_t(h * hd + i)]) * x[size_t(h * hd + i)];
    EXPECT_NEAR(std::sqrt(ss), std::sqrt(128.0), 1e-3);
    EXPECT_GT(std::sqrt(ss), 10.0);  // unit-length normalisation would give 1
  }
}

TEST(QkNorm, EqualsRmsNormWithUnitGain) {
  test::Rng rng(13);
  std::vector<float> x = rng.vec(256), ones(128, 1.0f), ref(256);
  rms_norm(x.data(), ones.data(), ref.data(), 128, 1e-5f);
  rms_norm(x.data() + 128, ones.data(), ref.data() + 128, 128, 1e-5f);
  qk_norm(x.data(), 2, 128, 1e-5f);
  EXPECT_EQ(x, ref);
}

}  // namespace
}  // namespace herd
