// Vectorized element-wise ops of the fast path (--precision auto).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "herd/ops/activation.h"
#include "herd/ops/exp_avx512.h"
#include "herd/ops/gemm.h"
#include "herd/ops/norm.h"

#define HERD_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

namespace herd {

namespace {

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
  __m512d acc = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 m = n - i >= 8 ? __mmask8(0xFF) : __mmask8((1u << (n - i)) - 1);
    const __m256 v = _mm256_maskz_loadu_ps(m, x + i);
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_mul_ps(v, v)));  // f32 square, as rms_norm
  }
  const double sum = _mm512_reduce_add_pd(acc);
  const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sc);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, gain + i)));
  }
}

}  // namespace

void swiglu_fast(const float* gate, const float* up, float* out, int64_t n) {
  if (active_isa() >= Isa::kAvx512) return swiglu_avx512(gate, up, out, n);
  swiglu(gate, up, out, n);
}

void rms_norm_fast(const float* x, const float* gain, float* out, int64_t n, float eps) {
  if (n <= 0) return;
  if (active_isa() >= Isa::kAvx512) return rms_norm_avx512(x, gain, out, n, eps);
  rms_norm(x, gain, out, n, eps);
}

}  // namespace herd
