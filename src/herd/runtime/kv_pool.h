// A pool of fixed-size KV pages of one layer kind (ops/kv_view.h gives their byte layout), with
// reference counts and a prefix index (vLLM's automatic prefix caching, in spirit).
//
// Memory is reserved up front (anonymous mmap: untouched pages cost no RSS), so taking a page in
// a decode step never allocates. A page is in one of three states:
//   free    — on the free list;
//   in use  — referenced by one or more sequences (refs > 0);
//   cached  — unreferenced but indexed by the hash of the tokens that produced it, kept for
//             reuse until the pool needs room (least recently released first).
// A page is indexed only once every one of its slots holds the KV of known tokens, and is never
// written again: sharing needs no copy-on-write, since a sequence only ever writes pages it took
// itself.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "herd/ops/kv_view.h"

namespace herd {

// Identifies a full page by the tokens from position 0 to its end: key_i = H(key_{i-1}, tokens of
// page i). The index also keeps parent key and tokens, so a 64-bit collision can never alias.
struct PageKey {
  uint64_t key = 0;
  uint64_t parent = 0;
};
PageKey page_key(uint64_t parent, std::span<const int32_t> tokens);

class KvPagePool {
 public:
  // n_pages pages of `layout`. growable: take() adds memory when the pool is exhausted (only for
  // single-sequence helpers like runtime/sequence; the scheduler's pools are fixed).
  KvPagePool(const KvPageLayout& layout, int64_t n_pages, bool growable = false);
  ~KvPagePool();
  KvPagePool(const KvPagePool&) = delete;
  KvPagePool& operator=(const KvPagePool&) = delete;

  const KvPageLayout& layout() const { return layout_; }
  int64_t capacity() const { return int64_t(data_.size()); }
  int64_t in_use() const { return in_use_; }
  int64_t cached() const { return n_cached_; }
  int64_t free_pages() const { return int64_t(free_.size()); }
  bool growable() const { return growable_; }
  // Pages take() can still hand out: free and cached ones, unbounded when growable.
  bool can_take(int64_t n) const { return growable_ || free_pages() + cached() >= n; }
  size_t page_bytes() const { return layout_.page_bytes(); }
  // Bytes of the pool's memory the OS holds (pages touched at least once: the pool is reserved
  // up front and touched lazily, so this grows with the most KV ever in use, then stays).
  int64_t resident_bytes() const;

  // A page with refs = 1 and every slot's position kKvEmpty; evicts the least recently released
  // cached page when no page is free. -1 when every page is in use (and the pool cannot grow).
  int32_t take();
  void ref(int32_t id);
  void unref(int32_t id);  // at refs 0: to the cache if indexed, else free
  int32_t refs(int32_t id) const { return meta_[size_t(id)].refs; }

  uint8_t* data(int32_t id) { return data_[size_t(id)]; }
  const uint8_t* data(int32_t id) const { return data_[size_t(id)]; }

  // Indexes a full, never-again-written page under `key` (no-op when the key is taken: the first
  // page stays, the caller keeps its own copy unindexed).
  void publish(int32_t id, const PageKey& key, std::span<const int32_t> tokens);
  // The page indexed under key with exactly these tokens, with a reference taken for the caller;
  // -1 when absent. peek() only tells whether it is there (and whether it is cached, i.e. taking
  // it would move a page back into use).
  int32_t acquire(const PageKey& key, std::span<const int32_t> tokens);
  int32_t peek(const PageKey& key, std::span<const int32_t> tokens) const;
  // The indexed page under `parent` whose tokens share the longest prefix with `tokens` (for a
  // prompt that diverges inside a page: its first rows are copied, never shared). -1 and 0 when
  // none shares even one token.
  int32_t best_child(uint64_t parent, std::span<const int32_t> tokens, int64_t* common) const;
  // The indexed page's key (valid while indexed).
  PageKey key_of(int32_t id) const { return {meta_[size_t(id)].key, meta_[size_t(id)].parent}; }
  std::span<const int32_t> page_tokens(int32_t id) const { return tokens_of(id); }

 private:
  struct Meta {
    int32_t refs = 0;
    bool indexed = false;
    uint64_t key = 0, parent = 0;
    int32_t prev = -1, next = -1;  // neighbours in the cached list, while cached
    bool is_cached = false;
  };
  void add_arena(int64_t n_pages);
  void forget(int32_t id);  // drops the page from the index
  void lru_push(int32_t id);
  void lru_remove(int32_t id);
  std::span<const int32_t> tokens_of(int32_t id) const {
    return {&tokens_[size_t(id) * size_t(layout_.page_rows)], size_t(layout_.page_rows)};
  }

  KvPageLayout layout_;
  bool growable_;
  std::vector<std::pair<void*, size_t>> arenas_;
  std::vector<uint8_t*> data_;
  std::vector<Meta> meta_;
  std::vector<int32_t> free_;
  std::vector<int32_t> tokens_;            // page_rows tokens per page, valid while indexed
  int32_t lru_head_ = -1, lru_tail_ = -1;  // cached pages, least recently released at the head
  int64_t n_cached_ = 0;
  // key -> page. Reserved for every page at construction (publishing allocates a node, once per
  // page_rows tokens at most; the page memory itself is never allocated after start-up).
  std::unordered_map<uint64_t, int32_t> index_;
  std::unordered_multimap<uint64_t, int32_t> children_;  // parent key -> indexed pages
  int64_t in_use_ = 0;
};

}  // namespace herd
