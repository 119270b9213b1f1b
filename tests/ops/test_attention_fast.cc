// The fast path's attention against the reference: same masks, rounding differences only.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "herd/ops/attention.h"
#include "herd/ops/attention_fast.h"
#include "herd/ops/gemm.h"

namespace herd {
namespace {

struct Lcg {
  uint64_t s;
  float next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return float(int64_t(s >> 40) - (1 << 23)) / float(1 << 23);  // [-1, 1)
  }
};

void compare(int64_t hd, int64_t n_keys, int64_t chunk, Isa isa) {
  force_isa(isa);
  AttentionShape s{4, 2, hd, 1.0f / std::sqrt(float(hd)), chunk};
  Lcg r{uint64_t(hd * 1000 + n_keys)};
  const int64_t stride = s.n_kv_heads * hd + 3;  // padded rows
  std::vector<float> q(size_t(s.n_heads * hd)), k(size_t(n_keys * stride)), v(k.size());
  std::vector<int64_t> pos(static_cast<size_t>(n_keys));
  for (auto& x : q) x = 2 * r.next();
  for (auto& x : k) x = 2 * r.next();
  for (auto& x : v) x = r.next();
  for (int64_t j = 0; j < n_keys; ++j) pos[size_t(j)] = (j * 7) % n_keys;  // scrambled order
  std::vector<float> a(q.size()), b(q.size()), scratch(static_cast<size_t>(n_keys));
  for (int64_t q_pos : {int64_t(0), n_keys / 2, n_keys - 1}) {
    attention(s, q.data(), q_pos, k.data(), v.data(), stride, pos.data(), n_keys, a.data(),
              scratch.data());
    attention_fast(s, q.data(), q_pos, k.data(), v.data(), stride, pos.data(), n_keys, b.data(),
                   scratch.data());
    // Outputs are convex combinations of |v| <= 1; scores are sums of hd products of size <= 4.
    // Reordered f32 sums differ by <= hd * 4 * eps in a score, which moves the weights by a
    // relative amount of the same order: 1e-5 absolute covers hd up to 200 with margin.
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_NEAR(a[i], b[i], 1e-5f) << "hd " << hd << " keys " << n_keys << " q " << q_pos;
  }
  force_isa(detected_isa());
}

TEST(AttentionFast, MatchesReferenceOnEveryTarget) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    for (int64_t hd : {16, 40, 88, 128})
      for (int64_t n : {1, 17, 300})
        for (int64_t chunk : {0, 8}) compare(hd, n, chunk, isa);
  }
}

}  // namespace
}  // namespace herd
