// The fast path's vectorized SwiGLU, RMSNorm, QK-norm and RoPE against the scalar references, on
// every dispatch target the machine has (the fallbacks are the references themselves).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "herd/ops/activation.h"
#include "herd/ops/gemm.h"
#include "herd/ops/norm.h"
#include "herd/ops/rope.h"

namespace herd {
namespace {

constexpr float kEps = std::numeric_limits<float>::epsilon();

std::vector<float> values(int64_t n, float scale, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x = scale * (float(int64_t(seed >> 40) - (1 << 23)) / float(1 << 23));
  }
  return v;
}

// silu(g)·u = g·u / (1 + e^-g): the polynomial exp is within ~2 ulp, the division and products
// add 3 roundings, so 8 ulp of the result bounds it (plus an absolute floor where it is ~0).
TEST(SwigluFast, MatchesReferenceOnEveryTarget) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int64_t n : {1, 15, 16, 17, 100, 1000}) {
      std::vector<float> g = values(n, 30.0f, uint64_t(n)), u = values(n, 2.0f, uint64_t(n) + 7);
      if (n >= 4) g[0] = -200.0f, g[1] = 200.0f, g[2] = 0.0f, g[3] = -88.0f;  // e^x extremes
      std::vector<float> a(g.size()), b(g.size());
      swiglu(g.data(), u.data(), a.data(), n);
      swiglu_fast(g.data(), u.data(), b.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(b[size_t(i)], a[size_t(i)], 8 * kEps * std::fabs(a[size_t(i)]) + 1e-37f)
            << isa_name(isa) << " n=" << n << " g=" << g[size_t(i)];
    }
  }
  force_isa(detected_isa());
}

// Same f32 squares summed in double in another order: the mean differs by ~1e-16 relative,
// then 1/sqrt and two products: 4 ulp of each output.
TEST(RmsNormFast, MatchesReferenceOnEveryTarget) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int64_t n : {1, 7, 8, 9, 64, 1000, 5120}) {
      const std::vector<float> x = values(n, 3.0f, uint64_t(n)), gain = values(n, 1.5f, 99);
      std::vector<float> a(x.size()), b(x.size());
      rms_norm(x.data(), gain.data(), a.data(), n, 1e-5f);
      rms_norm_fast(x.data(), gain.data(), b.data(), n, 1e-5f);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(b[size_t(i)], a[size_t(i)], 4 * kEps * std::fabs(a[size_t(i)]) + 1e-37f)
            << isa_name(isa) << " n=" << n;
    }
    std::vector<float> z(33, 0.0f), gz(33, 1.0f), out(33, 1.0f);  // all zero: finite zeros
    rms_norm_fast(z.data(), gz.data(), out.data(), 33, 1e-5f);
    for (float v : out) ASSERT_EQ(v, 0.0f);
  }
  force_isa(detected_isa());
}

// Per head the same as RmsNormFast (the squares summed in another order): 4 ulp.
TEST(QkNormFast, MatchesReferenceOnEveryTarget) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int64_t hd : {1, 8, 20, 64, 128}) {
      const int64_t heads = 5;
      std::vector<float> a = values(heads * hd, 4.0f, uint64_t(hd)), b = a;
      qk_norm(a.data(), heads, hd, 1e-5f);
      qk_norm_fast(b.data(), heads, hd, 1e-5f);
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_NEAR(b[i], a[i], 4 * kEps * std::fabs(a[i]) + 1e-37f)
            << isa_name(isa) << " hd=" << hd;
    }
  }
  force_isa(detected_isa());
}

// The vector rotation rounds each product and the sum as the scalar one: bit for bit, for head
// sizes with and without a tail of pairs, at positions where cos / sin take every sign.
TEST(ApplyRopeFast, BitwiseReferenceOnEveryTarget) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int64_t hd : {2, 6, 16, 48, 64, 128, 130}) {
      const std::vector<float> inv = rope_inv_freq(hd, 500000.0, std::nullopt);
      for (int64_t pos : {0, 1, 7, 1000, 123456}) {
        std::vector<float> cs(static_cast<size_t>(hd));
        rope_cos_sin(pos, inv.data(), hd / 2, cs.data());
        const int64_t heads = 3;
        std::vector<float> a = values(heads * hd, 2.0f, uint64_t(hd + pos)), b = a, c = a;
        apply_rope(a.data(), heads, hd, pos, inv.data());
        apply_rope(b.data(), heads, hd, cs.data());
        apply_rope_fast(c.data(), heads, hd, cs.data());
        for (size_t i = 0; i < a.size(); ++i) {
          ASSERT_EQ(b[i], a[i]) << "hd=" << hd << " pos=" << pos << " i=" << i;
          ASSERT_EQ(c[i], a[i]) << isa_name(isa) << " hd=" << hd << " pos=" << pos << " i=" << i;
        }
      }
    }
  }
  force_isa(detected_isa());
}

}  // namespace
}  // namespace herd
