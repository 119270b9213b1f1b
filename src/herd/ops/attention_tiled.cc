// attention_group_fast: many queries of one sequence × the query heads of one GQA group, over the
// cached keys in blocks of 16 consecutive slots of one page (attention_fast.h states the contract).
//
// Keys and values are converted from their stored type while they are read (load16): bf16 by a
// shift, int8 and fp8 e4m3 by an integer widen, a convert and the row's head scale, which gives
// the same f32 values as kv_load_row. The cache keeps each block of 16 keys transposed,
// [head_dim][16] per kv head (ops/kv_view.h); per block the group's kv head is converted once into
// f32 in that shape (the 16 rows' scales folded in), so one query head's 16 scores are vertical
// FMAs over head_dim (no horizontal sums), and every query head of every query of the call reuses
// that copy. Softmax is online (running max m, sum l, output o per query head), in steps of
// exactly 16 ALLOWED keys: each query compacts the allowed lanes of its blocks into a pending
// list and steps when 16 have gathered (and once more at the end). Which masked rows exist, and
// where, therefore never changes the steps a query takes, and each query's arithmetic is the
// same for any batch or paging: bitwise batch invariance. A masked row's K (and scale) only ever
// reaches score lanes that are discarded, never m, l or o, and its V is never loaded (pv_tile
// reads the rows of a step's pending list only).
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "herd/ops/attention_fast.h"
#include "herd/ops/attention_tiled_state.h"
#include "herd/ops/cpu_features.h"
#include "herd/ops/exp_avx512.h"
#include "herd/ops/gemm.h"

// The intrinsics headers' _mm512_undefined_* make GCC 12's -W(maybe-)uninitialized misread when
// inlined into target-attributed functions (as in gemm_avx512.cc).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define HERD_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

namespace herd {
namespace {

using namespace attention_detail;
using Mask16 = __mmask16;

HERD_AVX512 inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Bit j: slot j of a 16-slot block with positions key_pos[0..16) is in [lo, hi]
// (attention_allowed for a query at hi whose chunk starts at lo; kKvEmpty is above every hi).
HERD_AVX512 inline __mmask16 block_mask(const int64_t* key_pos, int64_t lo, int64_t hi) {
  const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi);
  const __m512i p0 = _mm512_loadu_si512(key_pos), p1 = _mm512_loadu_si512(key_pos + 8);
  const __mmask8 a0 = _mm512_mask_cmple_epi64_mask(_mm512_cmpge_epi64_mask(p0, vlo), p0, vhi);
  const __mmask8 a1 = _mm512_mask_cmple_epi64_mask(_mm512_cmpge_epi64_mask(p1, vlo), p1, vhi);
  return __mmask16(unsigned(a0) | unsigned(a1) << 8);
}

// Elements m of 16 consecutive stored values at p, as f32 (the rest zero), unscaled: the value
// for f32 and bf16, the code for int8 and fp8 (the caller multiplies by the scale).
template <KvType T>
HERD_AVX512 inline __m512 load16(const uint8_t* p, __mmask16 m) {
  if constexpr (T == KvType::kF32) {
    return _mm512_maskz_loadu_ps(m, p);
  } else if constexpr (T == KvType::kBF16) {  // bf16 is the top half of an f32
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  } else if constexpr (T == KvType::kInt8) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
  } else {  // fp8 e4m3 (OCP "fn"): s eeee mmm, bias 7, no infinities, |code| 0x7f is NaN
    const __m512i b = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
    const __m512i mag = _mm512_and_si512(b, _mm512_set1_epi32(0x7f));
    const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x80)), 24);
    // Normal: move eeee mmm under the f32 exponent/mantissa and rebias 7 -> 127.
    __m512i bits = _mm512_add_epi32(_mm512_slli_epi32(mag, 20), _mm512_set1_epi32(120 << 23));
    // Subnormal (eeee = 0): mmm * 2^-9, exact; done in float so no f32 denormal is involved.
    const __m512 sub = _mm512_mul_ps(_mm512_cvtepi32_ps(mag), _mm512_set1_ps(0x1p-9f));
    bits = _mm512_mask_mov_epi32(bits, _mm512_cmplt_epi32_mask(mag, _mm512_set1_epi32(8)),
                                 _mm512_castps_si512(sub));
    bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(0x7f)),
                                 _mm512_set1_epi32(0x7fc00000));
    return _mm512_castsi512_ps(_mm512_or_si512(bits, sign));
  }
}

// kt[d*16 + j] = element [d][j] of a key block (ops/kv_view.h: [hd][16] at k) times
// scale[j*scale_stride] (no scale when unscaled), for d < hd, j < 16.
template <KvType T>
HERD_AVX512 void widen_block(const uint8_t* k, const float* scale, int64_t scale_stride, int64_t hd,
                             float* kt) {
  __m512 sv = _mm512_set1_ps(1.0f);
  if constexpr (kScaled<T>) {
    const __m512i j = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    sv = _mm512_i32gather_ps(_mm512_mullo_epi32(j, _mm512_set1_epi32(int32_t(scale_stride))), scale,
                             4);
  }
#pragma GCC unroll 4
  for (int64_t d = 0; d < hd; ++d) {
    __m512 r = load16<T>(k + d * 16 * kBytes<T>, __mmask16(0xFFFF));
    if constexpr (kScaled<T>) r = _mm512_mul_ps(r, sv);
    _mm512_store_ps(kt + d * 16, r);
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
  row_tiles<kR>(rows, [&](auto R, int64_t r) HERD_AVX512 {
    score_tile<decltype(R)::value, NB>(q + r, s + r, kt, kt_block, hd, scale);
  });
}

// o[h][d0 + ...] = o * alpha[h] + sum over j < cnt (in order) of p[h][j] * v_j, for H heads and
// C 16-float column chunks starting at d0; v_j is the row at vrow[j] times vscale[j] (scaled
// types). One multiply then one FMA per key, per element, whatever the tile, so tiling never
// changes the result.
template <KvType T, int H, int C>
HERD_AVX512 void pv_tile(float* o, int64_t o_stride, const float* p, const float* alpha,
                         const uint8_t* const* vrow, const float* vscale, int cnt, int64_t d0,
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
    const uint8_t* vj = vrow[j] + d0 * kBytes<T>;
    __m512 vv[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      vv[c] = load16<T>(vj + 16 * c * kBytes<T>, m[c]);
      if constexpr (kScaled<T>) vv[c] = _mm512_mul_ps(vv[c], _mm512_set1_ps(vscale[j]));
    }
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

template <KvType T, int H>
HERD_AVX512 void pv_heads(float* o, int64_t o_stride, const float* p, const float* alpha,
                          const uint8_t* const* vrow, const float* vscale, int cnt, int64_t hd) {
  int64_t d0 = 0;
  for (; d0 + 64 <= hd; d0 += 64)
    pv_tile<T, H, 4>(o, o_stride, p, alpha, vrow, vscale, cnt, d0, hd);
  switch ((hd - d0 + 15) / 16) {
    case 1:
      pv_tile<T, H, 1>(o, o_stride, p, alpha, vrow, vscale, cnt, d0, hd);
      break;
    case 2:
      pv_tile<T, H, 2>(o, o_stride, p, alpha, vrow, vscale, cnt, d0, hd);
      break;
    case 3:
      pv_tile<T, H, 3>(o, o_stride, p, alpha, vrow, vscale, cnt, d0, hd);
      break;
    default:
      break;
  }
}

// The online-softmax update of query head `row` for one step (scores at sc, lanes `valid`):
// the running max moves to m_new, *alpha = exp(m_old - m_new) is the rescale of what came
// before, and the step's probabilities exp(s - m_new) (zero off `valid`) are returned; the
// caller adds them to l.
HERD_AVX512 inline __m512 step_probs(State& st, int64_t row, const float* sc, __mmask16 valid,
                                     float* alpha) {
  const __m512 s = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), valid, sc);
  const float m_old = st.m[row];
  const float m_new = std::max(m_old, _mm512_reduce_max_ps(s));
  // alpha = exp(m_old - m_new), exactly 1 when the max holds (x * 1 == x, so skipping the
  // rescale or doing it agree bitwise) and when nothing was accumulated yet (o = l = 0).
  *alpha = 1.0f;
  if (m_new > m_old && m_old != -INFINITY)
    *alpha = _mm512_cvtss_f32(exp512(_mm512_set1_ps(m_old - m_new)));
  st.m[row] = m_new;
  return _mm512_maskz_mov_ps(valid, exp512(_mm512_sub_ps(s, _mm512_set1_ps(m_new))));
}

// One online-softmax step of query t over cnt (<= 16) keys: scores sc[h*32 + j], rows idx[j].
template <KvType T>
HERD_AVX512 void softmax_step(State& st, int64_t t, const float* sc, const int32_t* idx, int cnt) {
  const int64_t G = st.G;
  const __mmask16 valid = lanes(cnt);
  for (int64_t h = 0; h < G; ++h) {
    const int64_t row = t * G + h;
    const __m512 p = step_probs(st, row, sc + h * 32, valid, &st.alpha[h]);
    float* l = st.l + row * 16;
    _mm512_store_ps(l, _mm512_fmadd_ps(_mm512_load_ps(l), _mm512_set1_ps(st.alpha[h]), p));
    _mm512_store_ps(st.p + h * 16, p);
  }
  // Where each key's V row (kv head g) lives, found once per step for all heads.
  find_v_rows<T>(st, idx, cnt);
  float* o = st.o + t * G * st.hdp;
  row_tiles<4>(G, [&](auto H, int64_t h) HERD_AVX512 {  // heads share the V loads
    pv_heads<T, decltype(H)::value>(o + h * st.hdp, st.hdp, st.p + h * 16, st.alpha + h, st.vrow,
                                    st.vscale, cnt, st.hd);
  });
}

#include "herd/ops/attention_tiled_pairs.h"

// Feeds query t's allowed lanes `mask` of one block (scores sc[h*32 + j], rows base + j) to its
// pending list, stepping when 16 have gathered (with softmax_step_pairs when kPairs).
template <KvType T, bool kPairs = false>
HERD_AVX512 void consume(State& st, int64_t t, const float* sc, __mmask16 mask, int32_t base) {
  if (!mask) return;
  const int64_t G = st.G;
  const __m512i rows =
      _mm512_add_epi32(_mm512_set1_epi32(base),
                       _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  int c = st.cnt[t];
  if (c == 0 && mask == 0xFFFF) {  // the common case; compacting would copy it unchanged
    _mm512_storeu_si512(st.step_idx, rows);
    if constexpr (kPairs)
      softmax_step_pairs(st, t, sc, st.step_idx, 16);
    else
      softmax_step<T>(st, t, sc, st.step_idx, 16);
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
    if constexpr (kPairs)
      softmax_step_pairs(st, t, pend, pidx, 16);
    else
      softmax_step<T>(st, t, pend, pidx, 16);
    for (int64_t h = 0; h < G; ++h)
      _mm512_storeu_ps(pend + h * 32, _mm512_loadu_ps(pend + h * 32 + 16));
    _mm512_storeu_si512(pidx, _mm512_loadu_si512(pidx + 16));
    c -= 16;
  }
  st.cnt[t] = c;
}

HERD_AVX512 inline float reduce_add16(const float* l) {
  return _mm512_reduce_add_ps(_mm512_load_ps(l));
}

// The groups driver's hooks for the bf16 pair kernels (attention_tiled_pairs.h).
struct Bf16Pairs {
  static constexpr bool kOn = true;
  static void queries(const float* const* q, int64_t rows, int64_t hd, float* qb) {
    queries_to_pairs(q, rows, hd, qb);
  }
  static void widen(const uint8_t* k, int64_t hd, float* kt) { widen_pairs(k, hd, kt); }
  template <int NB>
  static void score(const float* const* q, float* const* s, int64_t rows, const float* kt,
                    int64_t kt_block, int64_t hd, float scale) {
    score_rows_pairs<NB>(q, s, rows, kt, kt_block, hd, scale);
  }
  static void consume(State& st, int64_t t, const float* sc, __mmask16 mask, int32_t base) {
    herd::consume<KvType::kBF16, true>(st, t, sc, mask, base);
  }
  static void step(State& st, int64_t t, const float* sc, const int32_t* idx, int cnt) {
    softmax_step_pairs(st, t, sc, idx, cnt);
  }
  static void out(const float* o, int64_t hd, float* dst) { pairs_to_elements(o, hd, dst); }
};

#define HERD_ATTN_TARGET HERD_AVX512
#include "herd/ops/attention_tiled_groups.h"
#undef HERD_ATTN_TARGET

// Bit j set: slot j of the 16 at `pos` holds a position in [min_pos, max_pos] (kKvEmpty never
// does); the smallest and largest such position.
HERD_AVX512 __mmask16 block_range(const int64_t* pos, int64_t min_pos, int64_t max_pos, int64_t* lo,
                                  int64_t* hi) {
  const __mmask16 m = block_mask(pos, min_pos, max_pos);
  const __mmask8 a0 = __mmask8(m & 0xFF), a1 = __mmask8(m >> 8);
  const __m512i p0 = _mm512_loadu_si512(pos), p1 = _mm512_loadu_si512(pos + 8);
  if (!(a0 | a1)) return 0;
  *lo = std::min(_mm512_mask_reduce_min_epi64(a0, p0), _mm512_mask_reduce_min_epi64(a1, p1));
  *hi = std::max(_mm512_mask_reduce_max_epi64(a0, p0), _mm512_mask_reduce_max_epi64(a1, p1));
  return m;
}

// block_range for the AVX2 path (and any CPU without AVX-512): the same mask and extremes.
unsigned block_range_scalar(const int64_t* pos, int64_t min_pos, int64_t max_pos, int64_t* lo,
                            int64_t* hi) {
  unsigned m = 0;
  for (int j = 0; j < 16; ++j) {
    if (pos[j] < min_pos || pos[j] > max_pos) continue;
    *lo = m ? std::min(*lo, pos[j]) : pos[j];
    *hi = m ? std::max(*hi, pos[j]) : pos[j];
    m |= 1u << j;
  }
  return m;
}

// AVX-512 or AVX2 + FMA (attention_tiled_avx2.cc); below that, the reference per query.
bool fast_path(const KvView& kv) {
  return active_isa() >= Isa::kAvx2 && kv.layout.page_rows % kBlock == 0;
}

}  // namespace

bool attention_partials_supported(const KvView& kv) {
  return fast_path(kv);
}

bool attention_bf16_products(const KvView& kv) {
  return fast_path(kv) && pairs_path(kv);
}

void kv_segments(const KvView& kv, int64_t segment, int64_t min_pos, int64_t max_pos,
                 std::vector<KvSegment>& out) {
  out.clear();
  const int64_t n_blocks = kv.n_rows() / kBlock;
  const bool avx512 = active_isa() >= Isa::kAvx512;
  for (int64_t b = 0; b < n_blocks; ++b) {
    int64_t lo = 0, hi = 0;
    const int64_t* pos = kv.page_pos(b * kBlock / kv.layout.page_rows) + kv.slot(b * kBlock);
    if (!(avx512 ? block_range(pos, min_pos, max_pos, &lo, &hi)
                 : block_range_scalar(pos, min_pos, max_pos, &lo, &hi)))
      continue;
    // Rows are in ascending position order, so segments appear in order and a block extends
    // the last segments listed or starts new ones.
    const int64_t s_lo = segment > 0 ? lo / segment : 0, s_hi = segment > 0 ? hi / segment : 0;
    for (int64_t sg = s_lo; sg <= s_hi; ++sg) {
      if (!out.empty() && out.back().seg == sg) {
        out.back().b1 = b + 1;
      } else {
        KvSegment k;
        k.seg = sg;
        k.size = segment;
        k.b0 = b;
        k.b1 = b + 1;
        out.push_back(k);
      }
    }
  }
}

void attention_groups_partial(const AttentionShape& s, int64_t g0, int64_t g1,
                              const AttentionQueries& qs, const KvView& kv, const KvSegment& seg,
                              float* part, int64_t part_stride, AttentionScratch& scratch) {
  if (qs.n <= 0) return;
  const int64_t group = s.n_kv_heads > 0 ? std::max<int64_t>(1, s.n_heads / s.n_kv_heads) : 1;
  g1 = std::min(g1, (s.n_heads + group - 1) / group);  // groups with at least one query head
  for (int64_t a = g0; a < g1; a += kMaxGroups) {
    const int64_t b = std::min(g1, a + kMaxGroups);
    float* p = part + (a - g0) * part_stride;
    if (active_isa() < Isa::kAvx512) {
      groups_partial_avx2(s, a, b, qs, kv, seg, p, part_stride, scratch);
      continue;
    }
    switch (kv.layout.type) {
      case KvType::kF32:
        groups<KvType::kF32>(s, a, b, qs, kv, seg, p, part_stride, scratch);
        break;
      case KvType::kBF16:
        if (pairs_path(kv))
          groups<KvType::kBF16, Bf16Pairs>(s, a, b, qs, kv, seg, p, part_stride, scratch);
        else
          groups<KvType::kBF16>(s, a, b, qs, kv, seg, p, part_stride, scratch);
        break;
      case KvType::kInt8:
        groups<KvType::kInt8>(s, a, b, qs, kv, seg, p, part_stride, scratch);
        break;
      case KvType::kFp8E4M3:
        groups<KvType::kFp8E4M3>(s, a, b, qs, kv, seg, p, part_stride, scratch);
        break;
    }
  }
}

int64_t attention_heads_per_pass(const KvView& kv) {
  const int64_t head_bytes =
      std::max<int64_t>(1, kv.layout.head_dim * int64_t(kv_type_bytes(kv.layout.type)));
  return std::clamp<int64_t>(256 / head_bytes, 1, std::max<int64_t>(1, kv.layout.n_kv_heads));
}

void attention_group_partial(const AttentionShape& s, int64_t g, const AttentionQueries& qs,
                             const KvView& kv, const KvSegment& seg, float* part,
                             AttentionScratch& scratch) {
  attention_groups_partial(s, g, g + 1, qs, kv, seg, part, 0, scratch);
}

void attention_fold(int64_t rows, int64_t head_dim, const float* part, float* acc) {
  const int64_t ps = head_dim + 2;
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = part + r * ps;
    float* a = acc + r * ps;
    if (p[0] == -INFINITY) continue;  // no allowed key of this query in the segment
    if (a[0] == -INFINITY) {
      std::copy_n(p, ps, a);
      continue;
    }
    const float m = std::max(a[0], p[0]);
    const float x = std::exp(a[0] - m), y = std::exp(p[0] - m);
    for (int64_t d = 2; d < ps; ++d) a[d] = a[d] * x + p[d] * y;
    a[1] = a[1] * x + p[1] * y;
    a[0] = m;
  }
}

void attention_fold_init(int64_t rows, int64_t head_dim, float* acc) {
  for (int64_t r = 0; r < rows; ++r) acc[r * (head_dim + 2)] = -INFINITY;
}

namespace {
// out[d] = a[d] * inv for d < n, as the scalar loop rounds (one multiply each).
HERD_AVX512 void scale_row_avx512(const float* a, float inv, float* out, int64_t n) {
  const __m512 v = _mm512_set1_ps(inv);
  for (int64_t d = 0; d < n; d += 16) {
    const __mmask16 m = lanes(n - d);
    _mm512_mask_storeu_ps(out + d, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + d), v));
  }
}
}  // namespace

void attention_finish(const AttentionShape& s, int64_t g, const float* acc,
                      const AttentionQueries& qs) {
  const bool avx512 = active_isa() >= Isa::kAvx512;
  const int64_t group = s.n_kv_heads > 0 ? std::max<int64_t>(1, s.n_heads / s.n_kv_heads) : 1;
  const int64_t h0 = g * group, G = std::min(s.n_heads, h0 + group) - h0;
  const int64_t hd = s.head_dim, ps = hd + 2;
  for (int64_t t = 0; t < qs.n; ++t)
    for (int64_t h = 0; h < G; ++h) {
      const float* a = acc + (t * G + h) * ps;
      float* out = qs.out + t * qs.out_stride + (h0 + h) * hd;
      if (a[0] == -INFINITY) {  // no allowed key: zeros, like attention()
        std::fill_n(out, hd, 0.0f);
        continue;
      }
      const float inv = 1.0f / a[1];
      if (avx512)
        scale_row_avx512(a + 2, inv, out, hd);
      else
        for (int64_t d = 0; d < hd; ++d) out[d] = a[2 + d] * inv;
    }
}

void attention_group_fast(const AttentionShape& s, int64_t g, const AttentionQueries& qs,
                          const KvView& kv, AttentionScratch& scratch) {
  // The heads of group g are those attention() sends to kv head g.
  const int64_t group = s.n_kv_heads > 0 ? std::max<int64_t>(1, s.n_heads / s.n_kv_heads) : 1;
  const int64_t h0 = g * group, G = std::min(s.n_heads, h0 + group) - h0;
  if (qs.n <= 0 || G <= 0) return;
  // Blocks of 16 keys must not straddle pages (kv_view.h promises page_rows % 16 == 0; a view
  // that breaks it still gets a correct answer from the reference).
  if (fast_path(kv)) {
    // Segment by segment, each folded into the result in order (attention_fast.h).
    int64_t min_pos = INT64_MAX, max_pos = INT64_MIN;
    for (int64_t t = 0; t < qs.n; ++t) {
      min_pos = std::min(min_pos, attention_min_key(s, qs.pos[t]));
      max_pos = std::max(max_pos, qs.pos[t]);
    }
    kv_segments(kv, s.segment, min_pos, max_pos, scratch.segments);
    const int64_t rows = qs.n * G, floats = rows * (s.head_dim + 2);
    float* part = scratch.parts.ensure(size_t(2 * floats));
    if (scratch.segments.size() == 1) {  // a fold into an empty result would copy it
      attention_group_partial(s, g, qs, kv, scratch.segments[0], part, scratch);
      attention_finish(s, g, part, qs);
      return;
    }
    float* acc = part + floats;
    attention_fold_init(rows, s.head_dim, acc);
    for (const KvSegment& seg : scratch.segments) {
      attention_group_partial(s, g, qs, kv, seg, part, scratch);
      attention_fold(rows, s.head_dim, part, acc);
    }
    attention_finish(s, g, acc, qs);
    return;
  }
  // The reference per query, for just this group's heads (kv head g of the view).
  AttentionShape one = s;
  one.n_heads = G;
  one.n_kv_heads = 1;
  const size_t need = attention_scratch_floats(kv);
  if (scratch.ref.size() < need) scratch.ref.resize(need);
  const int64_t off = h0 * s.head_dim;
  for (int64_t t = 0; t < qs.n; ++t)
    attention(one, qs.q + t * qs.q_stride + off, qs.pos[t], kv, g, qs.out + t * qs.out_stride + off,
              scratch.ref.data());
}

}  // namespace herd
