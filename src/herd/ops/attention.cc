// Attention of one query token over cached keys and values (spec §3 step 7): scores in f32 with
// the fixed-order dot_f32, masked keys skipped (never given a score), softmax with the max
// subtracted, output accumulated in f32 and divided by the sum once at the end. Keys and values
// are read one head row at a time through kv_load_row, in the view's row order.
#include "herd/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "herd/ops/kv_quant.h"
#include "herd/ops/matmul.h"

namespace herd {

size_t attention_scratch_floats(const KvView& kv) {
  // One score per row, then one dequantized head row.
  return size_t(kv.n_rows() + kv.layout.head_dim);
}

void attention(const AttentionShape& s, const float* q, int64_t q_pos, const KvView& kv,
               int64_t kv_head0, float* out, float* scratch) {
  const int64_t hd = s.head_dim, n_rows = kv.n_rows();
  const KvType type = kv.layout.type;
  const size_t elem = kv_type_bytes(type);
  float* row = scratch + n_rows;  // one dequantized head row of K or V
  // Head `kvh` of row r, dequantized into `row`: a V row's elements are adjacent, a K row's
  // kKvKeyBlock apart (its key block is stored transposed, ops/kv_view.h).
  auto load = [&](const void* raw, const float* scales, int64_t kvh, int64_t stride) {
    kv_load_row(type, static_cast<const uint8_t*>(raw) + size_t(kvh * hd * stride) * elem,
                scales ? scales + kvh : nullptr, 1, hd, row, stride);
  };
  // GQA: consecutive groups of n_heads / n_kv_heads query heads share one kv head (spec §3 7).
  const int64_t group = s.n_kv_heads > 0 ? std::max<int64_t>(1, s.n_heads / s.n_kv_heads) : 1;
  // Masks come from absolute positions, causal and (chunk_size > 0) same-chunk (spec §7.5):
  // attention_allowed(q, k, c) == (lo <= k <= q) with lo the start of q's chunk, computed
  // once here instead of two divisions per key. kKvEmpty (INT64_MAX) is after every query.
  const int64_t lo = s.chunk_size > 0 ? q_pos / s.chunk_size * s.chunk_size : INT64_MIN;
  auto allowed = [&](int64_t r) {
    const int64_t kp = kv.pos(r);
    return kp <= q_pos && kp >= lo;
  };
  for (int64_t h = 0; h < s.n_heads; ++h) {
    const float* qh = q + h * hd;
    const int64_t kvh = kv_head0 + h / group;
    float* oh = out + h * hd;
    std::fill_n(oh, hd, 0.0f);

    float mx = -INFINITY;
    bool any = false;
    for (int64_t r = 0; r < n_rows; ++r) {
      if (!allowed(r)) continue;
      load(kv.k_row(r), kv.k_scales(r), kvh, kKvKeyBlock);
      const float sc = dot_f32(qh, row, hd) * s.scale;
      scratch[r] = sc;
      mx = any ? std::max(mx, sc) : sc;
      any = true;
    }
    if (!any) continue;  // nothing visible: the output stays zero

    float sum = 0.0f;
    for (int64_t r = 0; r < n_rows; ++r) {
      if (!allowed(r)) continue;
      const float p = std::exp(scratch[r] - mx);
      sum += p;
      load(kv.v_row(r), kv.v_scales(r), kvh, 1);
      for (int64_t d = 0; d < hd; ++d) oh[d] += p * row[d];
    }
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < hd; ++d) oh[d] *= inv;
  }
}

}  // namespace herd
