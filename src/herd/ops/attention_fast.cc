#include "herd/ops/attention_fast.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "herd/ops/gemm.h"

namespace herd {
namespace {

__attribute__((target("avx512f"))) inline __mmask16 tail_mask(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

__attribute__((target("avx512f"))) float dot_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

__attribute__((target("avx512f"))) void attention_avx512(
    const AttentionShape& s, const float* q, int64_t q_pos, const float* k, const float* v,
    int64_t kv_stride, const int64_t* key_pos, int64_t n_keys, float* out, float* scratch) {
  const int64_t hd = s.head_dim;
  const int64_t group = s.n_kv_heads > 0 ? std::max<int64_t>(1, s.n_heads / s.n_kv_heads) : 1;
  const int64_t lo = s.chunk_size > 0 ? q_pos / s.chunk_size * s.chunk_size : INT64_MIN;
  for (int64_t h = 0; h < s.n_heads; ++h) {
    const float* qh = q + h * hd;
    const int64_t kv_off = (h / group) * hd;
    float* oh = out + h * hd;
    std::fill_n(oh, hd, 0.0f);
    float mx = -INFINITY;
    bool any = false;
    for (int64_t j = 0; j < n_keys; ++j) {
      const int64_t kp = key_pos[j];
      if (kp > q_pos || kp < lo) continue;
      const float sc = dot_avx512(qh, k + j * kv_stride + kv_off, hd) * s.scale;
      scratch[j] = sc;
      mx = any ? std::max(mx, sc) : sc;
      any = true;
    }
    if (!any) continue;
    float sum = 0.0f;
    for (int64_t j = 0; j < n_keys; ++j) {
      const int64_t kp = key_pos[j];
      if (kp > q_pos || kp < lo) continue;
      const float p = std::exp(scratch[j] - mx);
      sum += p;
      const __m512 pv = _mm512_set1_ps(p);
      const float* vj = v + j * kv_stride + kv_off;
      for (int64_t d = 0; d < hd; d += 16) {
        const __mmask16 m = tail_mask(hd - d);
        const __m512 o = _mm512_maskz_loadu_ps(m, oh + d);
        _mm512_mask_storeu_ps(oh + d, m, _mm512_fmadd_ps(pv, _mm512_maskz_loadu_ps(m, vj + d), o));
      }
    }
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < hd; ++d) oh[d] *= inv;
  }
}

}  // namespace

void attention_fast(const AttentionShape& s, const float* q, int64_t q_pos, const float* k,
                    const float* v, int64_t kv_stride, const int64_t* key_pos, int64_t n_keys,
                    float* out, float* scratch) {
  if (active_isa() >= Isa::kAvx512)
    attention_avx512(s, q, q_pos, k, v, kv_stride, key_pos, n_keys, out, scratch);
  else
    attention(s, q, q_pos, k, v, kv_stride, key_pos, n_keys, out, scratch);
}

}  // namespace herd
