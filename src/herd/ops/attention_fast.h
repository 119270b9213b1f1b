// The fast path's attention (--precision auto): the same masks and math as ops/attention.h, for
// many queries of one sequence and one GQA group at a time, with AVX-512 dot products and value
// accumulation when the active ISA has them (else the reference per query). Keys and values are
// read in place from the paged, typed cache (ops/kv_view.h) and converted to f32 in registers.
#pragma once

#include <cstdint>
#include <vector>

#include "herd/ops/attention.h"
#include "herd/ops/gemm.h"
#include "herd/ops/kv_view.h"

namespace herd {

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
  std::vector<float> ref;            // scratch of the reference fallback
};

// Attention of the queries `qs` for the query heads of GQA group g (the heads that read kv head
// g) over the rows of `kv` (ops/kv_view.h). Row r counts for query t iff
// attention_allowed(qs.pos[t], kv.pos(r), s.chunk_size); kKvEmpty rows never do. Rows that do
// not count are never read into an accumulator (they may hold stale data or NaN, scales too).
// A query with no allowed row gets zeros, like attention().
//
// K and V are read in their stored type (KvType) and dequantized in registers to exactly the
// f32 values kv_load_row gives (code * the row's scale for head g), so the only difference from
// attention() is rounding: online softmax over steps of 16 allowed keys, FMA chains in another
// order, a polynomial exp — within the tolerance tests/ops/test_attention_fast.cc states.
//
// Batch invariance: each query's result is a function of that query and the ordered list of its
// allowed rows (their positions and stored bytes) only. It is bitwise the same for any n, any
// position of the query among the queries, and any number or placement of masked rows or pages
// (n_pages differs between prefill and decode for the same token, and between sequences), so
// prefill and decode agree bitwise. Keys go in blocks of 16 slots of one page (page_rows is a
// multiple of 16); a query steps its softmax on exactly 16 allowed keys at a time, wherever they
// came from. AVX-512 when active_isa() has it; otherwise attention() per query (also
// batch-invariant). scratch: one per thread.
void attention_group_fast(const AttentionShape& s, int64_t g, const AttentionQueries& qs,
                          const KvView& kv, AttentionScratch& scratch);

}  // namespace herd
