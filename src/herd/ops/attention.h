// Scaled dot-product attention of one query token over cached keys/values, with the causal and
// chunked masks computed from absolute positions (spec §3 step 7).
#pragma once

#include <cstddef>
#include <cstdint>

#include "herd/ops/kv_view.h"

namespace herd {

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // GQA: query head h uses kv head h / (n_heads / n_kv_heads)
  int64_t head_dim = 0;
  float scale = 0;         // 1/sqrt(head_dim)
  int64_t chunk_size = 0;  // > 0: key allowed only if floor(kpos/c) == floor(qpos/c)
  // The fast path (attention_fast.h) softmaxes keys in segments of positions
  // [s·segment, (s+1)·segment) and merges them in order (flash-decoding); 0: one segment.
  int64_t segment = 8192;
};

// True when a query at q_pos may attend to a key at k_pos.
inline bool attention_allowed(int64_t q_pos, int64_t k_pos, int64_t chunk_size) {
  if (k_pos > q_pos) return false;
  return chunk_size <= 0 || k_pos / chunk_size == q_pos / chunk_size;
}

// q: [s.n_heads*head_dim]; out: the same. Query head h reads kv head
// kv_head0 + h / (s.n_heads / s.n_kv_heads) of the view, so a caller passes either all heads
// (s.n_kv_heads = the view's, kv_head0 = 0) or one GQA group (s.n_kv_heads = 1, kv_head0 = g).
// Rows are read in row order through kv_load_row (dequantized, per-head scale applied); a row
// counts iff attention_allowed(q_pos, kv.pos(r), s.chunk_size) — kKvEmpty rows never do — and
// other rows are never read (they may hold garbage or NaN). A query with no allowed row gets
// zeros. scratch: at least attention_scratch_floats(kv) floats.
void attention(const AttentionShape& s, const float* q, int64_t q_pos, const KvView& kv,
               int64_t kv_head0, float* out, float* scratch);
size_t attention_scratch_floats(const KvView& kv);

}  // namespace herd
