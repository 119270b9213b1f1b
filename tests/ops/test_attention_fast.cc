// The fast path's attention (attention_group_fast) against the reference on paged, typed KV
// caches: same masks, rounding differences only, and bitwise batch invariance on every target.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "herd/ops/attention.h"
#include "herd/ops/attention_fast.h"
#include "herd/ops/gemm.h"
#include "ops/kv_test_pages.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

using test::kAllKvTypes;
using test::TestKv;

constexpr Isa kTargets[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};

// Token data by position: K in [-2, 2), V in [-1, 1).
struct Tokens {
  std::vector<float> k, v;
};
Tokens make_tokens(const AttentionShape& s, int64_t n, uint64_t seed) {
  test::Rng rng(seed);
  const size_t sz = size_t(n * s.n_kv_heads * s.head_dim);
  return {rng.vec(sz, 2.0f), rng.vec(sz)};
}

// Pages holding tokens 0..n-1: page_rows, `lead` empty pages, a hole after every `hole`-th
// token, the last page padded with empty slots, `trail` empty pages; stored in layer 1 of 2.
struct Paging {
  int64_t page_rows, lead, hole, trail;
};
TestKv make_kv(KvType type, const AttentionShape& s, const Tokens& tok, int64_t n,
               const Paging& pg) {
  return test::make_test_kv(test::test_layout(type, pg.page_rows, s.n_kv_heads, s.head_dim), 1,
                            test::test_positions(n, pg.page_rows, pg.lead, pg.hole, pg.trail),
                            tok.k, tok.v);
}

struct Queries {
  int64_t stride = 0;
  std::vector<float> q;
  std::vector<int64_t> pos;
};

// n query tokens at positions spread over [0, max_pos], rows padded to `stride`.
Queries make_queries(const AttentionShape& s, int64_t n, int64_t max_pos, uint64_t seed) {
  Queries qs;
  test::Rng rng(seed);
  qs.stride = s.n_heads * s.head_dim + 5;
  qs.q = rng.vec(size_t(n * qs.stride), 2.0f);
  for (int64_t t = 0; t < n; ++t) qs.pos.push_back((t * 37 + 11) % (max_pos + 1));
  return qs;
}

// Runs attention_group_fast for queries [t0, t0+n) of `qs` and every kv head; the output rows
// (same layout as q) start as NaN so a head left unwritten shows.
std::vector<float> run_group(const AttentionShape& s, const Queries& qs, int64_t t0, int64_t n,
                             const KvView& kv, AttentionScratch& scratch) {
  std::vector<float> out(size_t(n * qs.stride), std::numeric_limits<float>::quiet_NaN());
  AttentionQueries aq;
  aq.q = qs.q.data() + t0 * qs.stride;
  aq.q_stride = qs.stride;
  aq.pos = qs.pos.data() + t0;
  aq.n = n;
  aq.out = out.data();
  aq.out_stride = qs.stride;
  for (int64_t g = 0; g < s.n_kv_heads; ++g) attention_group_fast(s, g, aq, kv, scratch);
  return out;
}

// The fast kernel against attention() on the SAME pages (so for quantized types both read the
// same dequantized values). Scores differ by rounding only (FMA chains in another order,
// <= ~hd*4*eps relative before the scale), exp by a few ulp, and the online softmax adds one
// rescale rounding per 16-key step (n_keys/16 * eps relative, ~1e-6 at 300 keys). Outputs are
// convex combinations of |v| <= 1, so relative is absolute: 1e-5 holds with margin.
// Where the kernel multiplies in bf16 (attention_bf16_products), the reference gets the same
// bf16-rounded queries, so the scores still agree to f32 rounding; each probability is then
// rounded to bf16 (relative error <= 2^-9), which moves each normalized weight by at most
// ~2^-8 of itself, so the output by at most 2^-8 * max|v| = 2^-8 more.
// The queries the reference should see for `kv` (bf16-rounded where the kernel rounds them) and
// the tolerance that goes with them.
struct RefQueries {
  std::vector<float> q;
  float tol;
};
RefQueries ref_queries(const Queries& qs, const KvView& kv) {
  RefQueries r{qs.q, 1e-5f};
  if (attention_bf16_products(kv)) {
    for (float& x : r.q) x = bf16_to_f32(f32_to_bf16(x));
    r.tol = 0x1p-8f + 1e-5f;
  }
  return r;
}

void compare_group(KvType type, const AttentionShape& s, int64_t n_tokens, int64_t n,
                   const Paging& pg, Isa isa) {
  force_isa(isa);
  const Tokens tok = make_tokens(s, n_tokens, uint64_t(s.head_dim * 1000 + n_tokens));
  const TestKv kv = make_kv(type, s, tok, n_tokens, pg);
  const Queries qs = make_queries(s, n, n_tokens - 1, uint64_t(n * 31 + s.head_dim));
  AttentionScratch scratch;
  const std::vector<float> out = run_group(s, qs, 0, n, kv.view(), scratch);
  const auto [rq, tol] = ref_queries(qs, kv.view());
  const int64_t qd = s.n_heads * s.head_dim;
  std::vector<float> ref(static_cast<size_t>(qd)), tmp(attention_scratch_floats(kv.view()));
  for (int64_t t = 0; t < n; ++t) {
    attention(s, &rq[size_t(t * qs.stride)], qs.pos[size_t(t)], kv.view(), 0, ref.data(),
              tmp.data());
    for (int64_t i = 0; i < qd; ++i)
      ASSERT_NEAR(ref[size_t(i)], out[size_t(t * qs.stride + i)], tol)
          << kv_type_name(type) << " page_rows " << pg.page_rows << " hd " << s.head_dim
          << " heads " << s.n_heads << "/" << s.n_kv_heads << " tokens " << n_tokens << " chunk "
          << s.chunk_size << " n " << n << " query " << t << " isa " << isa_name(isa);
  }
  force_isa(detected_isa());
}

TEST(AttentionGroupFast, MatchesReferenceOnEveryTypeAndTarget) {
  for (Isa isa : kTargets) {
    if (isa > detected_isa()) continue;
    for (KvType type : kAllKvTypes)
      for (int64_t page_rows : {16, 32, 64})
        for (int64_t hd : {20, 128})
          // Query heads per kv head 2, 5 (Llama 4's 40 / 8) and 8 (P·V tiles of 6 and 2 heads).
          for (auto [nh, nkv] : {std::pair<int64_t, int64_t>{4, 2}, {10, 2}, {16, 2}})
            for (int64_t chunk : {0, 8})
              for (auto [n_tokens, n] : {std::pair<int64_t, int64_t>{1, 1}, {17, 3}, {300, 33}}) {
                const AttentionShape s{nh, nkv, hd, 1.0f / std::sqrt(float(hd)), chunk};
                compare_group(type, s, n_tokens, n, {page_rows, 1, 7, 0}, isa);
              }
  }
}

// More head dims (tails of 8 and 24 lanes, 1 to 8 column chunks) on f32 and int8 pages.
TEST(AttentionGroupFast, MatchesReferenceAtOtherHeadDims) {
  for (Isa isa : kTargets) {
    if (isa > detected_isa()) continue;
    for (KvType type : {KvType::kF32, KvType::kInt8})
      for (int64_t hd : {8, 16, 40, 88})
        for (int64_t chunk : {0, 8}) {
          const AttentionShape s{10, 2, hd, 1.0f / std::sqrt(float(hd)), chunk};
          compare_group(type, s, 100, 9, {32, 0, 0, 1}, isa);
        }
  }
}

bool same_bits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, size_t(n) * sizeof(float)) == 0;
}

// A query's output is the same bits alone (decode) as in any batch (prefill), and whatever the
// paging of the same tokens: page size, empty pages before and after, empty slots between them.
TEST(AttentionGroupFast, BitwiseBatchInvariant) {
  const Paging base{32, 0, 0, 0};
  const Paging other[] = {{16, 2, 7, 1}, {64, 1, 3, 2}, {32, 0, 0, 3}, {16, 0, 1, 0}};
  for (Isa isa : kTargets) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (KvType type : kAllKvTypes)
      for (int64_t hd : {20, 128})
        for (int64_t chunk : {0, 8}) {
          const AttentionShape s{10, 2, hd, 1.0f / std::sqrt(float(hd)), chunk};
          const int64_t n_tokens = 300, n = 33, qd = s.n_heads * hd;
          const Tokens tok = make_tokens(s, n_tokens, uint64_t(hd + chunk));
          const TestKv kv = make_kv(type, s, tok, n_tokens, base);
          const Queries qs = make_queries(s, n, n_tokens - 1, uint64_t(hd * 3 + chunk));
          AttentionScratch scratch;
          const std::vector<float> batch = run_group(s, qs, 0, n, kv.view(), scratch);
          std::vector<TestKv> paged;
          for (const Paging& pg : other) paged.push_back(make_kv(type, s, tok, n_tokens, pg));
          const std::string what = std::string(kv_type_name(type)) + " hd " + std::to_string(hd) +
                                   " chunk " + std::to_string(chunk) + " isa " + isa_name(isa);
          for (int64_t t = 0; t < n; ++t) {
            const float* want = &batch[size_t(t * qs.stride)];
            const std::vector<float> alone = run_group(s, qs, t, 1, kv.view(), scratch);
            EXPECT_TRUE(same_bits(want, alone.data(), qd)) << "alone, query " << t << " " << what;
            for (size_t i = 0; i < paged.size(); ++i) {
              const std::vector<float> o = run_group(s, qs, t, 1, paged[i].view(), scratch);
              EXPECT_TRUE(same_bits(want, o.data(), qd))
                  << "paging " << i << ", query " << t << " " << what;
            }
          }
          // Other batch splits: blocks of 8 queries, over another paging.
          for (int64_t t0 = 0; t0 < n; t0 += 8) {
            const int64_t b = std::min<int64_t>(8, n - t0);
            const std::vector<float> o = run_group(s, qs, t0, b, paged[0].view(), scratch);
            EXPECT_TRUE(
                same_bits(&batch[size_t(t0 * qs.stride)], o.data(), (b - 1) * qs.stride + qd))
                << "block at " << t0 << " " << what;
          }
        }
  }
  force_isa(detected_isa());
}

// Rows the queries may not see hold NaN in K, V and scales: the output is unchanged bitwise.
TEST(AttentionGroupFast, MaskedRowsNeverInfluenceTheResult) {
  for (Isa isa : kTargets) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (KvType type : kAllKvTypes)
      for (int64_t hd : {20, 64}) {  // 64: bf16 pairs where the machine has them
        const AttentionShape s{4, 2, hd, 1.0f / std::sqrt(float(hd)), 8};
        const int64_t qd = 4 * hd;
        const Tokens tok = make_tokens(s, 40, 5);
        TestKv kv = make_kv(type, s, tok, 40, {16, 1, 5, 1});
        Queries qs = make_queries(s, 2, 0, 6);
        qs.pos = {20, 22};  // chunk [16, 24): both see 16..20 at least
        AttentionScratch scratch;
        const std::vector<float> before = run_group(s, qs, 0, 2, kv.view(), scratch);
        for (int64_t r = 0; r < kv.n_rows(); ++r) {
          const int64_t p = kv.pos[size_t(r)];
          if (p != kKvEmpty && (p < 16 || p > 22)) kv.poison(r, p);
        }
        const std::vector<float> after = run_group(s, qs, 0, 2, kv.view(), scratch);
        EXPECT_TRUE(same_bits(before.data(), after.data(), qs.stride + qd)) << kv_type_name(type);
        for (int64_t i = 0; i < qd; ++i) EXPECT_FALSE(std::isnan(after[size_t(i)]));
      }
  }
  force_isa(detected_isa());
}

// A query that may see no key gets zeros (as attention() does), also beside queries that can.
TEST(AttentionGroupFast, NoAllowedKeyGivesZeros) {
  for (Isa isa : kTargets) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (KvType type : kAllKvTypes) {
      const AttentionShape s{4, 2, 40, 1.0f / std::sqrt(40.0f), 0};
      const Tokens tok = make_tokens(s, 30, 9);
      std::vector<int64_t> pos = test::test_positions(30, 16, 0, 4, 0);
      for (int64_t& p : pos)
        if (p < 10) p = kKvEmpty;  // keys at positions 10..29 only
      const TestKv kv =
          test::make_test_kv(test::test_layout(type, 16, 2, 40), 1, pos, tok.k, tok.v);
      Queries qs = make_queries(s, 3, 0, 4);
      qs.pos = {5, 15, 9};  // queries 0 and 2 precede every key
      AttentionScratch scratch;
      const std::vector<float> out = run_group(s, qs, 0, 3, kv.view(), scratch);
      const int64_t qd = s.n_heads * s.head_dim;
      for (int64_t t : {0, 2})
        for (int64_t i = 0; i < qd; ++i) EXPECT_EQ(out[size_t(t * qs.stride + i)], 0.0f);
      std::vector<float> ref(static_cast<size_t>(qd)), tmp(attention_scratch_floats(kv.view()));
      attention(s, &qs.q[size_t(qs.stride)], 15, kv.view(), 0, ref.data(), tmp.data());
      for (int64_t i = 0; i < qd; ++i)
        EXPECT_NEAR(out[size_t(qs.stride + i)], ref[size_t(i)], 1e-5f) << kv_type_name(type);
    }
  }
  force_isa(detected_isa());
}

// With one visible key the output is that key's V exactly as kv_load_row decodes it: every one
// of the 256 int8 / fp8 codes (NaN codes give NaN), and bf16 bit patterns, through the kernel's
// in-register conversion.
TEST(AttentionGroupFast, SingleKeyDecodesEveryStoredCodeExactly) {
  for (Isa isa : kTargets) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (KvType type : {KvType::kBF16, KvType::kInt8, KvType::kFp8E4M3}) {
      const int64_t hd = 256;
      const AttentionShape s{1, 1, hd, 0.0625f, 0};
      TestKv kv = test::make_test_kv(test::test_layout(type, 16, 1, hd), 1,
                                     std::vector<int64_t>(16, kKvEmpty), {}, {});
      uint8_t* pg = kv.page(0);
      const KvPageLayout& L = kv.layout;
      const size_t e = kv_type_bytes(type);
      reinterpret_cast<int64_t*>(pg)[3] = 0;  // slot 3 holds position 0
      for (int64_t c = 0; c < hd; ++c)        // slot 3's K row, its elements kKvKeyBlock apart
        std::memset(pg + L.k_row_off(1, 3) + c * kKvKeyBlock * e, 0, e);
      uint8_t* v = pg + L.v_off(1) + 3 * hd * e;
      for (int64_t i = 0; i < hd; ++i) {
        if (type == KvType::kBF16) {  // sign, every exponent, varied mantissas; no NaN/inf
          const uint16_t b = uint16_t((i & 1) << 15 | ((i * 7) % 254 + 1) << 7 | (i * 13) % 128);
          std::memcpy(v + 2 * i, &b, 2);
        } else {
          v[i] = uint8_t(i);
        }
      }
      if (kv_type_scaled(type)) {
        reinterpret_cast<float*>(pg + L.ks_off(1))[3] = 1.0f;
        reinterpret_cast<float*>(pg + L.vs_off(1))[3] = 0.75f;
      }
      std::vector<float> want(hd);
      kv_load_row(type, v,
                  kv_type_scaled(type) ? &reinterpret_cast<float*>(pg + L.vs_off(1))[3] : nullptr,
                  1, hd, want.data());
      Queries qs = make_queries(s, 1, 0, 8);
      AttentionScratch scratch;
      const std::vector<float> out = run_group(s, qs, 0, 1, kv.view(), scratch);
      for (int64_t i = 0; i < hd; ++i) {
        if (std::isnan(want[size_t(i)])) {
          EXPECT_TRUE(std::isnan(out[size_t(i)])) << kv_type_name(type) << " code " << i;
        } else {
          EXPECT_EQ(out[size_t(i)], want[size_t(i)])
              << kv_type_name(type) << " code " << i << " isa " << isa_name(isa);
        }
      }
    }
  }
  force_isa(detected_isa());
}

// Flash-decoding: keys softmaxed in segments of positions, merged in order. With segments of 48
// positions (300 keys: 7 segments, boundaries inside pages and inside 16-key blocks) the result
// still matches the reference, and is bitwise the same for a query alone, in a batch, under
// other pagings, and when the partials are computed one by one and folded by the caller.
TEST(AttentionGroupFast, SegmentsMatchReferenceAndStayBatchInvariant) {
  if (detected_isa() < Isa::kAvx2) GTEST_SKIP() << "segments exist on the AVX2 and AVX-512 paths";
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (KvType type : kAllKvTypes)
      for (int64_t chunk : {0, 40})
        for (int64_t segment : {48, 64})
          for (int64_t hd : {40, 64}) {  // 64: bf16 pairs where the machine has them
            AttentionShape s{10, 2, hd, 1.0f / std::sqrt(float(hd)), chunk};
            s.segment = segment;
            const int64_t n_tokens = 300, n = 9, qd = s.n_heads * s.head_dim;
            const Tokens tok = make_tokens(s, n_tokens, uint64_t(segment + chunk));
            const TestKv kv = make_kv(type, s, tok, n_tokens, {32, 1, 7, 0});
            const TestKv other = make_kv(type, s, tok, n_tokens, {16, 2, 5, 1});
            Queries qs = make_queries(s, n, n_tokens - 1, uint64_t(segment));
            qs.pos.back() = n_tokens - 1;  // one query sees every segment
            AttentionScratch scratch;
            const std::vector<float> batch = run_group(s, qs, 0, n, kv.view(), scratch);
            std::vector<float> ref(static_cast<size_t>(qd)),
                tmp(attention_scratch_floats(kv.view()));
            const std::string what = std::string(kv_type_name(type)) + " chunk " +
                                     std::to_string(chunk) + " segment " + std::to_string(segment) +
                                     " hd " + std::to_string(hd) + " isa " + isa_name(isa);
            const auto [rq, tol] = ref_queries(qs, kv.view());
            for (int64_t t = 0; t < n; ++t) {
              attention(s, &rq[size_t(t * qs.stride)], qs.pos[size_t(t)], kv.view(), 0, ref.data(),
                        tmp.data());
              for (int64_t i = 0; i < qd; ++i)
                ASSERT_NEAR(ref[size_t(i)], batch[size_t(t * qs.stride + i)], tol) << what;
              const float* want = &batch[size_t(t * qs.stride)];
              EXPECT_TRUE(same_bits(want, run_group(s, qs, t, 1, kv.view(), scratch).data(), qd))
                  << "alone, query " << t << " " << what;
              EXPECT_TRUE(same_bits(want, run_group(s, qs, t, 1, other.view(), scratch).data(), qd))
                  << "other paging, query " << t << " " << what;
            }
            // The caller's split (TextDecoder::attention_fast): every partial first, then the fold.
            const int64_t t = n - 1;
            std::vector<float> out(size_t(qs.stride), NAN);
            const AttentionQueries aq{&qs.q[size_t(t * qs.stride)],
                                      qs.stride,
                                      &qs.pos[size_t(t)],
                                      1,
                                      out.data(),
                                      qs.stride};
            std::vector<KvSegment> segs;
            kv_segments(other.view(), segment, INT64_MIN, qs.pos[size_t(t)], segs);
            EXPECT_EQ(int64_t(segs.size()), (n_tokens + segment - 1) / segment);
            const int64_t G = s.n_heads / s.n_kv_heads, floats = G * (s.head_dim + 2);
            for (int64_t g = 0; g < s.n_kv_heads; ++g) {
              std::vector<float> parts(segs.size() * size_t(floats)),
                  acc(static_cast<size_t>(floats));
              for (size_t k = segs.size(); k-- > 0;)  // any order of computing
                attention_group_partial(s, g, aq, other.view(), segs[k], &parts[k * size_t(floats)],
                                        scratch);
              attention_fold_init(G, s.head_dim, acc.data());
              for (size_t k = 0; k < segs.size(); ++k)
                attention_fold(G, s.head_dim, &parts[k * size_t(floats)], acc.data());
              attention_finish(s, g, acc.data(), aq);
            }
            EXPECT_TRUE(same_bits(&batch[size_t(t * qs.stride)], out.data(), qd))
                << "split " << what;

            // The decoder's items over every kv head in one pass per segment, for the last two
            // queries together: bitwise the batch's rows.
            std::vector<float> out2(size_t(2 * qs.stride), NAN);
            const AttentionQueries aq2{&qs.q[size_t((n - 2) * qs.stride)],
                                       qs.stride,
                                       &qs.pos[size_t(n - 2)],
                                       2,
                                       out2.data(),
                                       qs.stride};
            kv_segments(kv.view(), segment, INT64_MIN, n_tokens - 1, segs);
            const int64_t floats2 = 2 * floats, n_seg = int64_t(segs.size());
            std::vector<float> parts2(size_t(s.n_kv_heads * n_seg * floats2), NAN);
            for (int64_t k = 0; k < n_seg; ++k)
              attention_groups_partial(s, 0, s.n_kv_heads, aq2, kv.view(), segs[size_t(k)],
                                       &parts2[size_t(k * floats2)], n_seg * floats2, scratch);
            for (int64_t g = 0; g < s.n_kv_heads; ++g) {
              std::vector<float> acc(static_cast<size_t>(floats2));
              attention_fold_init(2 * G, s.head_dim, acc.data());
              for (int64_t k = 0; k < n_seg; ++k)
                attention_fold(2 * G, s.head_dim, &parts2[size_t((g * n_seg + k) * floats2)],
                               acc.data());
              attention_finish(s, g, acc.data(), aq2);
            }
            EXPECT_TRUE(same_bits(&batch[size_t((n - 2) * qs.stride)], out2.data(), qd))
                << "all heads in one pass, query " << n - 2 << " " << what;
            EXPECT_TRUE(
                same_bits(&batch[size_t((n - 1) * qs.stride)], &out2[size_t(qs.stride)], qd))
                << "all heads in one pass, query " << n - 1 << " " << what;
          }
  }
  force_isa(detected_isa());
}

}  // namespace
}  // namespace herd
