// attention_group_fast: many queries of one sequence × the query heads of one GQA group, over the
// cached keys in blocks of 16 storage rows (attention_fast.h states the contract).
//
// Per block of keys the K rows of the group's kv head are transposed once into [head_dim][16], so
// one query head's 16 scores are vertical FMAs over head_dim (no horizontal sums), and every query
// head of every query of the call reuses that copy. Softmax is online (running max m, sum l,
// output o per query head), in steps of exactly 16 ALLOWED keys: each query compacts the allowed
// lanes of its blocks into a pending list and steps when 16 have gathered (and once more at the
// end). Which masked rows exist, and where, therefore never changes the steps a query takes, and
// each query's arithmetic is the same for any batch: bitwise batch invariance. Masked rows only
// ever reach score lanes that are discarded, never m, l or o.
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "herd/ops/attention_fast.h"
#include "herd/ops/exp_avx512.h"
#include "herd/ops/gemm.h"

// The intrinsics headers' _mm512_undefined_* make GCC 12's -W(maybe-)uninitialized misread when
// inlined into target-attributed functions (as in gemm_avx512.cc).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define HERD_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

namespace herd {
namespace {

constexpr int64_t kBlock = 16;  // keys per block: the lanes of one score vector

HERD_AVX512 inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Bit j: row base + j exists and its position is in [lo, hi] (attention_allowed for a query at
// hi whose chunk starts at lo).
HERD_AVX512 inline __mmask16 block_mask(const int64_t* key_pos, int64_t base, int64_t n_keys,
                                        int64_t lo, int64_t hi) {
  const int64_t rem = n_keys - base;
  const __mmask8 m0 = __mmask8(lanes(rem)), m1 = __mmask8(lanes(rem - 8));
  const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi);
  const __m512i p0 = _mm512_maskz_loadu_epi64(m0, key_pos + base);
  const __m512i p1 = _mm512_maskz_loadu_epi64(m1, key_pos + base + 8);
  const __mmask8 a0 =
      _mm512_mask_cmple_epi64_mask(_mm512_mask_cmpge_epi64_mask(m0, p0, vlo), p0, vhi);
  const __mmask8 a1 =
      _mm512_mask_cmple_epi64_mask(_mm512_mask_cmpge_epi64_mask(m1, p1, vlo), p1, vhi);
  return __mmask16(unsigned(a0) | unsigned(a1) << 8);
}

// kt[d*16 + j] = k[j*stride + d] for d < hd, j < 16; rows j >= rows read as zero.
HERD_AVX512 void transpose_block(const float* k, int64_t stride, int64_t rows, int64_t hd,
                                 float* kt) {
  for (int64_t d0 = 0; d0 < hd; d0 += 16) {
    const __mmask16 m = lanes(hd - d0);
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j)
      r[j] = j < rows ? _mm512_maskz_loadu_ps(m, k + j * stride + d0) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int j = 0; j < 16; j += 2) {  // 2x2 blocks of floats
      t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
      t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j += 4) {  // 4x4 blocks within each 128-bit lane
      const __m512d a = _mm512_castps_pd(t[j]), b = _mm512_castps_pd(t[j + 1]);
      const __m512d c = _mm512_castps_pd(t[j + 2]), d = _mm512_castps_pd(t[j + 3]);
      r[j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
      r[j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
      r[j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
      r[j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j += 8)  // 128-bit lanes across row groups of 4
#pragma GCC unroll 16
      for (int c = 0; c < 4; ++c) {
        t[j + c] = _mm512_shuffle_f32x4(r[j + c], r[j + c + 4], 0x88);
        t[j + c + 4] = _mm512_shuffle_f32x4(r[j + c], r[j + c + 4], 0xdd);
      }
#pragma GCC unroll 16
    for (int c = 0; c < 8; ++c) {
      r[c] = _mm512_shuffle_f32x4(t[c], t[c + 8], 0x88);
      r[c + 8] = _mm512_shuffle_f32x4(t[c], t[c + 8], 0xdd);
    }
    const int64_t w = std::min<int64_t>(16, hd - d0);
#pragma GCC unroll 16
    for (int c = 0; c < 16; ++c)
      if (c < w) _mm512_store_ps(kt + (d0 + c) * 16, r[c]);
  }
}

// Scores of R query heads (rows) against NB transposed key blocks: s[r][b*16 + j] =
// scale * (q_r . key j of block b), one FMA chain per (row, key) in order d = 0..hd-1. The tile
// shape (R, NB) only interleaves independent chains, so a key's score is the same in every tile.
template <int R, int NB>
HERD_AVX512 void score_tile(const float* const* q, float* const* s, const float* kt,
                            int64_t kt_block, int64_t hd, float scale) {
  __m512 acc[R][NB];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    __m512 kv[NB];
#pragma GCC unroll 16
    for (int b = 0; b < NB; ++b) kv[b] = _mm512_load_ps(kt + b * kt_block + d * 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 qv = _mm512_set1_ps(q[r][d]);
#pragma GCC unroll 16
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_fmadd_ps(qv, kv[b], acc[r][b]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int b = 0; b < NB; ++b) _mm512_store_ps(s[r] + b * 16, _mm512_mul_ps(acc[r][b], sc));
}

template <int NB>
HERD_AVX512 void score_rows(const float* const* q, float* const* s, int64_t rows, const float* kt,
                            int64_t kt_block, int64_t hd, float scale) {
  // 8 independent FMA chains cover the FMA latency; NB + R loads per R*NB FMAs.
  constexpr int kR = NB == 2 ? 4 : 8;
  int64_t r = 0;
  for (; r + kR <= rows; r += kR) score_tile<kR, NB>(q + r, s + r, kt, kt_block, hd, scale);
  switch (rows - r) {
#define HERD_CASE(n)                                          \
  case n:                                                     \
    score_tile<n, NB>(q + r, s + r, kt, kt_block, hd, scale); \
    break;
    HERD_CASE(1)
    HERD_CASE(2)
    HERD_CASE(3)
    HERD_CASE(4)
    HERD_CASE(5)
    HERD_CASE(6) HERD_CASE(7)
#undef HERD_CASE
        default : break;
  }
}

// o[h][d0 + ...] = o * alpha[h] + sum over j < cnt (in order) of p[h][j] * v_j, for H heads and
// C 16-float column chunks starting at d0. One multiply then one FMA per key, per element,
// whatever the tile, so tiling never changes the result.
template <int H, int C>
HERD_AVX512 void pv_tile(float* o, int64_t o_stride, const float* p, const float* alpha,
                         const float* v, int64_t kv_stride, const int32_t* idx, int cnt, int64_t d0,
                         int64_t hd) {
  __mmask16 m[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) m[c] = lanes(hd - d0 - 16 * c);
  __m512 acc[H][C];
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    const __m512 a = _mm512_set1_ps(alpha[h]);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c)
      acc[h][c] = _mm512_mul_ps(_mm512_load_ps(o + h * o_stride + d0 + 16 * c), a);
  }
  for (int j = 0; j < cnt; ++j) {
    const float* vj = v + int64_t(idx[j]) * kv_stride + d0;
    __m512 vv[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) vv[c] = _mm512_maskz_loadu_ps(m[c], vj + 16 * c);
#pragma GCC unroll 16
    for (int h = 0; h < H; ++h) {
      const __m512 pj = _mm512_set1_ps(p[h * 16 + j]);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[h][c] = _mm512_fmadd_ps(pj, vv[c], acc[h][c]);
    }
  }
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) _mm512_store_ps(o + h * o_stride + d0 + 16 * c, acc[h][c]);
}

template <int H>
HERD_AVX512 void pv_heads(float* o, int64_t o_stride, const float* p, const float* alpha,
                          const float* v, int64_t kv_stride, const int32_t* idx, int cnt,
                          int64_t hd) {
  int64_t d0 = 0;
  for (; d0 + 64 <= hd; d0 += 64)
    pv_tile<H, 4>(o, o_stride, p, alpha, v, kv_stride, idx, cnt, d0, hd);
  switch ((hd - d0 + 15) / 16) {
    case 1:
      pv_tile<H, 1>(o, o_stride, p, alpha, v, kv_stride, idx, cnt, d0, hd);
      break;
    case 2:
      pv_tile<H, 2>(o, o_stride, p, alpha, v, kv_stride, idx, cnt, d0, hd);
      break;
    case 3:
      pv_tile<H, 3>(o, o_stride, p, alpha, v, kv_stride, idx, cnt, d0, hd);
      break;
    default:
      break;
  }
}

// Scratch carved for one call. Per query head (row t*G + h): softmax state m, l (the running sum
// kept as 16 lanes, lane j summing the j-th key of every step, reduced once at the end), o, and
// the compacted scores waiting for a step. Per query: the pending rows' key indices and count.
struct State {
  int64_t G, hd, hdp;
  float* kt;          // [2][hdp*16] transposed key blocks
  float* s;           // [n*G][32] scores of the current block pair
  float* pend;        // [n*G][32] pending scores (allowed lanes only, in key order)
  float* o;           // [n*G][hdp]
  float* l;           // [n*G][16]
  float* m;           // [n*G]
  float* p;           // [G][16] probabilities of one step
  float* alpha;       // [G] rescale of one step
  int32_t* pidx;      // [n][32] pending key rows
  int32_t* cnt;       // [n]
  int32_t* mask;      // [2][n] allowed lanes of the block pair
  int32_t* step_idx;  // [16]
};

// One online-softmax step of query t over cnt (<= 16) keys: scores sc[h*32 + j], rows idx[j].
HERD_AVX512 void softmax_step(State& st, int64_t t, const float* sc, const int32_t* idx, int cnt,
                              const float* v, int64_t kv_stride) {
  const int64_t G = st.G;
  const __mmask16 valid = lanes(cnt);
  for (int64_t h = 0; h < G; ++h) {
    const int64_t row = t * G + h;
    const __m512 s = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), valid, sc + h * 32);
    const float m_old = st.m[row];
    const float m_new = std::max(m_old, _mm512_reduce_max_ps(s));
    // alpha = exp(m_old - m_new), exactly 1 when the max holds (x * 1 == x, so skipping the
    // rescale or doing it agree bitwise) and when nothing was accumulated yet (o = l = 0).
    float alpha = 1.0f;
    if (m_new > m_old && m_old != -INFINITY)
      alpha = _mm512_cvtss_f32(exp512(_mm512_set1_ps(m_old - m_new)));
    const __m512 p = _mm512_maskz_mov_ps(valid, exp512(_mm512_sub_ps(s, _mm512_set1_ps(m_new))));
    float* l = st.l + row * 16;
    _mm512_store_ps(l, _mm512_fmadd_ps(_mm512_load_ps(l), _mm512_set1_ps(alpha), p));
    _mm512_store_ps(st.p + h * 16, p);
    st.alpha[h] = alpha;
    st.m[row] = m_new;
  }
  float* o = st.o + t * G * st.hdp;
  for (int64_t h = 0; h < G; h += 4) {  // heads share the V loads
    float* oh = o + h * st.hdp;
    const float *ph = st.p + h * 16, *ah = st.alpha + h;
    switch (std::min<int64_t>(4, G - h)) {
      case 1:
        pv_heads<1>(oh, st.hdp, ph, ah, v, kv_stride, idx, cnt, st.hd);
        break;
      case 2:
        pv_heads<2>(oh, st.hdp, ph, ah, v, kv_stride, idx, cnt, st.hd);
        break;
      case 3:
        pv_heads<3>(oh, st.hdp, ph, ah, v, kv_stride, idx, cnt, st.hd);
        break;
      default:
        pv_heads<4>(oh, st.hdp, ph, ah, v, kv_stride, idx, cnt, st.hd);
        break;
    }
  }
}

// Feeds query t's allowed lanes `mask` of one block (scores sc[h*32 + j], rows base + j) to its
// pending list, stepping when 16 have gathered.
HERD_AVX512 void consume(State& st, int64_t t, const float* sc, __mmask16 mask, int32_t base,
                         const float* v, int64_t kv_stride) {
  if (!mask) return;
  const int64_t G = st.G;
  const __m512i rows =
      _mm512_add_epi32(_mm512_set1_epi32(base),
                       _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  int c = st.cnt[t];
  if (c == 0 && mask == 0xFFFF) {  // the common case; compacting would copy it unchanged
    _mm512_storeu_si512(st.step_idx, rows);
    softmax_step(st, t, sc, st.step_idx, 16, v, kv_stride);
    return;
  }
  float* pend = st.pend + t * G * 32;
  int32_t* pidx = st.pidx + t * 32;
  for (int64_t h = 0; h < G; ++h)  // c <= 15: the 16 stored lanes end within the 32
    _mm512_storeu_ps(pend + h * 32 + c,
                     _mm512_maskz_compress_ps(mask, _mm512_load_ps(sc + h * 32)));
  _mm512_storeu_si512(pidx + c, _mm512_maskz_compress_epi32(mask, rows));
  c += std::popcount(unsigned(mask));
  if (c >= 16) {
    softmax_step(st, t, pend, pidx, 16, v, kv_stride);
    for (int64_t h = 0; h < G; ++h)
      _mm512_storeu_ps(pend + h * 32, _mm512_loadu_ps(pend + h * 32 + 16));
    _mm512_storeu_si512(pidx, _mm512_loadu_si512(pidx + 16));
    c -= 16;
  }
  st.cnt[t] = c;
}

HERD_AVX512 void group_avx512(const AttentionShape& sh, int64_t g, int64_t h0, int64_t G,
                              const AttentionQueries& qs, const float* k, const float* v,
                              int64_t kv_stride, const int64_t* key_pos, int64_t n_keys,
                              AttentionScratch& scratch) {
  const int64_t hd = sh.head_dim, n = qs.n, hdp = (hd + 15) / 16 * 16;
  const int64_t rows = n * G;
  State st;
  st.G = G, st.hd = hd, st.hdp = hdp;
  const int64_t G16 = (G + 15) / 16 * 16;
  float* f = scratch.f.ensure(
      size_t(2 * hdp * 16 + rows * (32 + 32 + hdp + 16) + (rows + 15) / 16 * 16 + G * 16 + G16));
  st.kt = f, f += 2 * hdp * 16;
  st.s = f, f += rows * 32;
  st.pend = f, f += rows * 32;
  st.o = f, f += rows * hdp;
  st.l = f, f += rows * 16;
  st.m = f, f += (rows + 15) / 16 * 16;
  st.p = f, f += G * 16;
  st.alpha = f;
  int32_t* ip = scratch.i.ensure(size_t(n * 32 + 3 * n + 16));
  st.pidx = ip, ip += n * 32;
  st.cnt = ip, ip += n;
  st.mask = ip, ip += 2 * n;
  st.step_idx = ip;
  std::fill_n(st.o, rows * hdp, 0.0f);
  std::fill_n(st.l, rows * 16, 0.0f);
  std::fill_n(st.m, rows, -INFINITY);
  std::fill_n(st.cnt, n, 0);
  if (scratch.q_rows.size() < size_t(rows)) {
    scratch.q_rows.resize(size_t(rows));
    scratch.s_rows.resize(size_t(rows));
  }
  const float** qrow = scratch.q_rows.data();
  float** srow = scratch.s_rows.data();

  const float* kg = k + g * hd;
  const float* vg = v + g * hd;
  auto chunk_lo = [&](int64_t t) {
    return sh.chunk_size > 0 ? qs.pos[t] / sh.chunk_size * sh.chunk_size : INT64_MIN;
  };
  // Next block at or after b with an allowed key for some query; its masks into mask[0..n).
  const int64_t n_blocks = (n_keys + kBlock - 1) / kBlock;
  auto next_block = [&](int64_t b, int32_t* mask) {
    for (; b < n_blocks; ++b) {
      int32_t any = 0;
      for (int64_t t = 0; t < n; ++t)
        any |= mask[t] = block_mask(key_pos, b * kBlock, n_keys, chunk_lo(t), qs.pos[t]);
      if (any) break;
    }
    return b;
  };

  // Blocks go in pairs so the score tiles have 8 FMA chains at 4 query heads.
  for (int64_t b = 0;;) {
    const int64_t b0 = next_block(b, st.mask);
    if (b0 >= n_blocks) break;
    const int64_t b1 = next_block(b0 + 1, st.mask + n);
    const int nb = b1 < n_blocks ? 2 : 1;
    b = b1 + 1;
    transpose_block(kg + b0 * kBlock * kv_stride, kv_stride, n_keys - b0 * kBlock, hd, st.kt);
    if (nb == 2)
      transpose_block(kg + b1 * kBlock * kv_stride, kv_stride, n_keys - b1 * kBlock, hd,
                      st.kt + hdp * 16);
    int64_t nr = 0;
    for (int64_t t = 0; t < n; ++t) {
      if (!(st.mask[t] | (nb == 2 ? st.mask[n + t] : 0))) continue;
      for (int64_t h = 0; h < G; ++h, ++nr) {
        qrow[nr] = qs.q + t * qs.q_stride + (h0 + h) * hd;
        srow[nr] = st.s + (t * G + h) * 32;
      }
    }
    if (nb == 2)
      score_rows<2>(qrow, srow, nr, st.kt, hdp * 16, hd, sh.scale);
    else
      score_rows<1>(qrow, srow, nr, st.kt, hdp * 16, hd, sh.scale);
    for (int64_t t = 0; t < n; ++t) {
      const float* sc = st.s + t * G * 32;
      consume(st, t, sc, __mmask16(st.mask[t]), int32_t(b0 * kBlock), vg, kv_stride);
      if (nb == 2)
        consume(st, t, sc + 16, __mmask16(st.mask[n + t]), int32_t(b1 * kBlock), vg, kv_stride);
    }
  }

  for (int64_t t = 0; t < n; ++t) {
    if (st.cnt[t] > 0)
      softmax_step(st, t, st.pend + t * G * 32, st.pidx + t * 32, st.cnt[t], vg, kv_stride);
    float* out = qs.out + t * qs.out_stride + h0 * hd;
    for (int64_t h = 0; h < G; ++h) {
      const int64_t row = t * G + h;
      float* oh = out + h * hd;
      if (st.m[row] == -INFINITY) {  // no allowed key: zeros, like attention()
        std::fill_n(oh, hd, 0.0f);
        continue;
      }
      const __m512 inv =
          _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_load_ps(st.l + row * 16)));
      for (int64_t d = 0; d < hd; d += 16)
        _mm512_mask_storeu_ps(oh + d, lanes(hd - d),
                              _mm512_mul_ps(_mm512_load_ps(st.o + row * hdp + d), inv));
    }
  }
}

}  // namespace

void attention_group_fast(const AttentionShape& s, int64_t g, const AttentionQueries& qs,
                          const float* k, const float* v, int64_t kv_stride, const int64_t* key_pos,
                          int64_t n_keys, AttentionScratch& scratch) {
  // The heads of group g are those attention() sends to kv head g.
  const int64_t group = s.n_kv_heads > 0 ? std::max<int64_t>(1, s.n_heads / s.n_kv_heads) : 1;
  const int64_t h0 = g * group, G = std::min(s.n_heads, h0 + group) - h0;
  if (qs.n <= 0 || G <= 0) return;
  if (active_isa() >= Isa::kAvx512) {
    group_avx512(s, g, h0, G, qs, k, v, kv_stride, key_pos, n_keys, scratch);
    return;
  }
  // The reference per query, for just this group's heads (one kv head at k + g*head_dim).
  AttentionShape one = s;
  one.n_heads = G;
  one.n_kv_heads = 1;
  if (scratch.ref.size() < size_t(n_keys)) scratch.ref.resize(size_t(n_keys));
  const int64_t off = h0 * s.head_dim;
  for (int64_t t = 0; t < qs.n; ++t)
    attention(one, qs.q + t * qs.q_stride + off, qs.pos[t], k + g * s.head_dim, v + g * s.head_dim,
              kv_stride, key_pos, n_keys, qs.out + t * qs.out_stride + off, scratch.ref.data());
}

}  // namespace herd
