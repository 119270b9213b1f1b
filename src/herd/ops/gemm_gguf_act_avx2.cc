// GGUF activation rows (Q8_0 / Q8_1 / Q8_K blocks, gemm_gguf.h) with AVX2 for the AVX2 GGUF
// kernels (gemm_gguf_avx2.cc), chosen by gemm_gguf_scalar.cc below AVX-512 VNNI.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "herd/ops/gemm_gguf_simd.h"

namespace herd::gemm_detail {

// quantize_gguf_act_row with AVX2, bit for bit (quantize_row_avx2 in act_quant.cc is the same for
// Q8G): amax is exact (a NaN is skipped as the scalar loop's comparison skips it), Q8_K's signed
// max is the x at the first element of largest |x|, the scale is the same scalar, the product
// rounds the same and cvtps_epi32 rounds to nearest even as nearbyint does; sums are exact.
// The scalar loop (a libm nearbyint per element) was 2.9% of a Q4_K_M decode's samples.
HERD_GGUF_AVX2 void quantize_gguf_act_row_avx2(const float* x, int64_t k, int64_t kpad,
                                               int64_t block, int8_t* q, float* d, int16_t* sums,
                                               float* s) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const auto load = [&](int64_t b, int64_t m,
                        int64_t i) HERD_GGUF_AVX2 {  // x[b + i ..], zero past m
    return _mm256_maskload_ps(x + b + i,
                              _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(m - i)), lane));
  };
  for (int64_t b = 0; b < kpad; b += block) {
    const int64_t m = std::clamp<int64_t>(k - b, 0, block);
    __m256 mx = _mm256_setzero_ps();
    for (int64_t i = 0; i < m; i += 8)
      mx = _mm256_max_ps(_mm256_and_ps(load(b, m, i), abs_mask), mx);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float a = _mm_cvtss_f32(h);
    float scale = a > 0 ? 127.0f / a : 0.0f;
    if (block == 256) {  // Q8_K: −127 / the signed max; d = 1 / that
      if (a > 0)
        for (int64_t i = 0; i < m; i += 8) {
          const __m256 v = load(b, m, i);
          const int hit = _mm256_movemask_ps(
              _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), _mm256_set1_ps(a), _CMP_EQ_OQ));
          if (hit) {
            scale = -127.0f / x[b + i + __builtin_ctz(unsigned(hit))];
            break;
          }
        }
      d[b / block] = a > 0 ? 1.0f / scale : 0.0f;
    } else {  // Q8_0 / Q8_1: d kept as f16
      d[b / block] = f16_to_f32(f32_to_f16(a / 127.0f));
    }
    const __m256 inv = _mm256_set1_ps(scale);
    int32_t sum = 0;
    for (int64_t i = 0; i < block; i += 32) {  // 32 codes: one store, two sums of 16
      __m256i qi[4];
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        qi[u] = _mm256_cvtps_epi32(_mm256_mul_ps(load(b, m, i + 8 * u), inv));
        qi[u] = _mm256_max_epi32(_mm256_min_epi32(qi[u], _mm256_set1_epi32(127)),
                                 _mm256_set1_epi32(-127));
      }
      const __m256i p =
          _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(q + b + i),
          _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
      const __m256i h2 =
          _mm256_hadd_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3]));
      const __m256i h4 = _mm256_hadd_epi32(h2, h2);  // per 128-bit half: [lo16, hi16, lo16, hi16]
      const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h4), _mm256_extracti128_si256(h4, 1));
      const int32_t s0 = _mm_cvtsi128_si32(t), s1 = _mm_extract_epi32(t, 1);
      sums[(b + i) / 16] = int16_t(s0);
      sums[(b + i) / 16 + 1] = int16_t(s1);
      sum += s0 + s1;
    }
    if (s && block == 32) s[b / block] = f16_to_f32(f32_to_f16(float(sum) * (a / 127.0f)));
  }
}

}  // namespace herd::gemm_detail
