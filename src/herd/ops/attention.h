// Scaled dot-product attention of one query token over cached keys/values, with the causal and
// chunked masks computed from absolute positions (spec §3 step 7).
#pragma once

#include <cstdint>

namespace herd {

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // GQA: query head h uses kv head h / (n_heads / n_kv_heads)
  int64_t head_dim = 0;
  float scale = 0;          // 1/sqrt(head_dim)
  int64_t chunk_size = 0;   // > 0: key allowed only if floor(kpos/c) == floor(qpos/c)
};

// True when a query at q_pos may attend to a key at k_pos.
inline bool attention_allowed(int64_t q_pos, int64_t k_pos, int64_t chunk_size) {
  if (k_pos > q_pos) return false;
  return chunk_size <= 0 || k_pos / chunk_size == q_pos / chunk_size;
}

// q: [n_heads*head_dim]; k, v: n_keys rows of [n_kv_heads*head_dim] (row stride kv_stride
// floats); key_pos[n_keys] absolute positions (any order). Masked keys are skipped.
// out: [n_heads*head_dim]. scratch: at least n_keys floats.
void attention(const AttentionShape& s, const float* q, int64_t q_pos, const float* k,
               const float* v, int64_t kv_stride, const int64_t* key_pos, int64_t n_keys,
               float* out, float* scratch);

}  // namespace herd
