// The sampler's passes over a row of logits (ops/logit_scan.h): every target gives the scalar
// code's bits (weights, block sums, masses, maxima, indices), the scalar exp transcription gives
// exp512's bits, and the sums are what they claim against double references.
// exp512 uses _mm512 max/min, whose undefined pass-through lanes GCC 12 reports as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "herd/ops/logit_scan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "herd/ops/cpu_features.h"
#include "herd/ops/exp_avx512.h"
#include "herd/ops/gemm.h"
#include "ops_test_util.h"

namespace herd {
namespace {

constexpr Isa kTargets[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

// Logits in [-scale, scale] with -inf, NaN, ties and the row's maximum placed inside.
std::vector<float> row(int64_t n, float scale, uint64_t seed) {
  std::vector<float> x = test::Rng(seed).vec(size_t(n), scale);
  if (n > 40) {
    x[3] = -INFINITY, x[17] = NAN, x[29] = x[30] = x[31] = 1.25f;
    x[size_t(n / 2)] = scale + 1.0f;  // the maximum, once
  }
  return x;
}

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, 4) == 0;
}

struct Pass {
  std::vector<float> w;
  std::vector<double> blocks;
  float mass[kExpMaxFloors] = {};
};

Pass run(const std::vector<float>& x, float shift, float scale) {
  const int64_t n = int64_t(x.size());
  Pass p;
  p.w.assign(x.size(), -1.0f);
  p.blocks.assign(size_t((n + kExpBlock - 1) / kExpBlock), -1.0);
  static constexpr float kFloors[kExpMaxFloors] = {-0.5f, -2.0f, -7.0f, -30.0f};
  exp_sums(x.data(), n, shift, scale, p.w.data(),
           {p.blocks.data(), kExpMaxFloors, kFloors, p.mass});
  return p;
}

TEST(LogitScan, ExpScalarGivesTheExp512Bits) {
  const CpuFeatures& f = cpu_features();
  if (!f.avx512f || !f.avx512dq || !f.avx512bw || !f.avx512vl) GTEST_SKIP() << "no AVX-512";
  std::vector<float> x = {-INFINITY, INFINITY, NAN, -104.0f, 89.0f, -103.97f, -87.34f, 88.73f};
  for (float v = -110.0f; v < 95.0f; v += 0.00731f) x.push_back(v);
  while (x.size() % 16) x.push_back(0.0f);
  auto vec = [](const float* in, float* out, size_t n)
      __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) {
    for (size_t i = 0; i < n; i += 16) _mm512_storeu_ps(out + i, exp512(_mm512_loadu_ps(in + i)));
  };
  std::vector<float> want(x.size());
  vec(x.data(), want.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_TRUE(same_bits(exp_scalar(x[i]), want[i]))
        << "x = " << x[i] << ": " << exp_scalar(x[i]) << " vs " << want[i];
}

// Weights, block sums and masses: the scalar target's bits on every target, for lengths around
// the vector, lane and block sizes; -inf and NaN weigh 0.
TEST(LogitScan, ExpSumsSameBitsOnEveryTarget) {
  for (int64_t n : {1, 7, 15, 16, 17, 127, 128, 129, 200, 1000, 4099}) {
    const std::vector<float> x = row(n, 12.0f, uint64_t(n));
    force_isa(Isa::kScalar);
    const Pass want = run(x, 13.0f, 1.0f / 0.7f);
    for (int64_t i = 0; i < n; ++i) {
      if (!(x[size_t(i)] == x[size_t(i)]) || x[size_t(i)] == -INFINITY) {
        EXPECT_EQ(want.w[size_t(i)], 0.0f) << "i = " << i;
      }
    }
    for (Isa isa : kTargets) {
      if (isa > detected_isa()) continue;
      force_isa(isa);
      const Pass got = run(x, 13.0f, 1.0f / 0.7f);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_TRUE(same_bits(got.w[size_t(i)], want.w[size_t(i)]))
            << isa_name(isa) << " n=" << n << " i=" << i;
      for (size_t b = 0; b < want.blocks.size(); ++b)
        ASSERT_EQ(got.blocks[b], want.blocks[b]) << isa_name(isa) << " n=" << n << " block " << b;
      for (int j = 0; j < kExpMaxFloors; ++j)
        ASSERT_TRUE(same_bits(got.mass[j], want.mass[j])) << isa_name(isa) << " n=" << n;
    }
  }
  force_isa(detected_isa());
}

// Against double references: each weight within 2 ulp of e^v (exp512's accuracy); a block sum
// equals its lanes rescanned as logit_scan.h states (bit for bit, the sampler's draw relies on
// it); each mass within its stated relative bound of the exact sum over its floor.
TEST(LogitScan, ExpSumsMeanWhatTheySay) {
  for (Isa isa : kTargets) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    const int64_t n = 50000;
    const std::vector<float> x = row(n, 20.0f, 5);
    const float shift = 21.0f, scale = 1.0f / 1.3f;
    const Pass p = run(x, shift, scale);
    double exact_mass[kExpMaxFloors] = {};
    const float floors[kExpMaxFloors] = {-0.5f, -2.0f, -7.0f, -30.0f};
    for (int64_t i = 0; i < n; ++i) {
      const float v = (x[size_t(i)] - shift) * scale;
      if (!(v == v) || v == -INFINITY) continue;
      const double e = std::exp(double(v));
      ASSERT_LE(std::fabs(p.w[size_t(i)] - e), 2.5 * std::ldexp(1.0, std::ilogb(e) - 23))
          << "v = " << v;
      for (int j = 0; j < kExpMaxFloors; ++j)
        if (v >= floors[j]) exact_mass[j] += p.w[size_t(i)];
    }
    for (int64_t b = 0; b * kExpBlock < n; ++b) {
      double block = 0;
      for (int l = 0; l < kExpLanes; ++l) {
        double lane = 0;
        for (int64_t i = b * kExpBlock + l; i < std::min(n, (b + 1) * kExpBlock); i += kExpLanes)
          lane += p.w[size_t(i)];
        block = l == 0 ? lane : block + lane;
      }
      ASSERT_EQ(p.blocks[size_t(b)], block) << isa_name(isa) << " block " << b;
    }
    const double bound = (double(n) / 16 + 16) * 0x1p-24;
    for (int j = 0; j < kExpMaxFloors; ++j) {
      EXPECT_GT(exact_mass[j], 0.0);
      EXPECT_LE(std::fabs(p.mass[j] - exact_mass[j]), bound * exact_mass[j]) << isa_name(isa);
    }
  }
  force_isa(detected_isa());
}

TEST(LogitScan, MaxFirstIndexAndCompactionMatchScalar) {
  for (int64_t n : {1, 5, 16, 33, 1000, 202048}) {
    const std::vector<float> x = row(n, 8.0f, uint64_t(n) + 3);
    float want_max = -INFINITY;
    for (float v : x) want_max = v > want_max ? v : want_max;
    int64_t want_first = -1;
    for (int64_t i = 0; i < n && want_first < 0; ++i)
      if (x[size_t(i)] == 1.25f) want_first = i;
    std::vector<int32_t> want_idx;
    for (int64_t i = 0; i < n; ++i)
      if (x[size_t(i)] >= 6.5f) want_idx.push_back(int32_t(i));
    for (Isa isa : kTargets) {
      if (isa > detected_isa()) continue;
      force_isa(isa);
      std::vector<float> clean(x.size());
      EXPECT_EQ(clean_max(x.data(), n, clean.data()), want_max) << isa_name(isa);
      EXPECT_EQ(clean_max(x.data(), n, nullptr), want_max) << isa_name(isa);
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[size_t(i)];
        ASSERT_TRUE(same_bits(clean[size_t(i)], v == v ? v : -INFINITY)) << isa_name(isa) << i;
      }
      EXPECT_EQ(first_index_of(x.data(), n, 1.25f), want_first) << isa_name(isa) << " n=" << n;
      EXPECT_EQ(first_index_of(x.data(), n, 99.0f), -1) << isa_name(isa);
      std::vector<int32_t> idx(size_t(n + 16));
      const int64_t k = indices_at_least(x.data(), n, 6.5f, idx.data());
      idx.resize(size_t(k));
      EXPECT_EQ(idx, want_idx) << isa_name(isa) << " n=" << n;
    }
  }
  // All NaN / -inf: the maximum is -inf.
  const std::vector<float> none = {NAN, -INFINITY, NAN};
  for (Isa isa : kTargets) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    EXPECT_EQ(clean_max(none.data(), 3, nullptr), -INFINITY) << isa_name(isa);
  }
  force_isa(detected_isa());
}

}  // namespace
}  // namespace herd
