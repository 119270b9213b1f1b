#include "herd/runtime/kv_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace herd {

PageKey page_key(uint64_t parent, std::span<const int32_t> tokens) {
  // FNV-1a over the parent key and the token ids, then a splitmix64 finaliser for spread.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](uint64_t x) {
    for (int i = 0; i < 8; ++i, x >>= 8) h = (h ^ (x & 0xff)) * 0x100000001b3ull;
  };
  mix(parent);
  for (int32_t t : tokens) mix(uint64_t(uint32_t(t)));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return {h, parent};
}

KvPagePool::KvPagePool(const KvPageLayout& layout, int64_t n_pages, bool growable)
    : layout_(layout), growable_(growable) {
  index_.reserve(size_t(std::max<int64_t>(n_pages, 1)));
  children_.reserve(size_t(std::max<int64_t>(n_pages, 1)));
  if (n_pages > 0) add_arena(n_pages);
}

KvPagePool::~KvPagePool() {
  for (auto& [p, n] : arenas_) munmap(p, n);
}

void KvPagePool::add_arena(int64_t n_pages) {
  const size_t pb = layout_.page_bytes(), bytes = pb * size_t(n_pages);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  // Pages are touched first by a prefill's KV stores: on 4 KiB pages that is one fault per 4 KiB
  // of KV inside the step (~10% of a pp512 on the bench preset); 2 MiB pages fault 512× less.
  ::madvise(mem, bytes, MADV_HUGEPAGE);  // advice only: ignored where THP is off
  arenas_.push_back({mem, bytes});
  const int32_t first = int32_t(data_.size());
  for (int64_t i = 0; i < n_pages; ++i)
    data_.push_back(static_cast<uint8_t*>(mem) + size_t(i) * pb);
  meta_.resize(data_.size());
  tokens_.resize(data_.size() * size_t(layout_.page_rows));
  // Lowest ids first out of the free list.
  for (int32_t id = int32_t(data_.size()) - 1; id >= first; --id) free_.push_back(id);
}

int64_t KvPagePool::resident_bytes() const {
  const size_t os_page = size_t(sysconf(_SC_PAGESIZE));
  int64_t bytes = 0;
  std::vector<unsigned char> in_core;
  for (const auto& [p, n] : arenas_) {
    in_core.assign((n + os_page - 1) / os_page, 0);
    if (mincore(p, n, in_core.data()) != 0) continue;  // mmap'd by us: cannot fail but ENOMEM
    for (unsigned char c : in_core) bytes += (c & 1) ? int64_t(os_page) : 0;
  }
  return bytes;
}

void KvPagePool::lru_push(int32_t id) {
  Meta& m = meta_[size_t(id)];
  m.prev = lru_tail_;
  m.next = -1;
  if (lru_tail_ >= 0)
    meta_[size_t(lru_tail_)].next = id;
  else
    lru_head_ = id;
  lru_tail_ = id;
  m.is_cached = true;
  ++n_cached_;
}

void KvPagePool::lru_remove(int32_t id) {
  Meta& m = meta_[size_t(id)];
  if (m.prev >= 0)
    meta_[size_t(m.prev)].next = m.next;
  else
    lru_head_ = m.next;
  if (m.next >= 0)
    meta_[size_t(m.next)].prev = m.prev;
  else
    lru_tail_ = m.prev;
  m.prev = m.next = -1;
  m.is_cached = false;
  --n_cached_;
}

void KvPagePool::forget(int32_t id) {
  Meta& m = meta_[size_t(id)];
  if (!m.indexed) return;
  auto it = index_.find(m.key);
  if (it != index_.end() && it->second == id) index_.erase(it);
  auto [b, e] = children_.equal_range(m.parent);
  for (auto c = b; c != e; ++c)
    if (c->second == id) {
      children_.erase(c);
      break;
    }
  m.indexed = false;
}

int32_t KvPagePool::take() {
  int32_t id = -1;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else if (lru_head_ >= 0) {
    id = lru_head_;
    lru_remove(id);
    forget(id);
  } else if (growable_) {
    add_arena(std::max<int64_t>(16, capacity()));
    id = free_.back();
    free_.pop_back();
  } else {
    return -1;
  }
  Meta& m = meta_[size_t(id)];
  m.refs = 1;
  ++in_use_;
  int64_t* pos = reinterpret_cast<int64_t*>(data(id));
  std::fill_n(pos, layout_.page_rows, kKvEmpty);
  return id;
}

void KvPagePool::ref(int32_t id) {
  Meta& m = meta_[size_t(id)];
  if (m.refs++ == 0) {
    if (m.is_cached) lru_remove(id);
    ++in_use_;
  }
}

void KvPagePool::unref(int32_t id) {
  Meta& m = meta_[size_t(id)];
  if (--m.refs > 0) return;
  --in_use_;
  if (m.indexed)
    lru_push(id);
  else
    free_.push_back(id);
}

void KvPagePool::publish(int32_t id, const PageKey& key, std::span<const int32_t> tokens) {
  Meta& m = meta_[size_t(id)];
  if (m.indexed || int64_t(tokens.size()) != layout_.page_rows) return;
  if (index_.count(key.key)) return;
  m.indexed = true;
  m.key = key.key;
  m.parent = key.parent;
  std::copy(tokens.begin(), tokens.end(),
            tokens_.begin() + ptrdiff_t(size_t(id) * size_t(layout_.page_rows)));
  index_.emplace(key.key, id);
  children_.emplace(key.parent, id);
}

int32_t KvPagePool::best_child(uint64_t parent, std::span<const int32_t> tokens,
                               int64_t* common) const {
  int32_t best = -1;
  int64_t best_n = 0;
  auto [b, e] = children_.equal_range(parent);
  for (auto c = b; c != e; ++c) {
    const auto own = tokens_of(c->second);
    int64_t n = 0;
    while (n < int64_t(tokens.size()) && n < int64_t(own.size()) &&
           own[size_t(n)] == tokens[size_t(n)])
      ++n;
    if (n > best_n) best = c->second, best_n = n;
  }
  *common = best_n;
  return best;
}

int32_t KvPagePool::peek(const PageKey& key, std::span<const int32_t> tokens) const {
  auto it = index_.find(key.key);
  if (it == index_.end()) return -1;
  const Meta& m = meta_[size_t(it->second)];
  if (m.parent != key.parent) return -1;
  const auto own = tokens_of(it->second);
  if (tokens.size() != own.size() || !std::equal(own.begin(), own.end(), tokens.begin())) return -1;
  return it->second;
}

int32_t KvPagePool::acquire(const PageKey& key, std::span<const int32_t> tokens) {
  const int32_t id = peek(key, tokens);
  if (id >= 0) ref(id);
  return id;
}

}  // namespace herd
