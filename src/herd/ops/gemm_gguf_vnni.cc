// GGUF kernels with AVX-512 VNNI: F16 weights, the activation quantizer and the dispatch over
// the format files (gemm_gguf_vnni.h describes the scheme).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "herd/ops/gemm_gguf_vnni.h"

namespace herd::gemm_detail {
namespace gguf_vnni {
namespace {

// ---- F16 × f32 ----

struct F16Tile {
  using Ctx = gguf_vnni::Ctx;
  // Four partial sums per token (16 elements each, interleaved over K) so a single token is not
  // bound by the FMA latency; the same for every T, so results do not depend on the batch.
  template <int T, int R>
  HERD_GV static void run(const Ctx& c, int64_t r, int64_t t0) {
    const auto* row = reinterpret_cast<const uint16_t*>(c.w + r * c.rb);
    __m512 acc[T][4];
    for (int t = 0; t < T; ++t)
      for (int u = 0; u < 4; ++u) acc[t][u] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= c.cols; i += 64)
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        const __m512 w =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i + 16 * u)));
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t)
          acc[t][u] =
              _mm512_fmadd_ps(w, _mm512_loadu_ps(c.xf + (t0 + t) * c.kpad + i + 16 * u), acc[t][u]);
      }
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {  // the tail: same lanes, masked
      const int64_t left = c.cols - i - 16 * u;
      const __mmask16 m = left >= 16  ? __mmask16(0xffff)
                          : left <= 0 ? __mmask16(0)
                                      : __mmask16((1u << left) - 1);
      const __m512 w = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + i + 16 * u));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        acc[t][u] = _mm512_fmadd_ps(
            w, _mm512_maskz_loadu_ps(m, c.xf + (t0 + t) * c.kpad + i + 16 * u), acc[t][u]);
    }
    __m512 sum[T];
    for (int t = 0; t < T; ++t)
      sum[t] =
          _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
    store<T>(c, sum, r, t0);
  }
};

}  // namespace
}  // namespace gguf_vnni

// quantize_gguf_act_row with AVX-512, bit for bit: amax is exact (and Q8_K's signed max is the
// x at the first lane of largest |x|), the scale is the same scalar, the product rounds the same,
// cvtps_epi32 rounds to nearest even as nearbyint does, and each vector of 16 codes is one sum of
// 16.
HERD_GV void quantize_gguf_act_row_avx512(const float* x, int64_t k, int64_t kpad, int64_t block,
                                          int8_t* q, float* d, int16_t* sums, float* s) {
  const auto lanes = [](int64_t left) {
    return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
  };
  for (int64_t b = 0; b < kpad; b += block) {
    const int64_t m = std::clamp<int64_t>(k - b, 0, block);
    __m512 amax = _mm512_setzero_ps();
    for (int64_t i = 0; i < block; i += 16)
      amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes(m - i), x + b + i)));
    const float a = _mm512_reduce_max_ps(amax);
    float scale = a > 0 ? 127.0f / a : 0.0f;
    if (block == 256) {  // Q8_K: −127 / the signed max; d = 1 / that
      if (a > 0)
        for (int64_t i = 0; i < m; i += 16) {
          const __mmask16 hit = _mm512_mask_cmp_ps_mask(
              lanes(m - i), _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes(m - i), x + b + i)),
              _mm512_set1_ps(a), _CMP_EQ_OQ);
          if (hit) {
            scale = -127.0f / x[b + i + __builtin_ctz(hit)];
            break;
          }
        }
      d[b / block] = a > 0 ? 1.0f / scale : 0.0f;
    } else {  // Q8_0 / Q8_1: d kept as f16
      d[b / block] = f16_to_f32(f32_to_f16(a / 127.0f));
    }
    const __m512 inv = _mm512_set1_ps(scale);
    int32_t sum = 0;
    for (int64_t i = 0; i < block; i += 16) {
      __m512i qi =
          _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes(m - i), x + b + i), inv));
      qi = _mm512_max_epi32(_mm512_min_epi32(qi, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b + i), _mm512_cvtepi32_epi8(qi));
      sums[(b + i) / 16] = int16_t(_mm512_reduce_add_epi32(qi));
      sum += sums[(b + i) / 16];
    }
    if (s && block == 32) s[b / block] = f16_to_f32(f32_to_f16(float(sum) * (a / 127.0f)));
  }
}

Kernel gguf_vnni_kernel(DType t) {
  if (t == DType::F16) return gguf_vnni::run_tiles<gguf_vnni::F16Tile>;
  if (const Kernel k = gguf_vnni_kquant_kernel(t)) return k;
  return gguf_vnni_b32_kernel(t);
}

}  // namespace herd::gemm_detail
