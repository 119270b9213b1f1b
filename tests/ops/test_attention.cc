// Attention of one query over a paged, typed KV cache (spec §3 step 7): masks from absolute
// positions (causal + chunked, §7.5, empty slots), GQA head mapping, and agreement with a
// double-precision computation over the values the pages hold.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "herd/ops/attention.h"
#include "ops/kv_test_pages.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

using test::kAllKvTypes;
using test::TestKv;

struct Case {
  AttentionShape s;
  std::vector<float> q;
  TestKv kv;
  // All heads (kv_head0 = 0) against the whole view.
  std::vector<float> run(int64_t q_pos) const {
    std::vector<float> out(size_t(s.n_heads * s.head_dim), -1.0f);
    std::vector<float> scratch(attention_scratch_floats(kv.view()));
    attention(s, q.data(), q_pos, kv.view(), 0, out.data(), scratch.data());
    return out;
  }
};

// n_tokens at positions 0.. in pages of `page_rows` (one empty page first, a hole after every
// 5th token, the last page partly empty, one empty page last), stored in layer 1 of 2.
Case make_case(KvType type, int64_t nh, int64_t nkv, int64_t hd, int64_t chunk, int64_t n_tokens,
               int64_t page_rows, uint64_t seed) {
  test::Rng rng(seed);
  Case c;
  c.s = {nh, nkv, hd, float(1.0 / std::sqrt(double(hd))), chunk};
  c.q = rng.vec(size_t(nh * hd), 2.0f);
  const std::vector<float> k = rng.vec(size_t(n_tokens * nkv * hd), 2.0f);
  const std::vector<float> v = rng.vec(size_t(n_tokens * nkv * hd));
  c.kv = test::make_test_kv(test::test_layout(type, page_rows, nkv, hd), 1,
                            test::test_positions(n_tokens, page_rows, 1, 5, 1), k, v);
  return c;
}

// Double precision over the stored (dequantized) values, rows in any order.
std::vector<double> reference(const Case& c, int64_t q_pos) {
  const int64_t hd = c.s.head_dim, group = c.s.n_heads / c.s.n_kv_heads;
  const int64_t kvd = c.kv.layout.kv_dim, n = c.kv.n_rows();
  std::vector<double> out(size_t(c.s.n_heads * hd), 0.0);
  for (int64_t h = 0; h < c.s.n_heads; ++h) {
    const int64_t off = (h / group) * hd;
    std::vector<double> w(size_t(n), 0.0);
    double mx = -1e300, sum = 0;
    for (int64_t r = 0; r < n; ++r) {
      if (!attention_allowed(q_pos, c.kv.pos[size_t(r)], c.s.chunk_size)) continue;
      double d = 0;
      for (int64_t i = 0; i < hd; ++i)
        d += double(c.q[size_t(h * hd + i)]) * c.kv.k[size_t(r * kvd + off + i)];
      w[size_t(r)] = d * c.s.scale;
      mx = std::max(mx, w[size_t(r)]);
    }
    for (int64_t r = 0; r < n; ++r) {
      if (!attention_allowed(q_pos, c.kv.pos[size_t(r)], c.s.chunk_size)) continue;
      const double p = std::exp(w[size_t(r)] - mx);
      sum += p;
      for (int64_t i = 0; i < hd; ++i)
        out[size_t(h * hd + i)] += p * c.kv.v[size_t(r * kvd + off + i)];
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
  EXPECT_FALSE(attention_allowed(INT64_MAX - 1, kKvEmpty, 0));  // an empty slot, always
}

TEST(Attention, ScratchIsOneScorePerRowAndOneHeadRow) {
  const Case c = make_case(KvType::kBF16, 4, 2, 20, 0, 40, 32, 1);
  EXPECT_EQ(attention_scratch_floats(c.kv.view()), size_t(c.kv.n_rows() + 20));
}

// Every stored type, against double precision over the same stored values: the f32 math of
// attention() is the only difference, so the bound is tight (|v| <= 1 and |q.k| <= 4*hd).
TEST(Attention, MatchesDoubleReferenceOnEveryType) {
  for (KvType type : kAllKvTypes)
    for (int64_t page_rows : {16, 32})
      for (int64_t hd : {16, 20})
        for (int64_t chunk : {int64_t(0), int64_t(8)}) {
          const Case c = make_case(type, 8, 2, hd, chunk, 37, page_rows, 31 + uint64_t(chunk));
          for (int64_t q_pos : {int64_t(0), int64_t(5), int64_t(17), int64_t(36)}) {
            const std::vector<float> got = c.run(q_pos);
            const std::vector<double> want = reference(c, q_pos);
            for (size_t i = 0; i < got.size(); ++i)
              ASSERT_NEAR(got[i], want[i], 2e-6)
                  << kv_type_name(type) << " rows " << page_rows << " hd " << hd << " chunk "
                  << chunk << " q_pos " << q_pos;
          }
        }
}

// One GQA group alone (n_kv_heads = 1, kv_head0 = g): the same bits as those heads of the
// all-heads call.
TEST(Attention, GroupCallMatchesAllHeadsBitwise) {
  for (KvType type : kAllKvTypes) {
    const Case c = make_case(type, 6, 3, 20, 8, 30, 16, 7);
    const std::vector<float> all = c.run(21);
    AttentionShape one = c.s;
    one.n_heads = 2, one.n_kv_heads = 1;
    std::vector<float> out(40), scratch(attention_scratch_floats(c.kv.view()));
    for (int64_t g = 0; g < 3; ++g) {
      attention(one, &c.q[size_t(g * 40)], 21, c.kv.view(), g, out.data(), scratch.data());
      EXPECT_EQ(0, std::memcmp(out.data(), &all[size_t(g * 40)], 160)) << kv_type_name(type);
    }
  }
}

// Masked rows are skipped, not merely down-weighted: NaN in the K/V bytes and scales of rows
// outside the query's chunk or in the future leaves the output bit-identical (empty slots hold
// NaN from the start).
TEST(Attention, MaskedRowsNeverInfluenceTheResult) {
  for (KvType type : kAllKvTypes)
    for (int64_t chunk : {int64_t(0), int64_t(8)}) {
      Case c = make_case(type, 4, 2, 20, chunk, 30, 16, 41);
      const int64_t q_pos = 20, lo = chunk > 0 ? 16 : 0;
      const std::vector<float> before = c.run(q_pos);
      int poisoned = 0;
      for (int64_t r = 0; r < c.kv.n_rows(); ++r) {
        const int64_t p = c.kv.pos[size_t(r)];
        if (p == kKvEmpty || (p >= lo && p <= q_pos)) continue;
        c.kv.poison(r, p);
        ++poisoned;
      }
      EXPECT_EQ(poisoned, 30 - (q_pos - lo + 1));
      const std::vector<float> after = c.run(q_pos);
      EXPECT_EQ(0, std::memcmp(before.data(), after.data(), before.size() * 4))
          << kv_type_name(type) << " chunk " << chunk;
      for (float x : after) EXPECT_FALSE(std::isnan(x));
    }
}

// GQA (spec §3 step 7): query head h reads kv head h / (n_heads / n_kv_heads).
TEST(Attention, GqaMapping) {
  const int64_t nh = 6, nkv = 2, hd = 4, n = 3;
  test::Rng rng(43);
  std::vector<float> k = rng.vec(size_t(n * nkv * hd)), v(k.size());
  for (int64_t j = 0; j < n; ++j)
    for (int64_t g = 0; g < nkv; ++g)
      for (int64_t i = 0; i < hd; ++i) v[size_t((j * nkv + g) * hd + i)] = float(10 * g + i);
  Case c;
  c.s = {nh, nkv, hd, 0.5f, 0};
  c.q = rng.vec(size_t(nh * hd));
  c.kv = test::make_test_kv(test::test_layout(KvType::kF32, 16, nkv, hd), 0,
                            test::test_positions(n, 16, 0, 0, 0), k, v);
  const std::vector<float> out = c.run(n - 1);
  for (int64_t h = 0; h < nh; ++h)
    for (int64_t i = 0; i < hd; ++i)  // V is constant over keys, so out = V of the kv head
      EXPECT_NEAR(out[size_t(h * hd + i)], 10.0 * (h / 3) + i, 1e-5) << "head " << h;
}

TEST(Attention, SingleKeyReturnsItsValueAndNoKeyGivesZeros) {
  for (KvType type : kAllKvTypes) {
    test::Rng rng(44);
    const std::vector<float> k = rng.vec(7 * 4), v = rng.vec(7 * 4);
    Case c;
    c.s = {2, 1, 4, 0.5f, 4};
    c.q = rng.vec(8);
    // Only token 6 is stored (slot 3 of the second page); every other slot is empty.
    std::vector<int64_t> pos(32, kKvEmpty);
    pos[19] = 6;
    c.kv = test::make_test_kv(test::test_layout(type, 16, 1, 4), 0, pos, k, v);
    const std::vector<float> one = c.run(6);
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < 4; ++i)
        EXPECT_EQ(one[size_t(h * 4 + i)], c.kv.v[size_t(19 * 4 + i)]) << kv_type_name(type);
    for (float x : c.run(5)) EXPECT_EQ(x, 0.0f);  // key in the future
    for (float x : c.run(8)) EXPECT_EQ(x, 0.0f);  // key in the previous chunk
  }
}

}  // namespace
}  // namespace herd
