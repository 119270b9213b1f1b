// Attention of one query token over cached keys and values (spec §3 step 7): scores in f32 with
// the fixed-order dot_f32, masked keys skipped (never given a score), softmax with the max
// subtracted, output accumulated in f32 and divided by the sum once at the end.
#include "herd/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "herd/ops/matmul.h"

namespace herd {

void attention(const AttentionShape& s, const float* q, int64_t q_pos, const float* k,
               const float* v, int64_t kv_stride, const int64_t* key_pos, int64_t n_keys,
               float* out, float* scratch) {
  const int64_t hd = s.head_dim;
  // GQA: consecutive groups of n_heads / n_kv_heads query heads share one kv head (spec §3 7).
  const int64_t group = s.n_kv_heads > 0 ? std::max<int64_t>(1, s.n_heads / s.n_kv_heads) : 1;
  for (int64_t h = 0; h < s.n_heads; ++h) {
    const float* qh = q + h * hd;
    const int64_t kv_off = (h / group) * hd;
    float* oh = out + h * hd;
    std::fill_n(oh, hd, 0.0f);

    // Masks come from absolute positions, causal and (chunk_size > 0) same-chunk (spec §7.5):
    // attention_allowed(q, k, c) == (lo <= k <= q) with lo the start of q's chunk, computed
    // once here instead of two divisions per key.
    const int64_t lo = s.chunk_size > 0 ? q_pos / s.chunk_size * s.chunk_size : INT64_MIN;
    auto allowed = [&](int64_t kp) { return kp <= q_pos && kp >= lo; };
    float mx = -INFINITY;
    bool any = false;
    for (int64_t j = 0; j < n_keys; ++j) {
      if (!allowed(key_pos[j])) continue;
      const float sc = dot_f32(qh, k + j * kv_stride + kv_off, hd) * s.scale;
      scratch[j] = sc;
      mx = any ? std::max(mx, sc) : sc;
      any = true;
    }
    if (!any) continue;  // nothing visible: the output stays zero

    float sum = 0.0f;
    for (int64_t j = 0; j < n_keys; ++j) {
      if (!allowed(key_pos[j])) continue;
      const float p = std::exp(scratch[j] - mx);
      sum += p;
      const float* vj = v + j * kv_stride + kv_off;
      for (int64_t d = 0; d < hd; ++d) oh[d] += p * vj[d];
    }
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < hd; ++d) oh[d] *= inv;
  }
}

}  // namespace herd
