// Q8G / Q4G with AVX-512 VNNI: vpdpbusd multiplies the biased unsigned weight codes with the
// signed int8 activations, 4 products per int32 lane. A group of 128 is two vpdpbusd per
// (token, row); 16 such group accumulators are summed horizontally together (reduce16) into one
// vector of exact group dots, lane = row · T + token. The bias (128 or 8 times Σq_x) is removed
// exactly in integers, and each lane takes one FMA per group (q_group_fma): so these results equal
// the scalar, AVX2 and AMX paths bit for bit, whatever the blocking.
// GCC 12's intrinsic headers start some results from _mm512_undefined_*(), which its
// -W(maybe-)uninitialized misreads when inlined into target-attributed functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

#define HERD_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma")))

namespace herd::gemm_detail {

namespace {

// out lane i = Σ lanes of v[i] (int32, exact in any order). Halves, then quarters, are folded
// pairwise across vectors so 16 vectors take 46 instructions instead of 16 full reductions.
HERD_VNNI inline __m512i reduce16(const __m512i* v) {
  __m512i u[8], w[4];
  for (int i = 0; i < 8; ++i)  // [v_i 8-lane partial | v_{i+8} 8-lane partial]
    u[i] = _mm512_add_epi32(_mm512_shuffle_i64x2(v[i], v[i + 8], 0x44),
                            _mm512_shuffle_i64x2(v[i], v[i + 8], 0xEE));
  for (int i = 0; i < 4; ++i)  // 128-bit blocks: 4-lane partials of v_i, v_{i+8}, v_{i+4}, v_{i+12}
    w[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(u[i], u[i + 4], 0x88),
                            _mm512_shuffle_i32x4(u[i], u[i + 4], 0xDD));
  const __m512i s01 =
      _mm512_add_epi32(_mm512_unpacklo_epi32(w[0], w[1]), _mm512_unpackhi_epi32(w[0], w[1]));
  const __m512i s23 =
      _mm512_add_epi32(_mm512_unpacklo_epi32(w[2], w[3]), _mm512_unpackhi_epi32(w[2], w[3]));
  const __m512i z =
      _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
  return _mm512_shuffle_i32x4(z, z, 0xD8);  // blocks (0, 8, 4, 12) -> (0, 4, 8, 12)
}

template <DType kType>
struct QTile {
  using Ctx = Int8Ctx;
  static constexpr int kShift = kType == DType::Q8G ? 7 : 3;  // log2 of the weight bias

  template <int T, int R>
  HERD_VNNI static void run(const Ctx& c, int64_t r0, int64_t t0) {
    if constexpr (T * R <= 16) {
      constexpr int L = T * R;
      constexpr __mmask16 valid = __mmask16((1u << L) - 1);
      alignas(64) int32_t lt[16], lw[16];
      for (int l = 0; l < 16; ++l) lt[l] = l < L ? l % T : 0, lw[l] = l < L ? int32_t(l / T) : 0;
      const __m512i lane_t = _mm512_load_si512(lt);
      const __m512i idx_w =
          _mm512_mullo_epi32(_mm512_load_si512(lw), _mm512_set1_epi32(int32_t(c.groups)));
      const __m512i nib = _mm512_set1_epi8(0x0F);
      const float* ws = c.w_scale + r0 * c.groups;
      const uint8_t* wp[R];
      const int8_t* xp[T];
      for (int r = 0; r < R; ++r) wp[r] = c.w + (r0 + r) * c.w_stride;
      for (int t = 0; t < T; ++t) xp[t] = c.xq + (t0 + t) * c.kpad;
      // Decode: the block's R rows are one contiguous region read 64 bytes per row per group;
      // rows are short (a few KiB), so prefetching within a row leaves each row's first lines as
      // demand misses. Prefetching the same position of the next block (into L2) keeps a whole
      // block of requests in flight instead.
      const int64_t ahead = R * c.w_stride;
      __m512 acc = _mm512_setzero_ps();
      for (int64_t g = 0; g < c.groups; ++g) {
        __m512i x0[T], x1[T], d[16];
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          x0[t] = _mm512_load_si512(xp[t] + g * 128);
          x1[t] = _mm512_load_si512(xp[t] + g * 128 + 64);
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          __m512i w0, w1;
          if constexpr (kType == DType::Q8G) {
            if (T == 1)
              _mm_prefetch(reinterpret_cast<const char*>(wp[r] + ahead + g * 128), _MM_HINT_T1);
            w0 = _mm512_loadu_si512(wp[r] + g * 128);
            w1 = _mm512_loadu_si512(wp[r] + g * 128 + 64);
          } else {  // byte j: element j (low nibble), element j + 64 (high nibble)
            if (T == 1)
              _mm_prefetch(reinterpret_cast<const char*>(wp[r] + ahead + g * 64), _MM_HINT_T1);
            const __m512i b = _mm512_loadu_si512(wp[r] + g * 64);
            w0 = _mm512_and_si512(b, nib);
            w1 = _mm512_and_si512(_mm512_srli_epi16(b, 4), nib);
          }
#pragma GCC unroll 4
          for (int t = 0; t < T; ++t)
            d[r * T + t] = _mm512_dpbusd_epi32(
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, x0[t]), w1, x1[t]);
        }
#pragma GCC unroll 16
        for (int l = L; l < 16; ++l) d[l] = _mm512_setzero_si512();
        const __m512i tot = reduce16(d);
        const __m512i xs = _mm512_permutexvar_epi32(
            lane_t, _mm512_maskz_loadu_epi32(__mmask16((1u << T) - 1), c.x_sum + g * c.n + t0));
        const __m512 xsc = _mm512_permutexvar_ps(
            lane_t, _mm512_maskz_loadu_ps(__mmask16((1u << T) - 1), c.x_scale + g * c.n + t0));
        const __m512 wsc = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx_w, ws + g, 4);
        const __m512i dot = _mm512_sub_epi32(tot, _mm512_slli_epi32(xs, kShift));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wsc, xsc), acc);
      }
      if constexpr (T == 1) {
        _mm512_mask_storeu_ps(c.y + t0 * c.ys + r0, valid, acc);
      } else {
        alignas(64) float out[16];
        _mm512_store_ps(out, acc);
        for (int r = 0; r < R; ++r)
          for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r0 + r] = out[r * T + t];
      }
    }
  }
};

template <DType kType>
void kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
            int64_t t1, float* y, int64_t ys) {
  const Int8Ctx c = int8_ctx(a, w, packed_row_bytes(kType, w.cols), r1, y, ys);
  using Table = BlockTable<QTile<kType>, 4, 16>;
  if (t1 - t0 == 1)
    Table::drive(c, r0, r1, t0, t1, 1, 16);
  else
    Table::drive(c, r0, r1, t0, t1, 4, 4);
}

}  // namespace

KernelSet vnni_kernels() {
  return {{DType::Q8G, kernel<DType::Q8G>}, {DType::Q4G, kernel<DType::Q4G>}};
}

// Used by the AMX table for the token blocks too small for a tile (bitwise the same results).
Kernel vnni_q8_kernel() {
  return kernel<DType::Q8G>;
}
Kernel vnni_q4_kernel() {
  return kernel<DType::Q4G>;
}

}  // namespace herd::gemm_detail
