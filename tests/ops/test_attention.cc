// Attention of one query over cached K/V (spec §3 step 7): masks from absolute positions
// (causal + chunked, §7.5), GQA head mapping, and agreement with a double-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "herd/ops/attention.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

struct Case {
  AttentionShape s;
  int64_t n_keys;
  std::vector<float> q, k, v;  // k, v: n_keys rows of n_kv_heads*head_dim
  std::vector<int64_t> pos;
  std::vector<float> run(int64_t q_pos) const {
    std::vector<float> out(size_t(s.n_heads * s.head_dim)), scratch(size_t(n_keys) + 1);
    attention(s, q.data(), q_pos, k.data(), v.data(), s.n_kv_heads * s.head_dim, pos.data(), n_keys,
              out.data(), scratch.data());
    return out;
  }
};

Case make_case(int64_t nh, int64_t nkv, int64_t hd, int64_t chunk, int64_t n_keys, uint64_t seed) {
  test::Rng rng(seed);
  Case c;
  c.s = {nh, nkv, hd, float(1.0 / std::sqrt(double(hd))), chunk};
  c.n_keys = n_keys;
  c.q = rng.vec(size_t(nh * hd), 2.0f);
  c.k = rng.vec(size_t(n_keys * nkv * hd), 2.0f);
  c.v = rng.vec(size_t(n_keys * nkv * hd));
  // Positions in a scrambled order (a ring buffer stores them so): 0..n_keys-1 permuted.
  for (int64_t j = 0; j < n_keys; ++j) c.pos.push_back((j * 7) % n_keys);
  return c;
}

std::vector<double> reference(const Case& c, int64_t q_pos) {
  const int64_t hd = c.s.head_dim, group = c.s.n_heads / c.s.n_kv_heads;
  std::vector<double> out(size_t(c.s.n_heads * hd), 0.0);
  for (int64_t h = 0; h < c.s.n_heads; ++h) {
    std::vector<double> w(size_t(c.n_keys), 0.0);
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < c.n_keys; ++j) {
      if (!attention_allowed(q_pos, c.pos[size_t(j)], c.s.chunk_size)) continue;
      double d = 0;
      for (int64_t i = 0; i < hd; ++i)
        d += double(c.q[size_t(h * hd + i)]) *
             c.k[size_t(j * c.s.n_kv_heads * hd + (h / group) * hd + i)];
      w[size_t(j)] = d * c.s.scale;
      mx = std::max(mx, w[size_t(j)]);
    }
    for (int64_t j = 0; j < c.n_keys; ++j) {
      if (!attention_allowed(q_pos, c.pos[size_t(j)], c.s.chunk_size)) continue;
      const double p = std::exp(w[size_t(j)] - mx);
      sum += p;
      for (int64_t i = 0; i < hd; ++i)
        out[size_t(h * hd + i)] += p * c.v[size_t(j * c.s.n_kv_heads * hd + (h / group) * hd + i)];
    }
    if (sum > 0)
      for (int64_t i = 0; i < hd; ++i) out[size_t(h * hd + i)] /= sum;
  }
  return out;
}

TEST(AttentionAllowed, CausalAndChunkedTable) {
  // chunk 4: chunks [0,4), [4,8), ...
  EXPECT_TRUE(attention_allowed(5, 4, 4));
  EXPECT_TRUE(attention_allowed(5, 5, 4));
  EXPECT_FALSE(attention_allowed(5, 3, 4));  // previous chunk
  EXPECT_FALSE(attention_allowed(5, 6, 4));  // future
  EXPECT_TRUE(attention_allowed(3, 0, 4));
  EXPECT_FALSE(attention_allowed(4, 3, 4));  // first token of a chunk sees only itself
  EXPECT_TRUE(attention_allowed(4, 4, 4));
  EXPECT_TRUE(attention_allowed(100, 0, 0));  // no chunking: plain causal
  EXPECT_FALSE(attention_allowed(100, 101, 0));
  // Spec §6: at p = 8192·n only p itself on chunked layers.
  EXPECT_FALSE(attention_allowed(8192, 8191, 8192));
  EXPECT_TRUE(attention_allowed(16383, 8192, 8192));
}

TEST(Attention, MatchesDoubleReference) {
  for (int64_t chunk : {int64_t(0), int64_t(8)}) {
    const Case c = make_case(8, 2, 16, chunk, 37, 31 + uint64_t(chunk));
    for (int64_t q_pos : {int64_t(0), int64_t(5), int64_t(17), int64_t(36)}) {
      const std::vector<float> got = c.run(q_pos);
      const std::vector<double> want = reference(c, q_pos);
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 2e-6) << "chunk " << chunk << " q_pos " << q_pos;
    }
  }
}

// Masked keys are skipped, not merely down-weighted: garbage (even NaN / inf) in K/V rows
// outside the query's chunk or in the future must leave the output bit-identical.
TEST(Attention, ChunkedIgnoresKeysOutsideChunk) {
  Case c = make_case(4, 2, 8, 8, 30, 41);
  const int64_t q_pos = 20;  // chunk [16, 24)
  const std::vector<float> before = c.run(q_pos);
  const int64_t w = c.s.n_kv_heads * c.s.head_dim;
  int poisoned = 0;
  for (int64_t j = 0; j < c.n_keys; ++j) {
    const int64_t p = c.pos[size_t(j)];
    if (p >= 16 && p <= q_pos) continue;
    for (int64_t i = 0; i < w; ++i) {
      c.k[size_t(j * w + i)] = (i % 2) ? std::numeric_limits<float>::quiet_NaN() : 1e30f;
      c.v[size_t(j * w + i)] = (i % 2) ? std::numeric_limits<float>::infinity() : -1e30f;
    }
    ++poisoned;
  }
  EXPECT_EQ(poisoned, 30 - 5);
  const std::vector<float> after = c.run(q_pos);
  EXPECT_EQ(0, std::memcmp(before.data(), after.data(), before.size() * 4));
}

TEST(Attention, CausalIgnoresFutureKeys) {
  Case c = make_case(4, 4, 8, 0, 25, 42);
  const int64_t q_pos = 11;
  const std::vector<float> before = c.run(q_pos);
  const int64_t w = c.s.n_kv_heads * c.s.head_dim;
  for (int64_t j = 0; j < c.n_keys; ++j)
    if (c.pos[size_t(j)] > q_pos)
      for (int64_t i = 0; i < w; ++i) c.k[size_t(j * w + i)] = c.v[size_t(j * w + i)] = NAN;
  const std::vector<float> after = c.run(q_pos);
  EXPECT_EQ(0, std::memcmp(before.data(), after.data(), before.size() * 4));
}

// GQA (spec §3 step 7): query head h reads kv head h / (n_heads / n_kv_heads).
TEST(Attention, GqaMapping) {
  const int64_t nh = 6, nkv = 2, hd = 4, n_keys = 3;
  Case c = make_case(nh, nkv, hd, 0, n_keys, 43);
  for (int64_t j = 0; j < n_keys; ++j)
    for (int64_t g = 0; g < nkv; ++g)
      for (int64_t i = 0; i < hd; ++i) c.v[size_t((j * nkv + g) * hd + i)] = float(10 * g + i);
  const std::vector<float> out = c.run(n_keys - 1);
  for (int64_t h = 0; h < nh; ++h)
    for (int64_t i = 0; i < hd; ++i)  // V is constant over keys, so out = V of the kv head
      EXPECT_NEAR(out[size_t(h * hd + i)], 10.0 * (h / 3) + i, 1e-5) << "head " << h;
}

TEST(Attention, SingleKeyReturnsItsValueAndNoKeyGivesZeros) {
  Case c = make_case(2, 1, 4, 4, 1, 44);
  c.pos = {6};
  const std::vector<float> one = c.run(6);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(one[size_t(h * 4 + i)], c.v[size_t(i)]);
  for (float x : c.run(5)) EXPECT_EQ(x, 0.0f);  // key in the future
  for (float x : c.run(8)) EXPECT_EQ(x, 0.0f);  // key in the previous chunk
}

}  // namespace
}  // namespace herd
