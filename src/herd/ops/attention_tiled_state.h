// What the fast attention's kernels (attention_tiled.cc for AVX-512, attention_tiled_avx2.cc for
// AVX2) share: the block geometry, the per-call State and the prefetch. Internal to ops/.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "herd/ops/attention_fast.h"
#include "herd/ops/kv_view.h"

namespace herd::attention_detail {

constexpr int64_t kBlock = 16;  // keys per block: the lanes of one score vector
// Decode-sized calls (few queries, so little work per key block) prefetch K and V this many
// blocks past the pair in hand; a prefill call works long enough on each block not to need it.
constexpr int64_t kPrefetchAhead = 3, kPrefetchMaxQueries = 4;
// The most GQA groups one pass over a segment's keys takes (attention_groups_partial).
constexpr int64_t kMaxGroups = 8;

template <KvType T>
constexpr int64_t kBytes = T == KvType::kF32    ? 4
                           : T == KvType::kBF16 ? 2
                                                : 1;
template <KvType T>
constexpr bool kScaled = T == KvType::kInt8 || T == KvType::kFp8E4M3;

// Calls tile(std::integral_constant<int, R>{}, r) for the row tiles of [0, rows): kR rows each,
// then one of the rest (fewer than kR), so every kernel sees its tile shape at compile time.
template <int kR, class Tile>
inline void row_tiles(int64_t rows, Tile&& tile) {
  int64_t r = 0;
  for (; r + kR <= rows; r += kR) tile(std::integral_constant<int, kR>{}, r);
  const int64_t rest = rows - r;
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((rest == I + 1 ? (tile(std::integral_constant<int, I + 1>{}, r), 0) : 0), ...);
  }
  (std::make_integer_sequence<int, kR - 1>{});
}

// Asks for the first `bytes` of 16 rows `stride` bytes apart, into L1 (kL1) or L2. An asm
// statement, because GCC 12's dead-code elimination drops __builtin_prefetch (_mm_prefetch) here
// once inlined into the groups kernel (seen in the object code; -fno-tree-dce keeps it).
template <bool kL1>
inline void prefetch_rows(const uint8_t* p, int64_t stride, int64_t bytes) {
  for (int64_t j = 0; j < kBlock; ++j)
    for (int64_t o = 0; o < bytes; o += 64) {
      if constexpr (kL1)
        asm volatile("prefetcht0 %0" : : "m"(p[j * stride + o]));
      else
        asm volatile("prefetcht1 %0" : : "m"(p[j * stride + o]));
    }
}

// The same for `bytes` contiguous bytes at p (a key block, stored [head_dim][16]).
template <bool kL1>
inline void prefetch_span(const uint8_t* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) {
    if constexpr (kL1)
      asm volatile("prefetcht0 %0" : : "m"(p[o]));
    else
      asm volatile("prefetcht1 %0" : : "m"(p[o]));
  }
}

// Scratch carved for one call. Per query head (row t*G + h): softmax state m, l (the running sum
// kept as 16 lanes, lane j summing the j-th key of every step, reduced once at the end), o, and
// the compacted scores waiting for a step. Per query: the pending rows' key indices and count.
struct State {
  const KvView* kv;
  int64_t g, G, hd, hdp;
  float* kt;                // [2][hdp*16] transposed key blocks
  float* s;                 // [n*G][32] scores of the current block pair
  float* pend;              // [n*G][32] pending scores (allowed lanes only, in key order)
  float* o;                 // [n*G][hdp]
  float* l;                 // [n*G][16]
  float* m;                 // [n*G]
  float* p;                 // [G][16] probabilities of one step
  float* alpha;             // [G] rescale of one step
  int32_t* pidx;            // [n][32] pending key rows
  int32_t* cnt;             // [n]
  int32_t* mask;            // [2][n] allowed lanes of the block pair
  int32_t* step_idx;        // [16]
  const uint8_t* vrow[16];  // V of kv head g of the rows of one step, and their scales
  float vscale[16];
  // find_v_rows' last key block: its number, and where its first row's V (head g) and V scales
  // are.
  int64_t v_block = -1;
  const uint8_t* v_base = nullptr;
  const float* vs_base = nullptr;
};

// Fills st.vrow / st.vscale for the rows idx[0..cnt) of one softmax step. A page lookup (a
// division by page_rows) per key was a visible part of a prefill's attention, where every query
// walks the same blocks; rows of one block of 16 are consecutive slots of one page
// (page_rows % 16 == 0), so the lookup is done once per block, and kept across steps and
// queries.
template <KvType T>
inline void find_v_rows(State& st, const int32_t* idx, int cnt) {
  const KvView& kv = *st.kv;
  const int64_t v_stride = kv.layout.kv_dim * kBytes<T>, n_kv = kv.layout.n_kv_heads;
  // A whole block (a prefill's usual step): one lookup, then rows v_stride apart.
  if (cnt == kKvKeyBlock && idx[0] % kKvKeyBlock == 0 && idx[cnt - 1] == idx[0] + cnt - 1) {
    const int64_t b = idx[0] / kKvKeyBlock;
    if (b != st.v_block) {
      st.v_block = b;
      st.v_base = static_cast<const uint8_t*>(kv.v_row(b * kKvKeyBlock)) + st.g * st.hd * kBytes<T>;
      if constexpr (kScaled<T>) st.vs_base = kv.v_scales(b * kKvKeyBlock) + st.g;
    }
    for (int j = 0; j < cnt; ++j) {
      st.vrow[j] = st.v_base + j * v_stride;
      if constexpr (kScaled<T>) st.vscale[j] = st.vs_base[j * n_kv];
    }
    return;
  }
  for (int j = 0; j < cnt; ++j) {
    const uint64_t r = uint32_t(idx[j]);  // rows are non-negative
    const int64_t b = int64_t(r / kKvKeyBlock), i = int64_t(r % kKvKeyBlock);
    if (b != st.v_block) {
      st.v_block = b;
      st.v_base = static_cast<const uint8_t*>(kv.v_row(b * kKvKeyBlock)) + st.g * st.hd * kBytes<T>;
      if constexpr (kScaled<T>) st.vs_base = kv.v_scales(b * kKvKeyBlock) + st.g;
    }
    st.vrow[j] = st.v_base + i * v_stride;
    if constexpr (kScaled<T>) st.vscale[j] = st.vs_base[i * n_kv];
  }
}

// attention_groups_partial's kernel on AVX2 + FMA (attention_tiled_avx2.cc): the groups
// [g0, g1), g1 - g0 <= kMaxGroups, of one segment.
void groups_partial_avx2(const AttentionShape& s, int64_t g0, int64_t g1,
                         const AttentionQueries& qs, const KvView& kv, const KvSegment& seg,
                         float* part, int64_t part_stride, AttentionScratch& scratch);

}  // namespace herd::attention_detail
