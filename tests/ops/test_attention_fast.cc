// The fast path's attention against the reference: same masks, rounding differences only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
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

// ---- attention_group_fast: many queries x one GQA group ----

// A KV cache view: rows of [n_kv_heads*hd] floats padded to `stride`, positions in any order.
struct Keys {
  int64_t stride = 0, n = 0;
  std::vector<float> k, v;
  std::vector<int64_t> pos;
};

Keys make_keys(const AttentionShape& s, int64_t n, uint64_t seed) {
  Keys c;
  Lcg r{seed};
  c.stride = s.n_kv_heads * s.head_dim + 3;
  c.n = n;
  c.k.resize(size_t(n * c.stride));
  c.v.resize(c.k.size());
  c.pos.resize(size_t(n));
  for (auto& x : c.k) x = 2 * r.next();
  for (auto& x : c.v) x = r.next();
  for (int64_t j = 0; j < n; ++j) c.pos[size_t(j)] = (j * 7) % n;  // scrambled order
  return c;
}

// `c` with masked rows inserted: `before` rows first, one after every `every`-th row, `after`
// rows last. They hold NaN and a position later than every query, so no query may see them.
Keys with_masked_rows(const Keys& c, int64_t before, int64_t every, int64_t after) {
  Keys m;
  m.stride = c.stride;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto add_masked = [&] {
    m.k.insert(m.k.end(), size_t(c.stride), nan);
    m.v.insert(m.v.end(), size_t(c.stride), nan);
    m.pos.push_back(int64_t(1) << 40);
  };
  for (int64_t i = 0; i < before; ++i) add_masked();
  for (int64_t j = 0; j < c.n; ++j) {
    m.k.insert(m.k.end(), c.k.begin() + j * c.stride, c.k.begin() + (j + 1) * c.stride);
    m.v.insert(m.v.end(), c.v.begin() + j * c.stride, c.v.begin() + (j + 1) * c.stride);
    m.pos.push_back(c.pos[size_t(j)]);
    if (every > 0 && j % every == every - 1) add_masked();
  }
  for (int64_t i = 0; i < after; ++i) add_masked();
  m.n = int64_t(m.pos.size());
  return m;
}

struct Queries {
  int64_t stride = 0;
  std::vector<float> q;
  std::vector<int64_t> pos;
};

// n query tokens at positions spread over [0, max_pos], rows padded to `stride`.
Queries make_queries(const AttentionShape& s, int64_t n, int64_t max_pos, uint64_t seed) {
  Queries qs;
  Lcg r{seed};
  qs.stride = s.n_heads * s.head_dim + 5;
  qs.q.resize(size_t(n * qs.stride));
  for (auto& x : qs.q) x = 2 * r.next();
  for (int64_t t = 0; t < n; ++t) qs.pos.push_back((t * 37 + 11) % (max_pos + 1));
  return qs;
}

// Runs attention_group_fast for queries [t0, t0+n) of `qs` and every kv head; the output rows
// (same layout as q) start as NaN so a head left unwritten shows.
std::vector<float> run_group(const AttentionShape& s, const Queries& qs, int64_t t0, int64_t n,
                             const Keys& c, AttentionScratch& scratch) {
  std::vector<float> out(size_t(n * qs.stride), std::numeric_limits<float>::quiet_NaN());
  AttentionQueries aq;
  aq.q = qs.q.data() + t0 * qs.stride;
  aq.q_stride = qs.stride;
  aq.pos = qs.pos.data() + t0;
  aq.n = n;
  aq.out = out.data();
  aq.out_stride = qs.stride;
  for (int64_t g = 0; g < s.n_kv_heads; ++g)
    attention_group_fast(s, g, aq, c.k.data(), c.v.data(), c.stride, c.pos.data(), c.n, scratch);
  return out;
}

void compare_group(const AttentionShape& s, int64_t n_keys, int64_t n, Isa isa) {
  force_isa(isa);
  const Keys c = make_keys(s, n_keys, uint64_t(s.head_dim * 1000 + n_keys));
  const Queries qs = make_queries(s, n, n_keys - 1, uint64_t(n * 31 + s.head_dim));
  AttentionScratch scratch;
  const std::vector<float> out = run_group(s, qs, 0, n, c, scratch);
  const int64_t qd = s.n_heads * s.head_dim;
  std::vector<float> ref(static_cast<size_t>(qd)), tmp(static_cast<size_t>(n_keys));
  for (int64_t t = 0; t < n; ++t) {
    attention(s, &qs.q[size_t(t * qs.stride)], qs.pos[size_t(t)], c.k.data(), c.v.data(), c.stride,
              c.pos.data(), n_keys, ref.data(), tmp.data());
    // The bound of compare() above: scores differ by rounding only (FMA chains in another order,
    // <= ~hd*4*eps relative before the scale), exp by a few ulp, and the online softmax adds one
    // rescale rounding per 16-key step (n_keys/16 * eps relative, ~1e-6 at 300 keys). Outputs
    // are convex combinations of |v| <= 1, so relative is absolute: 1e-5 holds with margin.
    for (int64_t i = 0; i < qd; ++i)
      ASSERT_NEAR(ref[size_t(i)], out[size_t(t * qs.stride + i)], 1e-5f)
          << "hd " << s.head_dim << " heads " << s.n_heads << "/" << s.n_kv_heads << " keys "
          << n_keys << " chunk " << s.chunk_size << " n " << n << " query " << t << " isa "
          << isa_name(isa);
  }
  force_isa(detected_isa());
}

TEST(AttentionGroupFast, MatchesReferenceOnEveryTarget) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    for (int64_t hd : {16, 40, 88, 128})
      for (auto [nh, nkv] : {std::pair<int64_t, int64_t>{4, 2}, {10, 2}})
        for (int64_t n_keys : {1, 17, 300})
          for (int64_t chunk : {0, 8})
            for (int64_t n : {1, 3, 33}) {
              const AttentionShape s{nh, nkv, hd, 1.0f / std::sqrt(float(hd)), chunk};
              compare_group(s, n_keys, n, isa);
            }
  }
}

bool same_bits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, size_t(n) * sizeof(float)) == 0;
}

// A query's output is the same bits alone (decode) as in any batch, and with masked rows (NaN)
// anywhere in the cache: before, between and after the allowed ones.
TEST(AttentionGroupFast, BitwiseBatchInvariant) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int64_t hd : {40, 128})
      for (int64_t chunk : {0, 8}) {
        const AttentionShape s{10, 2, hd, 1.0f / std::sqrt(float(hd)), chunk};
        const int64_t n_keys = 300, n = 33, qd = s.n_heads * hd;
        const Keys c = make_keys(s, n_keys, uint64_t(hd + chunk));
        const Queries qs = make_queries(s, n, n_keys - 1, uint64_t(hd * 3 + chunk));
        AttentionScratch scratch;
        const std::vector<float> batch = run_group(s, qs, 0, n, c, scratch);
        const Keys masked[] = {with_masked_rows(c, 0, 0, 37), with_masked_rows(c, 5, 0, 0),
                               with_masked_rows(c, 16, 0, 3), with_masked_rows(c, 1, 7, 2)};
        for (int64_t t = 0; t < n; ++t) {
          const float* want = &batch[size_t(t * qs.stride)];
          const std::vector<float> alone = run_group(s, qs, t, 1, c, scratch);
          EXPECT_TRUE(same_bits(want, alone.data(), qd)) << "alone, query " << t;
          for (const Keys& m : masked) {
            const std::vector<float> o = run_group(s, qs, t, 1, m, scratch);
            EXPECT_TRUE(same_bits(want, o.data(), qd)) << "masked rows, query " << t;
          }
        }
        // Other batch splits: blocks of 8 queries, and the batch over the masked caches.
        for (int64_t t0 = 0; t0 < n; t0 += 8) {
          const int64_t b = std::min<int64_t>(8, n - t0);
          const std::vector<float> o = run_group(s, qs, t0, b, masked[3], scratch);
          EXPECT_TRUE(same_bits(&batch[size_t(t0 * qs.stride)], o.data(), (b - 1) * qs.stride + qd))
              << "block at " << t0 << " isa " << isa_name(isa);
        }
      }
  }
  force_isa(detected_isa());
}

// A query that may see no key gets zeros (as attention() does), also beside queries that can.
TEST(AttentionGroupFast, NoAllowedKeyGivesZeros) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    const AttentionShape s{4, 2, 40, 1.0f / std::sqrt(40.0f), 0};
    Keys c = make_keys(s, 20, 9);
    for (int64_t j = 0; j < c.n; ++j) c.pos[size_t(j)] += 10;  // keys at positions 10..29
    Queries qs = make_queries(s, 3, 0, 4);
    qs.pos = {5, 15, 9};  // queries 0 and 2 precede every key
    AttentionScratch scratch;
    const std::vector<float> out = run_group(s, qs, 0, 3, c, scratch);
    const int64_t qd = s.n_heads * s.head_dim;
    for (int64_t t : {0, 2})
      for (int64_t i = 0; i < qd; ++i) EXPECT_EQ(out[size_t(t * qs.stride + i)], 0.0f);
    std::vector<float> ref(static_cast<size_t>(qd)), tmp(static_cast<size_t>(c.n));
    attention(s, &qs.q[size_t(qs.stride)], 15, c.k.data(), c.v.data(), c.stride, c.pos.data(), c.n,
              ref.data(), tmp.data());
    for (int64_t i = 0; i < qd; ++i) EXPECT_NEAR(out[size_t(qs.stride + i)], ref[size_t(i)], 1e-5f);
  }
  force_isa(detected_isa());
}

}  // namespace
}  // namespace herd
