// One sequence's KV cache by layer kind (spec §6), in pages from shared pools (runtime/kv_pool.h).
//
// NoPE (global) layers keep every token: page i holds positions [i·P, (i+1)·P). Chunked (RoPE)
// layers keep a sliding window of pages: before a forward that adds positions [n, n+s), pages
// wholly below floor(n/c)·c (the first query's chunk start) are released, so a sequence holds at
// most window_pages() chunked pages for ANY slice size s ≤ max_slice (also s > c: every query of
// the slice finds its whole chunk, because the slice's own keys are stored before any attends).
// Bytes held = global pages × global page bytes + chunked pages × chunked page bytes; in tokens,
// NoPE layers × tokens + chunked layers × min(tokens, c + s), each rounded up to whole pages.
//
// Prefix reuse: every page that fills is published in its pool under the hash chain of the tokens
// from position 0 (kv_pool.h). A new sequence adopts the longest chain of cached global pages
// whose chunked window at the reuse point is cached too, so the chunked layers' state there is
// exact; it then evaluates only the rest. Where the prompt diverges inside a cached page, the
// rows before the divergence are copied into a new page of its own (shared pages are never
// written), so reuse is exact to the token.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "herd/base/status.h"
#include "herd/model/config.h"
#include "herd/model/kv_interface.h"
#include "herd/runtime/kv_pool.h"

namespace herd {

struct KvCacheSpec {
  KvPageLayout global;                // layers = NoPE (and unchunked RoPE) layers
  KvPageLayout chunked;               // layers = chunked RoPE layers (0: the model has none)
  int64_t chunk = 0;                  // attention_chunk_size (0: no chunking)
  int64_t max_slice = 0;              // most tokens of one sequence in one forward
  std::vector<int8_t> chunked_layer;  // per model layer: 1 if it lives in the chunked pages
  std::vector<int32_t> kind_index;    // per model layer: its index among the layers of its kind

  static KvCacheSpec make(const Llama4TextConfig& cfg, KvType type, int64_t page_rows,
                          int64_t max_slice);
  int64_t page_rows() const { return global.page_rows; }
  int64_t pages_for(int64_t tokens) const { return (tokens + page_rows() - 1) / page_rows(); }
  // The most chunked pages a sequence ever holds (c − 1 + max_slice positions, any alignment).
  int64_t window_pages() const;
  // Worst-case pages of a sequence that reaches `tokens` tokens.
  int64_t global_pages(int64_t tokens) const { return pages_for(tokens); }
  int64_t chunked_pages(int64_t tokens) const;
};

// What a prompt can reuse from the pools (computed without taking anything).
struct PrefixMatch {
  int64_t tokens = 0;  // positions [0, tokens) come from cached pages
  std::vector<int32_t> global_ids, chunked_ids;
  int64_t chunked_first = 0;   // page index of chunked_ids[0]
  std::vector<uint64_t> keys;  // hash chain of the reused pages
  int64_t revived = 0;         // global pages now cached (refs 0) that adopting takes back
  // Where the prompt diverges inside a cached page, that page's first partial_rows rows are
  // copied into a page of the sequence's own (copy-on-write): -1 when there is none.
  int32_t partial_global = -1, partial_chunked = -1;
  int64_t partial_rows = 0;
};

class SequenceKv final : public KvCache {
 public:
  // chunked may be null when spec.chunked.layers == 0. reserve_tokens sizes the page tables and
  // token list up front so that decode never allocates.
  SequenceKv(const KvCacheSpec& spec, KvPagePool& global, KvPagePool* chunked,
             int64_t reserve_tokens);
  ~SequenceKv() override { release(); }
  SequenceKv(const SequenceKv&) = delete;
  SequenceKv& operator=(const SequenceKv&) = delete;

  // Longest reusable prefix of `prompt` no longer than max_tokens.
  PrefixMatch match_prefix(std::span<const int32_t> prompt, int64_t max_tokens) const;
  // Takes the matched pages; the sequence continues at position m.tokens. Only on an empty cache.
  void adopt(const PrefixMatch& m, std::span<const int32_t> prompt);

  // Makes room for positions [n_past, n_past + n): releases chunked pages below the window and
  // takes new pages. Fails (nothing changed in use) only when a pool has no page left.
  Status prepare(int64_t n);
  // The forward stored positions [n_past, n_past + tokens.size()): advances and publishes every
  // page that filled. Pages at or after `no_publish_from` (a position whose input was an
  // embedding, not its token id) are never published.
  void commit(std::span<const int32_t> tokens);
  void set_no_publish_from(int64_t pos) { no_publish_from_ = pos; }

  void release();  // returns every page (the sequence restarts at position 0)
  int64_t n_past() const { return n_past_; }
  int64_t global_pages_held() const { return int64_t(g_ids_.size()); }
  int64_t chunked_pages_held() const { return int64_t(c_ids_.size()); }
  size_t bytes() const;

  void store(int layer, int64_t pos, const float* k, const float* v) override;
  KvView view(int layer) const override;

 private:
  const KvCacheSpec& spec_;
  KvPagePool& global_;
  KvPagePool* chunked_;
  std::vector<int32_t> g_ids_, c_ids_;
  std::vector<uint8_t*> g_ptrs_, c_ptrs_;
  int64_t c_first_ = 0;  // page index of c_ids_[0]
  std::vector<int32_t> tokens_;
  std::vector<uint64_t> keys_;  // hash chain key of each full page
  int64_t n_past_ = 0;
  int64_t no_publish_from_ = INT64_MAX;
};

}  // namespace herd
