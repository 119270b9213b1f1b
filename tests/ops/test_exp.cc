// The fast paths' vectorized exp: exp256 (AVX2, exp_avx2.h) against std::exp in double, and
// bitwise against exp512 (AVX-512, exp_avx512.h) where the CPU has both, over a dense sweep of the
// range softmax and SwiGLU feed it, plus the clamped ends.
// GCC's AVX-512 intrinsic headers start some vectors undefined (as the kernels' files say too).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "herd/ops/cpu_features.h"
#include "herd/ops/exp_avx2.h"
#include "herd/ops/exp_avx512.h"

namespace herd {
namespace {

__attribute__((target("avx2,fma"))) void exp_avx2(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; i += 8) _mm256_storeu_ps(y + i, exp256(_mm256_loadu_ps(x + i)));
}

__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) void exp_avx512(const float* x,
                                                                              float* y, size_t n) {
  for (size_t i = 0; i < n; i += 16) _mm512_storeu_ps(y + i, exp512(_mm512_loadu_ps(x + i)));
}

// Inputs: -inf, +inf, the clamp bounds and beyond, the denormal and overflow edges, and a dense
// sweep of [-110, 95]; a multiple of 16 long.
std::vector<float> inputs() {
  std::vector<float> x = {-INFINITY, INFINITY, -1e30f, 1e30f, -104.0f, 89.0f, -103.97f, -87.34f,
                          -87.33f,   88.72f,   88.73f, 0.0f,  -0.0f,   1e-8f, -1e-8f,   1.0f};
  for (float v = -110.0f; v < 95.0f; v += 0.0137f) x.push_back(v);
  while (x.size() % 16) x.push_back(0.5f);
  return x;
}

// Distance in units in the last place between two finite floats of the same sign.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(int64_t(ia) - int64_t(ib));
}

TEST(Exp, Avx2WithinTwoUlpOfExp) {
  if (!cpu_features().avx2 || !cpu_features().fma) GTEST_SKIP() << "no AVX2 + FMA";
  const std::vector<float> x = inputs();
  std::vector<float> y(x.size());
  exp_avx2(x.data(), y.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = float(std::exp(double(std::fmin(std::fmax(x[i], -104.0f), 89.0f))));
    if (std::isinf(want)) {
      EXPECT_TRUE(std::isinf(y[i])) << "x = " << x[i];
      continue;
    }
    if (want < 1.2e-38f) {  // 0 and denormals: absolute, a few denormal steps
      EXPECT_NEAR(y[i], want, 3e-45f) << "x = " << x[i];
      continue;
    }
    EXPECT_LE(ulps(y[i], want), 2) << "x = " << x[i] << " got " << y[i] << " want " << want;
  }
  EXPECT_EQ(y[0], 0.0f);  // -inf: softmax's masked lanes
  EXPECT_TRUE(std::isinf(y[1]));
  EXPECT_EQ(y[11], 1.0f);  // exp(0) exactly
}

TEST(Exp, Avx2GivesTheAvx512Bits) {
  const CpuFeatures& f = cpu_features();
  if (!f.avx512f || !f.avx512dq || !f.avx512bw || !f.avx512vl) GTEST_SKIP() << "no AVX-512";
  const std::vector<float> x = inputs();
  std::vector<float> a(x.size()), b(x.size());
  exp_avx2(x.data(), a.data(), x.size());
  exp_avx512(x.data(), b.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(std::memcmp(&a[i], &b[i], 4), 0) << "x = " << x[i] << ": " << a[i] << " vs " << b[i];
}

}  // namespace
}  // namespace herd
