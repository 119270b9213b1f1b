// attention_group_fast's kernels for AVX2 + FMA (Haswell on, Zen 1 to 3): the AVX-512 path's
// algorithm (attention_tiled.cc describes it; the driver is the same text,
// attention_tiled_groups.h) with every 16-lane vector held as two 8-lane halves. Without it such
// CPUs ran the reference one query and one key at a time, which made a 64k-token prefill hours
// long. The tiles are smaller (16 ymm registers instead of 32 zmm), which only interleaves other
// independent FMA chains: each score is still one chain over d = 0..hd-1, each output element
// one multiply then one FMA per key in order, so the AVX2 results are batch invariant exactly as
// the AVX-512 ones are (and, with exp256 giving exp512's bits, mostly the same values).
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "herd/ops/attention_fast.h"
#include "herd/ops/attention_tiled_state.h"
#include "herd/ops/exp_avx2.h"

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define HERD_AVX2 __attribute__((target("avx2,fma")))

namespace herd::attention_detail {
namespace {

using Mask16 = uint32_t;

// Lanes [0, n) of 8 as an all-ones / zero vector mask.
HERD_AVX2 inline __m256 first_lanes(int n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx));
}

// Bit j: slot j of a 16-slot block with positions key_pos[0..16) is in [lo, hi].
HERD_AVX2 inline Mask16 block_mask(const int64_t* key_pos, int64_t lo, int64_t hi) {
  const __m256i vlo = _mm256_set1_epi64x(lo), vhi = _mm256_set1_epi64x(hi);
  unsigned bits = 0;
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(key_pos + 4 * i));
    const __m256i out = _mm256_or_si256(_mm256_cmpgt_epi64(vlo, p), _mm256_cmpgt_epi64(p, vhi));
    bits |= (~unsigned(_mm256_movemask_pd(_mm256_castsi256_pd(out))) & 0xFu) << (4 * i);
  }
  return bits;
}

// 8 consecutive stored values at p as f32, unscaled (load16 of attention_tiled.cc, half of it).
template <KvType T>
HERD_AVX2 inline __m256 load8(const uint8_t* p) {
  if constexpr (T == KvType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  } else if constexpr (T == KvType::kBF16) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  } else if constexpr (T == KvType::kInt8) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  } else {  // fp8 e4m3 "fn", as attention_tiled.cc's load16
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    const __m256i mag = _mm256_and_si256(b, _mm256_set1_epi32(0x7f));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x80)), 24);
    __m256i bits = _mm256_add_epi32(_mm256_slli_epi32(mag, 20), _mm256_set1_epi32(120 << 23));
    const __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(mag), _mm256_set1_ps(0x1p-9f));
    bits = _mm256_blendv_epi8(bits, _mm256_castps_si256(sub),
                              _mm256_cmpgt_epi32(_mm256_set1_epi32(8), mag));
    bits = _mm256_blendv_epi8(bits, _mm256_set1_epi32(0x7fc00000),
                              _mm256_cmpeq_epi32(mag, _mm256_set1_epi32(0x7f)));
    return _mm256_castsi256_ps(_mm256_or_si256(bits, sign));
  }
}

// The first n (< 8) values at p, the rest zero: a head dim's tail. Copied out first so nothing
// past the row is read (AVX2 has no byte-masked loads).
template <KvType T>
HERD_AVX2 inline __m256 load8_part(const uint8_t* p, int64_t n) {
  alignas(32) uint8_t buf[32] = {};
  std::memcpy(buf, p, size_t(std::max<int64_t>(n, 0) * kBytes<T>));
  return load8<T>(buf);
}

template <KvType T>
HERD_AVX2 inline __m256 load8_n(const uint8_t* p, int64_t n) {
  return n >= 8 ? load8<T>(p) : load8_part<T>(p, n);
}

// kt[d*16 + j] = element [d][j] of a key block (ops/kv_view.h: [hd][16] at k) times
// scale[j*scale_stride] (no scale when unscaled), for d < hd, j < 16.
template <KvType T>
HERD_AVX2 void widen_block(const uint8_t* k, const float* scale, int64_t scale_stride, int64_t hd,
                           float* kt) {
  __m256 s0 = _mm256_set1_ps(1.0f), s1 = s0;
  if constexpr (kScaled<T>) {
    alignas(32) float sc[16];
    for (int j = 0; j < 16; ++j) sc[j] = scale[j * scale_stride];
    s0 = _mm256_load_ps(sc);
    s1 = _mm256_load_ps(sc + 8);
  }
#pragma GCC unroll 4
  for (int64_t d = 0; d < hd; ++d) {
    __m256 r0 = load8<T>(k + d * 16 * kBytes<T>), r1 = load8<T>(k + (d * 16 + 8) * kBytes<T>);
    if constexpr (kScaled<T>) {
      r0 = _mm256_mul_ps(r0, s0);
      r1 = _mm256_mul_ps(r1, s1);
    }
    _mm256_store_ps(kt + d * 16, r0);
    _mm256_store_ps(kt + d * 16 + 8, r1);
  }
}

// Scores of R query heads against NB transposed key blocks (attention_tiled.cc's score_tile):
// one FMA chain per (row, key) over d in order, then the scale.
template <int R, int NB>
HERD_AVX2 void score_tile(const float* const* q, float* const* s, const float* kt, int64_t kt_block,
                          int64_t hd, float scale) {
  constexpr int V = 2 * NB;  // 8-lane halves
  __m256 acc[R][V];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    __m256 kv[V];
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v)
      kv[v] = _mm256_load_ps(kt + (v / 2) * kt_block + d * 16 + (v % 2) * 8);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256 qv = _mm256_broadcast_ss(q[r] + d);
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(qv, kv[v], acc[r][v]);
    }
  }
  const __m256 sc = _mm256_set1_ps(scale);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v)
      _mm256_store_ps(s[r] + (v / 2) * 16 + (v % 2) * 8, _mm256_mul_ps(acc[r][v], sc));
}

template <int NB>
HERD_AVX2 void score_rows(const float* const* q, float* const* s, int64_t rows, const float* kt,
                          int64_t kt_block, int64_t hd, float scale) {
  // 8 accumulators (of 16 ymm registers) leave room for the key halves and the broadcast.
  constexpr int kR = NB == 2 ? 2 : 4;
  row_tiles<kR>(rows, [&](auto R, int64_t r) HERD_AVX2 {
    score_tile<decltype(R)::value, NB>(q + r, s + r, kt, kt_block, hd, scale);
  });
}

// o[h][d0 + ...] = o * alpha[h] + sum over j < cnt (in order) of p[h][j] * v_j, for H heads and
// C 8-float column chunks from d0 (attention_tiled.cc's pv_tile).
template <KvType T, int H, int C>
HERD_AVX2 void pv_tile(float* o, int64_t o_stride, const float* p, const float* alpha,
                       const uint8_t* const* vrow, const float* vscale, int cnt, int64_t d0,
                       int64_t hd) {
  __m256 acc[H][C];
#pragma GCC unroll 8
  for (int h = 0; h < H; ++h) {
    const __m256 a = _mm256_set1_ps(alpha[h]);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      acc[h][c] = _mm256_mul_ps(_mm256_load_ps(o + h * o_stride + d0 + 8 * c), a);
  }
  for (int j = 0; j < cnt; ++j) {
    const uint8_t* vj = vrow[j] + d0 * kBytes<T>;
    __m256 vv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      vv[c] = load8_n<T>(vj + 8 * c * kBytes<T>, hd - d0 - 8 * c);
      if constexpr (kScaled<T>) vv[c] = _mm256_mul_ps(vv[c], _mm256_set1_ps(vscale[j]));
    }
#pragma GCC unroll 8
    for (int h = 0; h < H; ++h) {
      const __m256 pj = _mm256_broadcast_ss(p + h * 16 + j);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[h][c] = _mm256_fmadd_ps(pj, vv[c], acc[h][c]);
    }
  }
#pragma GCC unroll 8
  for (int h = 0; h < H; ++h)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) _mm256_store_ps(o + h * o_stride + d0 + 8 * c, acc[h][c]);
}

template <KvType T, int H>
HERD_AVX2 void pv_heads(float* o, int64_t o_stride, const float* p, const float* alpha,
                        const uint8_t* const* vrow, const float* vscale, int cnt, int64_t hd) {
  int64_t d0 = 0;
  for (; d0 + 16 <= hd; d0 += 16)
    pv_tile<T, H, 2>(o, o_stride, p, alpha, vrow, vscale, cnt, d0, hd);
  if (d0 < hd) {  // a tail of 1 to 15: one or two chunks, the last partly loaded
    if (hd - d0 > 8)
      pv_tile<T, H, 2>(o, o_stride, p, alpha, vrow, vscale, cnt, d0, hd);
    else
      pv_tile<T, H, 1>(o, o_stride, p, alpha, vrow, vscale, cnt, d0, hd);
  }
}

HERD_AVX2 inline float hmax8(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// One online-softmax step of query t over cnt (<= 16) keys: scores sc[h*32 + j], rows idx[j].
template <KvType T>
HERD_AVX2 void softmax_step(State& st, int64_t t, const float* sc, const int32_t* idx, int cnt) {
  const int64_t G = st.G;
  const __m256 valid0 = first_lanes(cnt), valid1 = first_lanes(cnt - 8);
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  for (int64_t h = 0; h < G; ++h) {
    const int64_t row = t * G + h;
    const __m256 s0 = _mm256_blendv_ps(ninf, _mm256_loadu_ps(sc + h * 32), valid0);
    const __m256 s1 = _mm256_blendv_ps(ninf, _mm256_loadu_ps(sc + h * 32 + 8), valid1);
    const float m_old = st.m[row];
    const float m_new = std::max(m_old, hmax8(_mm256_max_ps(s0, s1)));
    // alpha is exactly 1 when the max holds and before anything was accumulated (see the
    // AVX-512 softmax_step).
    float alpha = 1.0f;
    if (m_new > m_old && m_old != -INFINITY)
      alpha = _mm256_cvtss_f32(exp256(_mm256_set1_ps(m_old - m_new)));
    const __m256 mv = _mm256_set1_ps(m_new), av = _mm256_set1_ps(alpha);
    const __m256 p0 = _mm256_and_ps(valid0, exp256(_mm256_sub_ps(s0, mv)));
    const __m256 p1 = _mm256_and_ps(valid1, exp256(_mm256_sub_ps(s1, mv)));
    float* l = st.l + row * 16;
    _mm256_store_ps(l, _mm256_fmadd_ps(_mm256_load_ps(l), av, p0));
    _mm256_store_ps(l + 8, _mm256_fmadd_ps(_mm256_load_ps(l + 8), av, p1));
    _mm256_store_ps(st.p + h * 16, p0);
    _mm256_store_ps(st.p + h * 16 + 8, p1);
    st.alpha[h] = alpha;
    st.m[row] = m_new;
  }
  // Where each key's V row (kv head g) lives, found once per step for all heads.
  find_v_rows<T>(st, idx, cnt);
  float* o = st.o + t * G * st.hdp;
  for (int64_t h = 0; h < G; h += 4) {  // heads share the V loads
    float* oh = o + h * st.hdp;
    const float *ph = st.p + h * 16, *ah = st.alpha + h;
    switch (std::min<int64_t>(4, G - h)) {
      case 1:
        pv_heads<T, 1>(oh, st.hdp, ph, ah, st.vrow, st.vscale, cnt, st.hd);
        break;
      case 2:
        pv_heads<T, 2>(oh, st.hdp, ph, ah, st.vrow, st.vscale, cnt, st.hd);
        break;
      case 3:
        pv_heads<T, 3>(oh, st.hdp, ph, ah, st.vrow, st.vscale, cnt, st.hd);
        break;
      default:
        pv_heads<T, 4>(oh, st.hdp, ph, ah, st.vrow, st.vscale, cnt, st.hd);
        break;
    }
  }
}

// Feeds query t's allowed lanes `mask` of one block to its pending list, stepping when 16 have
// gathered (attention_tiled.cc's consume; the compaction is scalar here, AVX2 has no compress).
template <KvType T>
HERD_AVX2 void consume(State& st, int64_t t, const float* sc, Mask16 mask, int32_t base) {
  if (!mask) return;
  const int64_t G = st.G;
  int c = st.cnt[t];
  if (c == 0 && mask == 0xFFFF) {
    for (int j = 0; j < 16; ++j) st.step_idx[j] = base + j;
    softmax_step<T>(st, t, sc, st.step_idx, 16);
    return;
  }
  float* pend = st.pend + t * G * 32;
  int32_t* pidx = st.pidx + t * 32;
  int lane[16], k = 0;
  for (unsigned m = mask; m; m &= m - 1) lane[k++] = std::countr_zero(m);
  for (int64_t h = 0; h < G; ++h)  // c <= 15 and k <= 16: within the 32
    for (int i = 0; i < k; ++i) pend[h * 32 + c + i] = sc[h * 32 + lane[i]];
  for (int i = 0; i < k; ++i) pidx[c + i] = base + lane[i];
  c += k;
  if (c >= 16) {
    softmax_step<T>(st, t, pend, pidx, 16);
    for (int64_t h = 0; h < G; ++h) std::memmove(pend + h * 32, pend + h * 32 + 16, 16 * 4);
    std::memmove(pidx, pidx + 16, 16 * 4);
    c -= 16;
  }
  st.cnt[t] = c;
}

HERD_AVX2 inline float reduce_add16(const float* l) {
  __m256 v = _mm256_add_ps(_mm256_load_ps(l), _mm256_load_ps(l + 8));
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

#define HERD_ATTN_TARGET HERD_AVX2
#include "herd/ops/attention_tiled_groups.h"
#undef HERD_ATTN_TARGET

}  // namespace

void groups_partial_avx2(const AttentionShape& s, int64_t g0, int64_t g1,
                         const AttentionQueries& qs, const KvView& kv, const KvSegment& seg,
                         float* part, int64_t part_stride, AttentionScratch& scratch) {
  switch (kv.layout.type) {
    case KvType::kF32:
      groups<KvType::kF32>(s, g0, g1, qs, kv, seg, part, part_stride, scratch);
      break;
    case KvType::kBF16:
      groups<KvType::kBF16>(s, g0, g1, qs, kv, seg, part, part_stride, scratch);
      break;
    case KvType::kInt8:
      groups<KvType::kInt8>(s, g0, g1, qs, kv, seg, part, part_stride, scratch);
      break;
    case KvType::kFp8E4M3:
      groups<KvType::kFp8E4M3>(s, g0, g1, qs, kv, seg, part, part_stride, scratch);
      break;
  }
}

}  // namespace herd::attention_detail
