// The fast path's attention (--precision auto): the same masks and math as ops/attention.h,
// with AVX-512 dot products and value accumulation when the active ISA has them (else the
// reference). Each query's result depends only on that query and the cached keys/values, so it
// is batch-invariant like the reference; it differs from the reference in rounding (FMA, lane
// order), within the tolerance tests/ops/test_attention_fast.cc states.
#pragma once

#include <cstdint>
#include <vector>

#include "herd/ops/attention.h"
#include "herd/ops/gemm.h"

namespace herd {

// One query token, all heads (same arguments as attention()).
void attention_fast(const AttentionShape& s, const float* q, int64_t q_pos, const float* k,
                    const float* v, int64_t kv_stride, const int64_t* key_pos, int64_t n_keys,
                    float* out, float* scratch);

// n query tokens of ONE sequence (a prefill block, or the one decode token).
struct AttentionQueries {
  const float* q = nullptr;      // row t: every query head of token t, [n_heads*head_dim]
  int64_t q_stride = 0;          // floats between rows of q
  const int64_t* pos = nullptr;  // absolute position of each query token
  int64_t n = 0;
  float* out = nullptr;    // same layout as q; only the heads of the called group are written
  int64_t out_stride = 0;  // floats between rows of out
};

// Working memory of attention_group_fast, one per thread. It grows to the largest call seen and
// never shrinks, so steady decode allocates nothing.
struct AttentionScratch {
  AlignedBuffer<float> f;            // transposed key blocks, scores, per-query softmax state
  AlignedBuffer<int32_t> i;          // pending key rows, masks, counts
  std::vector<const float*> q_rows;  // query heads scored against one pair of key blocks
  std::vector<float*> s_rows;        // where their scores go
  std::vector<float> ref;            // scores of the reference fallback
};

// Attention of the queries `qs` for the query heads of GQA group g (the heads that read kv head
// g) over n_keys cached rows: k, v hold n_keys rows of [n_kv_heads*head_dim] floats, row stride
// kv_stride; key_pos[j] is row j's absolute position, in any order (a chunked layer's ring).
// Row j counts for query t iff attention_allowed(qs.pos[t], key_pos[j], s.chunk_size); other
// rows are never read into an accumulator (they may hold stale data or NaN). A query with no
// allowed row gets zeros, like attention().
//
// Batch invariance: each query's result is a function of that query and the ordered list of its
// allowed rows only. It is bitwise the same for any n, any position of the query among the
// queries, and any number or placement of masked rows (n_keys differs between prefill and decode
// for the same token). Rounding differs from attention() (online softmax over blocks of 16 allowed
// keys, FMA chains, polynomial exp) within the tolerance tests/ops/test_attention_fast.cc states.
// AVX-512 when active_isa() has it; otherwise attention() per query (also batch-invariant).
void attention_group_fast(const AttentionShape& s, int64_t g, const AttentionQueries& qs,
                          const float* k, const float* v, int64_t kv_stride, const int64_t* key_pos,
                          int64_t n_keys, AttentionScratch& scratch);

}  // namespace herd
