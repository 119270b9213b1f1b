// The fast path's attention (--precision auto): the same masks and math as ops/attention.h, for
// many queries of one sequence and one GQA group at a time, with AVX-512 or AVX2 + FMA dot
// products and value accumulation when the active ISA has them (else the reference per query). Keys
// and values are read in place from the paged, typed cache (ops/kv_view.h) and converted to f32 in
// registers.
#pragma once

#include <cstdint>
#include <limits>
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

// Keys of positions [seg·size, (seg+1)·size) (every position when size is 0), found in the
// 16-key blocks [b0, b1) of a view (block b = rows [16b, 16b + 16)).
struct KvSegment {
  int64_t seg = 0, size = 0, b0 = 0, b1 = 0;
  int64_t lo() const { return size > 0 ? seg * size : INT64_MIN; }
  int64_t hi() const { return size > 0 ? seg * size + size - 1 : INT64_MAX; }
};

// Working memory of attention_group_fast, one per thread. It grows to the largest call seen and
// never shrinks, so steady decode allocates nothing.
struct AttentionScratch {
  AlignedBuffer<float> f;            // transposed key blocks, scores, per-query softmax state
  AlignedBuffer<int32_t> i;          // pending key rows, masks, counts
  std::vector<const float*> q_rows;  // query heads scored against one pair of key blocks
  std::vector<float*> s_rows;        // where their scores go
  std::vector<float> ref;            // scratch of the reference fallback
  std::vector<KvSegment> segments;   // of the call
  AlignedBuffer<float> parts;        // one segment's partial and the running fold
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
// came from. AVX-512 or AVX2 when active_isa() has it (attention_tiled.cc,
// attention_tiled_avx2.cc: the same steps, so each is batch invariant, but not bitwise the same as
// the other); otherwise attention() per query (also batch-invariant). scratch: one per thread.
//
// Rounding: with a bf16 cache, head_dim % 32 == 0 and AVX512_BF16 (active_isa() >= avx512vnni),
// the AVX-512 path multiplies in bf16 pairs (vdpbf16ps, attention_tiled_pairs.h): each query is
// rounded to bf16 once, and each step's probabilities too (l sums the rounded ones).
// attention_bf16_products says when; tests/ops/test_attention_fast.cc bounds the difference.
//
// Long KV (flash-decoding): keys are taken in segments of s.segment POSITIONS, each giving a
// partial softmax (max m, sum l, unnormalized output o per query head) that is folded into the
// result in segment order. Segments are fixed by position, not by batch, paging or thread
// count, so batch invariance holds as stated; a caller may compute the partials of one call in
// parallel (attention_group_partial per segment) and fold them in order (attention_fold, then
// attention_finish) for the same bits. Chunked layers whose chunk divides s.segment never split.
void attention_group_fast(const AttentionShape& s, int64_t g, const AttentionQueries& qs,
                          const KvView& kv, AttentionScratch& scratch);

// The partial-softmax path exists on this ISA for this view (else attention_group_fast falls
// back to the reference and the functions below must not be called).
bool attention_partials_supported(const KvView& kv);
// attention_group_fast rounds queries and probabilities to bf16 for this view (see Rounding).
bool attention_bf16_products(const KvView& kv);
// The segments of `kv` holding positions in [min_pos, max_pos], in order; segments without such
// a key are left out (a query at q attends to [attention_min_key(s, q), q] at most).
void kv_segments(const KvView& kv, int64_t segment, int64_t min_pos, int64_t max_pos,
                 std::vector<KvSegment>& out);
inline int64_t attention_min_key(const AttentionShape& s, int64_t q_pos) {
  return s.chunk_size > 0 ? q_pos / s.chunk_size * s.chunk_size : INT64_MIN;
}
// Partial of the queries over one segment for GQA group g: `part` gets qs.n × G rows (G query
// heads of the group) of head_dim + 2 floats: m, l, o[head_dim]. m = -inf: no allowed key.
void attention_group_partial(const AttentionShape& s, int64_t g, const AttentionQueries& qs,
                             const KvView& kv, const KvSegment& seg, float* part,
                             AttentionScratch& scratch);
// The partials of the groups [g0, g1) in one pass over the segment's keys (every head's part of
// each K and V row read together, in address order): group g's go to
// part + (g - g0) * part_stride, bitwise what attention_group_partial gives for g alone.
// How many kv heads attention_groups_partial should take per pass over this view: as many as
// make 256 contiguous bytes of each K and V row (two bf16 heads of 64, which bench_kernels
// AttentionDecodeLong measures 1.2x faster per key than one), and one head of 256 bytes or more
// (Scout's 128), whose blocks would no longer stay in L1 between their prefetch and their use.
int64_t attention_heads_per_pass(const KvView& kv);
void attention_groups_partial(const AttentionShape& s, int64_t g0, int64_t g1,
                              const AttentionQueries& qs, const KvView& kv, const KvSegment& seg,
                              float* part, int64_t part_stride, AttentionScratch& scratch);
// acc (rows of head_dim + 2 floats) starts empty; each partial is folded in, in segment order;
// finish writes the normalized outputs of group g (zeros where no key was allowed).
void attention_fold_init(int64_t rows, int64_t head_dim, float* acc);
void attention_fold(int64_t rows, int64_t head_dim, const float* part, float* acc);
void attention_finish(const AttentionShape& s, int64_t g, const float* acc,
                      const AttentionQueries& qs);

}  // namespace herd
