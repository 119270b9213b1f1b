// Vectorized element-wise ops of the fast path (--precision auto).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "herd/ops/activation.h"
#include "herd/ops/exp_avx2.h"
#include "herd/ops/exp_avx512.h"
#include "herd/ops/gemm.h"
#include "herd/ops/norm.h"
#include "herd/ops/rope.h"

#define HERD_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#define HERD_AVX2 __attribute__((target("avx2,fma")))

namespace herd {

namespace {

// Σ x² of n floats: f32 squares summed in double, 8 lanes then a fixed tree (rms_norm_fast's).
HERD_AVX512 double sum_squares_avx512(const float* x, int64_t n) {
  __m512d acc = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 m = n - i >= 8 ? __mmask8(0xFF) : __mmask8((1u << (n - i)) - 1);
    const __m256 v = _mm256_maskz_loadu_ps(m, x + i);
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_mul_ps(v, v)));  // f32 square, as rms_norm
  }
  return _mm512_reduce_add_pd(acc);
}

HERD_AVX512 void swiglu_avx512(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));  // e^-g
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, u));
  }
}

HERD_AVX512 void rms_norm_avx512(const float* x, const float* gain, float* out, int64_t n,
                                 float eps) {
  const double sum = sum_squares_avx512(x, n);
  const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sc);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, gain + i)));
  }
}

HERD_AVX512 void qk_norm_avx512(float* x, int64_t n_heads, int64_t head_dim, float eps) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    const float mean = float(sum_squares_avx512(xh, head_dim) / double(head_dim));
    const __m512 sc = _mm512_set1_ps(1.0f / std::sqrt(mean + eps));
    for (int64_t i = 0; i < head_dim; i += 16) {
      const __mmask16 m =
          head_dim - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (head_dim - i)) - 1);
      _mm512_mask_storeu_ps(xh + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xh + i), sc));
    }
  }
}

// apply_rope(x, n_heads, head_dim, cs) 8 pairs at a time: x·cos and swap(x)·sin multiplied
// separately and then subtracted (even lanes) or added (odd), as the scalar code rounds them.
HERD_AVX512 void apply_rope_avx512(float* x, int64_t n_heads, int64_t head_dim, const float* cs) {
  const int64_t full = head_dim / 16 * 16;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < full; i += 16) {
      const __m512 v = _mm512_loadu_ps(xh + i), c = _mm512_loadu_ps(cs + i);
      const __m512 r = _mm512_mul_ps(v, _mm512_moveldup_ps(c));  // a·cos, b·cos
      const __m512 t =
          _mm512_mul_ps(_mm512_permute_ps(v, 0xB1), _mm512_movehdup_ps(c));  // b·sin, a·sin
      _mm512_storeu_ps(xh + i, _mm512_mask_sub_ps(_mm512_add_ps(r, t), __mmask16(0x5555), r, t));
    }
  }
  if (full < head_dim / 2 * 2) {  // a tail of fewer than 8 pairs
    for (int64_t h = 0; h < n_heads; ++h) {
      float* xh = x + h * head_dim;
      for (int64_t j = full / 2; j < head_dim / 2; ++j) {
        const float c = cs[2 * j], s = cs[2 * j + 1], a = xh[2 * j], b = xh[2 * j + 1];
        xh[2 * j] = a * c - b * s;
        xh[2 * j + 1] = a * s + b * c;
      }
    }
  }
}

// ---- The same four with AVX2 + FMA (machines without AVX-512), 8 lanes, tails masked. On a
// Zen 3 the scalar SwiGLU (a libm expf per element) was ~9% of an int4-all prefill.

HERD_AVX2 inline __m256i tail_mask8(int64_t left) {  // lanes < left
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(left < 8 ? left : 8)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Σ x² of n floats: f32 squares summed in double, 4 lanes then a fixed tree.
HERD_AVX2 double sum_squares_avx2(const float* x, int64_t n) {
  __m256d acc = _mm256_setzero_pd();
  const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
  for (int64_t i = 0; i < n; i += 4) {
    const __m128i m = _mm_cmpgt_epi32(_mm_set1_epi32(int32_t(n - i < 4 ? n - i : 4)), lane);
    const __m128 v = _mm_maskload_ps(x + i, m);
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm_mul_ps(v, v)));  // f32 square, as rms_norm
  }
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd(acc, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

HERD_AVX2 void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask8(n - i);
    const __m256 g = _mm256_maskload_ps(gate + i, m), u = _mm256_maskload_ps(up + i, m);
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));  // e^-g
    const __m256 sg = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(sg, u));
  }
}

HERD_AVX2 void rms_norm_avx2(const float* x, const float* gain, float* out, int64_t n, float eps) {
  const double sum = sum_squares_avx2(x, n);
  const __m256 sc = _mm256_set1_ps(1.0f / std::sqrt(float(sum / double(n)) + eps));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask8(n - i);
    const __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), sc);
    _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(v, _mm256_maskload_ps(gain + i, m)));
  }
}

HERD_AVX2 void qk_norm_avx2(float* x, int64_t n_heads, int64_t head_dim, float eps) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    const float mean = float(sum_squares_avx2(xh, head_dim) / double(head_dim));
    const __m256 sc = _mm256_set1_ps(1.0f / std::sqrt(mean + eps));
    for (int64_t i = 0; i < head_dim; i += 8) {
      const __m256i m = tail_mask8(head_dim - i);
      _mm256_maskstore_ps(xh + i, m, _mm256_mul_ps(_mm256_maskload_ps(xh + i, m), sc));
    }
  }
}

// 4 pairs at a time: a·cos − b·sin (even lanes) and b·cos + a·sin (odd) from two rounded products
// and one addsub, as the scalar code rounds them.
HERD_AVX2 void apply_rope_avx2(float* x, int64_t n_heads, int64_t head_dim, const float* cs) {
  const int64_t full = head_dim / 8 * 8;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < full; i += 8) {
      const __m256 v = _mm256_loadu_ps(xh + i), c = _mm256_loadu_ps(cs + i);
      const __m256 r = _mm256_mul_ps(v, _mm256_moveldup_ps(c));  // a·cos, b·cos
      const __m256 t =
          _mm256_mul_ps(_mm256_permute_ps(v, 0xB1), _mm256_movehdup_ps(c));  // b·sin, a·sin
      _mm256_storeu_ps(xh + i, _mm256_addsub_ps(r, t));
    }
    // A tail of fewer than 4 pairs by the reference itself (compiled without FMA, so no
    // contraction can round it differently).
    if (full < head_dim / 2 * 2) apply_rope(xh + full, 1, head_dim / 2 * 2 - full, cs + full);
  }
}

}  // namespace

void qk_norm_fast(float* x, int64_t n_heads, int64_t head_dim, float eps) {
  if (head_dim <= 0) return;
  if (active_isa() >= Isa::kAvx512) return qk_norm_avx512(x, n_heads, head_dim, eps);
  if (active_isa() == Isa::kAvx2) return qk_norm_avx2(x, n_heads, head_dim, eps);
  qk_norm(x, n_heads, head_dim, eps);
}

void apply_rope_fast(float* x, int64_t n_heads, int64_t head_dim, const float* cs) {
  if (active_isa() >= Isa::kAvx512) return apply_rope_avx512(x, n_heads, head_dim, cs);
  if (active_isa() == Isa::kAvx2) return apply_rope_avx2(x, n_heads, head_dim, cs);
  apply_rope(x, n_heads, head_dim, cs);
}

void swiglu_fast(const float* gate, const float* up, float* out, int64_t n) {
  if (active_isa() >= Isa::kAvx512) return swiglu_avx512(gate, up, out, n);
  if (active_isa() == Isa::kAvx2) return swiglu_avx2(gate, up, out, n);
  swiglu(gate, up, out, n);
}

void rms_norm_fast(const float* x, const float* gain, float* out, int64_t n, float eps) {
  if (n <= 0) return;
  if (active_isa() >= Isa::kAvx512) return rms_norm_avx512(x, gain, out, n, eps);
  if (active_isa() == Isa::kAvx2) return rms_norm_avx2(x, gain, out, n, eps);
  rms_norm(x, gain, out, n, eps);
}

}  // namespace herd
