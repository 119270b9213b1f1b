// RoPE frequencies (llama3 scaling), interleaved-pair rotation and attention temperature against
// the reference numbers of spec §8 and hand computations (spec §3.4, §3 step 5).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "herd/ops/rope.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

// f32 rounding of the exact value: relative error <= 2^-24.
void expect_f32_of(float got, double want) {
  EXPECT_NEAR(got, want, std::fabs(want) * 1.2e-7);
}

RopeScaling scout_scaling() {
  return RopeScaling{16.0f, 1.0f, 1.0f, 8192};
}

TEST(RopeInvFreq, ScoutReferenceNumbers) {
  const std::vector<float> f = rope_inv_freq(128, 500000.0, scout_scaling());
  ASSERT_EQ(f.size(), 64u);
  expect_f32_of(f[0], 1.0);
  expect_f32_of(f[1], 0.8146172338565447);
  expect_f32_of(f[34], 9.384738703573801e-4);   // wavelength 6695 < 8192: unscaled
  expect_f32_of(f[35], 4.7781061769823416e-5);  // wavelength 8219 > 8192: divided by 16
  expect_f32_of(f[63], 1.5344629944572555e-7);
  // No blend band with 16/1/1: every pair is either unchanged or divided by 16.
  for (int j = 0; j < 64; ++j) {
    const double base = std::pow(500000.0, -2.0 * j / 128.0);
    expect_f32_of(f[size_t(j)], j <= 34 ? base : base / 16.0);
  }
}

TEST(RopeInvFreq, UnscaledMaverick) {
  const std::vector<float> f = rope_inv_freq(128, 500000.0, std::nullopt);
  for (int j = 0; j < 64; ++j) expect_f32_of(f[size_t(j)], std::pow(500000.0, -2.0 * j / 128.0));
}

// Legacy llama3 8/1/4 (spec §1.3): j <= 28 unchanged, 29..34 blended, >= 35 divided by 8.
TEST(RopeInvFreq, LegacyBlendBand) {
  const std::vector<float> f = rope_inv_freq(128, 500000.0, RopeScaling{8.0f, 1.0f, 4.0f, 8192});
  for (int j = 0; j < 64; ++j) {
    const double base = std::pow(500000.0, -2.0 * j / 128.0);
    const double wavelen = 2 * std::numbers::pi / base;  // low band 8192, high band 2048
    double want;
    if (j <= 28) {
      EXPECT_LT(wavelen, 2048.0);
      want = base;
    } else if (j <= 34) {
      EXPECT_GE(wavelen, 2048.0);
      EXPECT_LE(wavelen, 8192.0);
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      want = (1 - smooth) * base / 8.0 + smooth * base;
      EXPECT_GT(want, base / 8.0);
      EXPECT_LT(want, base);
    } else {
      want = base / 8.0;
    }
    expect_f32_of(f[size_t(j)], want);
  }
}

TEST(ApplyRope, KnownRotationInterleavedPairs) {
  // Pairs are adjacent elements: (x0, x1) by angle 3·1, (x2, x3) by angle 3·0.01.
  const float inv_freq[] = {1.0f, 0.01f};
  float x[] = {1, 0, 0, 2};
  apply_rope(x, 1, 4, 3, inv_freq);
  EXPECT_NEAR(x[0], std::cos(3.0), 1e-6);
  EXPECT_NEAR(x[1], std::sin(3.0), 1e-6);
  EXPECT_NEAR(x[2], -2 * std::sin(0.03), 1e-6);
  EXPECT_NEAR(x[3], 2 * std::cos(0.03), 1e-6);
  // General pair: x' = (a cos − b sin, a sin + b cos).
  float y[] = {0.5f, -1.5f};
  const float f1[] = {0.25f};
  apply_rope(y, 1, 2, 7, f1);
  EXPECT_NEAR(y[0], 0.5 * std::cos(1.75) + 1.5 * std::sin(1.75), 1e-6);
  EXPECT_NEAR(y[1], 0.5 * std::sin(1.75) - 1.5 * std::cos(1.75), 1e-6);
}

TEST(ApplyRope, PositionZeroIsIdentityAndHeadsRotateAlike) {
  const std::vector<float> f = rope_inv_freq(128, 500000.0, scout_scaling());
  test::Rng rng(21);
  std::vector<float> x = rng.vec(3 * 128), orig = x;
  apply_rope(x.data(), 3, 128, 0, f.data());
  EXPECT_EQ(x, orig);
  // Three copies of one head rotate identically.
  std::vector<float> h3(3 * 128);
  for (int h = 0; h < 3; ++h) std::copy(orig.begin(), orig.begin() + 128, h3.begin() + h * 128);
  apply_rope(h3.data(), 3, 128, 4321, f.data());
  for (int h = 1; h < 3; ++h)
    for (int i = 0; i < 128; ++i) EXPECT_EQ(h3[size_t(h * 128 + i)], h3[size_t(i)]);
}

// RoPE's point: <R(p)q, R(p')k> depends only on p − p'.
TEST(ApplyRope, RelativePositionProperty) {
  const std::vector<float> f = rope_inv_freq(128, 500000.0, scout_scaling());
  test::Rng rng(22);
  const std::vector<float> q = rng.vec(128), k = rng.vec(128);
  auto rotated_dot = [&](int64_t pq, int64_t pk) {
    std::vector<float> a = q, b = k;
    apply_rope(a.data(), 1, 128, pq, f.data());
    apply_rope(b.data(), 1, 128, pk, f.data());
    double d = 0;
    for (int i = 0; i < 128; ++i) d += double(a[size_t(i)]) * b[size_t(i)];
    return d;
  };
  const double d0 = rotated_dot(5, 2);
  // f32 angles lose ~pos·2^-24 rad, so the tolerance grows with the position.
  EXPECT_NEAR(rotated_dot(105, 102), d0, 1e-4);
  EXPECT_NEAR(rotated_dot(1003, 1000), d0, 1e-3);
  EXPECT_NEAR(rotated_dot(3, 0), d0, 1e-4);
  EXPECT_GT(std::fabs(rotated_dot(5, 5) - d0), 1e-2);  // a different offset gives another value
}

TEST(AttnTemperature, SpecReferenceNumbers) {
  for (int64_t p : {0, 1, 100, 8189, 8190}) EXPECT_EQ(attn_temperature(p, 8192, 0.1), 1.0f);
  expect_f32_of(attn_temperature(8191, 8192, 0.1), 1.0693147180559945);
  expect_f32_of(attn_temperature(16382, 8192, 0.1), 1.0693147180559945);
  expect_f32_of(attn_temperature(16383, 8192, 0.1), 1.1098612288668110);
  expect_f32_of(attn_temperature(65535, 8192, 0.1), 1.2197224577336220);
  expect_f32_of(attn_temperature(131071, 8192, 0.1), 1.2833213344056216);
}

}  // namespace
}  // namespace herd
