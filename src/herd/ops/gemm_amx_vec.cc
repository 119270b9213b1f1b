// BF16 products of decode-sized batches on AMX machines, with AVX-512 instead of tiles but bit
// for bit what the tile unit computes, so a token's outputs do not depend on which path its
// batch took. AMX streams weights from DRAM at ~21 GB/s here against ~25 GB/s for vector loads
// with software prefetch (measured on 720 MB of weights, any tile layout). TDPBF16PS computes,
// per output and per 32-element K step, an FMA chain over the even K elements and one over the
// odd ones, each from zero, then C += (even + odd), with DAZ/FTZ (the Intel SDM pseudo-code;
// checked bitwise against the hardware on 5 M random outputs, and by tests/ops/test_gemm.cc
// BatchInvariantBitwise / Bf16LayoutsAgreeBitwise). The same chains run here in the lanes of a
// vector over 16 weight rows: plain rows are transposed per K step, BF16T tiles need not be.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

#define HERD_AMX_VEC __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

namespace herd::gemm_detail {

namespace {

constexpr int64_t kPrefetchAhead = 2048;  // bytes, BF16T decode (one contiguous stream per block)

// nt tokens' bf16 activations from t0 as exact f32 [nt][kpad].
HERD_AMX_VEC void bf16_as_f32(const PreparedActs& a, int64_t t0, int64_t nt, float* x) {
  const int64_t kp = a.kpad;
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t k = 0; k < kp; k += 16) {
      const __m256i h =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(a.bf16.data() + (t0 + t) * kp + k));
      _mm512_store_ps(x + t * kp + k,
                      _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
}

// 16 rows [rb, rb+nr) × one 32-element K step of every token: c[t] += (even chain + odd chain).
// The 16 × 16-dword block is transposed in registers (named values, not an array: GCC kept an
// array on the stack), so lane i of P_k holds K pair k of row i.
template <int NT, bool kFull>
HERD_AMX_VEC __attribute__((always_inline)) inline void bf16_vec_step(const uint16_t* w, int64_t K,
                                                                      int64_t nr, __mmask32 km,
                                                                      const float* x, int64_t kp,
                                                                      __m512* c) {
#define HERD_LD(i)                                                                         \
  const __m512i r##i =                                                                     \
      kFull ? _mm512_loadu_si512(w + i * K)                                                \
            : (i < nr ? _mm512_maskz_loadu_epi16(km, w + i * K) : _mm512_setzero_si512()); \
  if (kFull) _mm_prefetch(reinterpret_cast<const char*>(w + (16 + i) * K), _MM_HINT_T0);
  HERD_LD(0)
  HERD_LD(1)
  HERD_LD(2)
  HERD_LD(3)
  HERD_LD(4)
  HERD_LD(5)
  HERD_LD(6) HERD_LD(7) HERD_LD(8) HERD_LD(9) HERD_LD(10) HERD_LD(11) HERD_LD(12) HERD_LD(13)
      HERD_LD(14) HERD_LD(15)
#undef HERD_LD
  // Stage 1-2: within 128-bit lanes, 4 rows × 4 dwords.
#define HERD_S12(a, b, c2, d, o0, o1, o2, o3)                                                 \
  const __m512i o0##lo = _mm512_unpacklo_epi32(a, b), o0##hi = _mm512_unpackhi_epi32(a, b);   \
  const __m512i o1##lo = _mm512_unpacklo_epi32(c2, d), o1##hi = _mm512_unpackhi_epi32(c2, d); \
  const __m512i o0 = _mm512_unpacklo_epi64(o0##lo, o1##lo);                                   \
  const __m512i o1 = _mm512_unpackhi_epi64(o0##lo, o1##lo);                                   \
  const __m512i o2 = _mm512_unpacklo_epi64(o0##hi, o1##hi);                                   \
  const __m512i o3 = _mm512_unpackhi_epi64(o0##hi, o1##hi);
          HERD_S12(r0, r1, r2, r3, a0, a1, a2, a3) HERD_S12(r4, r5, r6, r7, b0, b1, b2, b3)
              HERD_S12(r8, r9, r10, r11, c0, c1, c2, c3)
                  HERD_S12(r12, r13, r14, r15, d0, d1, d2, d3)
#undef HERD_S12
  // a_j: lane L holds dword (4L + j) of rows 0-3; b_j rows 4-7; c_j rows 8-11; d_j rows 12-15.
  // Stage 3-4: gather the four row groups of dword 4L + j into one vector per K pair.
#define HERD_S34(j, p0, p1, p2, p3)                                  \
  const __m512i ab##j##l = _mm512_shuffle_i32x4(a##j, b##j, 0x88);   \
  const __m512i ab##j##h = _mm512_shuffle_i32x4(a##j, b##j, 0xdd);   \
  const __m512i cd##j##l = _mm512_shuffle_i32x4(c##j, d##j, 0x88);   \
  const __m512i cd##j##h = _mm512_shuffle_i32x4(c##j, d##j, 0xdd);   \
  const __m512i p0 = _mm512_shuffle_i32x4(ab##j##l, cd##j##l, 0x88); \
  const __m512i p2 = _mm512_shuffle_i32x4(ab##j##l, cd##j##l, 0xdd); \
  const __m512i p1 = _mm512_shuffle_i32x4(ab##j##h, cd##j##h, 0x88); \
  const __m512i p3 = _mm512_shuffle_i32x4(ab##j##h, cd##j##h, 0xdd);
                      HERD_S34(0, P0, P4, P8, P12) HERD_S34(1, P1, P5, P9, P13)
                          HERD_S34(2, P2, P6, P10, P14) HERD_S34(3, P3, P7, P11, P15)
#undef HERD_S34
                              const __m512i hi_mask = _mm512_set1_epi32(int32_t(0xFFFF0000u));
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) {
    const float* xs = x + t * kp;
    __m512 e = _mm512_setzero_ps(), o = _mm512_setzero_ps();
#define HERD_PAIR(k)                                                                               \
  e = _mm512_fmadd_ps(_mm512_set1_ps(xs[2 * k]), _mm512_castsi512_ps(_mm512_slli_epi32(P##k, 16)), \
                      e);                                                                          \
  o = _mm512_fmadd_ps(_mm512_set1_ps(xs[2 * k + 1]),                                               \
                      _mm512_castsi512_ps(_mm512_and_si512(P##k, hi_mask)), o);
    HERD_PAIR(0)
    HERD_PAIR(1)
    HERD_PAIR(2)
    HERD_PAIR(3)
    HERD_PAIR(4)
    HERD_PAIR(5)
    HERD_PAIR(6) HERD_PAIR(7) HERD_PAIR(8) HERD_PAIR(9) HERD_PAIR(10) HERD_PAIR(11) HERD_PAIR(12)
        HERD_PAIR(13) HERD_PAIR(14) HERD_PAIR(15)
#undef HERD_PAIR
            c[t] = _mm512_add_ps(c[t], _mm512_add_ps(e, o));
  }
}

template <int NT>
HERD_AMX_VEC void bf16_vec_rows(const uint16_t* W, int64_t K, int64_t kp, const float* x,
                                int64_t r0, int64_t r1, int64_t t0, float* y, int64_t ys) {
  const int64_t steps = kp / 32, full_steps = K / 32;
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int64_t nr = std::min<int64_t>(16, r1 - rb);
    const uint16_t* wr = W + rb * K;
    __m512 c[NT];
    for (int t = 0; t < NT; ++t) c[t] = _mm512_setzero_ps();
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t left = K - s * 32;
      const __mmask32 km = left >= 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
      if (nr == 16 && s < full_steps)
        bf16_vec_step<NT, true>(wr + s * 32, K, nr, km, x + s * 32, kp, c);
      else
        bf16_vec_step<NT, false>(wr + s * 32, K, nr, km, x + s * 32, kp, c);
    }
    const __mmask16 rm = __mmask16((1u << nr) - 1);
    for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + (t0 + t) * ys + rb, rm, c[t]);
  }
}

// Token counts 1..kAmxVecTokens of one row kernel (plain rows or BF16T tiles).
using VecRows = void (*)(const uint16_t* W, int64_t K, int64_t kp, const float* x, int64_t r0,
                         int64_t r1, int64_t t0, float* y, int64_t ys);
constexpr VecRows kPlainRows[] = {bf16_vec_rows<1>, bf16_vec_rows<2>, bf16_vec_rows<3>,
                                  bf16_vec_rows<4>};

// BF16T decode: a K pair of 16 rows is one 64-byte load, so the chains run without transposes.
template <int NT>
HERD_AMX_VEC void bf16t_vec_rows(const uint16_t* W, int64_t /*K: padded into kp*/, int64_t kp,
                                 const float* x, int64_t r0, int64_t r1, int64_t t0, float* y,
                                 int64_t ys) {
  const int64_t steps = kp / 32, block = kp * 16;  // u16 per 16-row block
  const __m512i hi_mask = _mm512_set1_epi32(int32_t(0xFFFF0000u));
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const uint16_t* wb = W + (rb / 16) * block;
    __m512 c[NT];
    for (int t = 0; t < NT; ++t) c[t] = _mm512_setzero_ps();
    for (int64_t s = 0; s < steps; ++s) {
      const uint16_t* ws = wb + s * 512;
      __m512i P[16];
#pragma GCC unroll 16
      for (int k = 0; k < 16; ++k) {
        P[k] = _mm512_loadu_si512(ws + k * 32);  // mmap'd files align to 8 bytes only
        if (kPrefetchAhead)
          _mm_prefetch(reinterpret_cast<const char*>(ws + k * 32) + kPrefetchAhead, _MM_HINT_T1);
      }
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const float* xs = x + t * kp + s * 32;
        __m512 e = _mm512_setzero_ps(), o = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int k = 0; k < 16; ++k) {
          e = _mm512_fmadd_ps(_mm512_set1_ps(xs[2 * k]),
                              _mm512_castsi512_ps(_mm512_slli_epi32(P[k], 16)), e);
          o = _mm512_fmadd_ps(_mm512_set1_ps(xs[2 * k + 1]),
                              _mm512_castsi512_ps(_mm512_and_si512(P[k], hi_mask)), o);
        }
        c[t] = _mm512_add_ps(c[t], _mm512_add_ps(e, o));
      }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + (t0 + t) * ys + rb, c[t]);
  }
}

constexpr VecRows kTiledRows[] = {bf16t_vec_rows<1>, bf16t_vec_rows<2>, bf16t_vec_rows<3>,
                                  bf16t_vec_rows<4>};

}  // namespace

void amx_bf16_vec(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                  int64_t t1, float* y, int64_t ys) {
  const VecRows* rows = w.dtype == DType::BF16T ? kTiledRows : kPlainRows;
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // FTZ | DAZ, as the tile unit
  const int64_t kp = a.kpad, nt = t1 - t0;
  thread_local AlignedBuffer<float> xbuf;  // the tokens' bf16 activations as exact f32
  float* x = xbuf.ensure(size_t(kAmxVecTokens * kp));
  bf16_as_f32(a, t0, nt, x);
  rows[nt - 1](static_cast<const uint16_t*>(w.data), w.cols, kp, x, r0, r1, t0, y, ys);
  _mm_setcsr(csr);
}

}  // namespace herd::gemm_detail
