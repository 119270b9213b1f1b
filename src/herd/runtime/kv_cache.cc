#include "herd/runtime/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "herd/ops/kv_quant.h"

namespace herd {

KvCacheSpec KvCacheSpec::make(const Llama4TextConfig& cfg, KvType type, int64_t page_rows,
                              int64_t max_slice) {
  KvCacheSpec s;
  const int64_t L = cfg.num_hidden_layers;
  s.chunk = cfg.attention_chunk_size;
  s.max_slice = std::max<int64_t>(max_slice, 1);
  s.chunked_layer.resize(size_t(L));
  s.kind_index.resize(size_t(L));
  int64_t n_global = 0, n_chunked = 0;
  for (int64_t i = 0; i < L; ++i) {
    const bool c = cfg.layer_kind(i).chunked;
    s.chunked_layer[size_t(i)] = c;
    s.kind_index[size_t(i)] = int32_t(c ? n_chunked++ : n_global++);
  }
  KvPageLayout base;
  base.type = type;
  base.page_rows = page_rows;
  base.kv_dim = cfg.kv_dim();
  base.n_kv_heads = cfg.num_key_value_heads;
  base.head_dim = cfg.head_dim;
  s.global = s.chunked = base;
  s.global.layers = n_global;
  s.chunked.layers = n_chunked;
  return s;
}

int64_t KvCacheSpec::window_pages() const {
  if (chunked.layers == 0) return 0;
  return (chunk - 1 + max_slice + page_rows() - 1) / page_rows() + 1;
}

int64_t KvCacheSpec::chunked_pages(int64_t tokens) const {
  if (chunked.layers == 0) return 0;
  return std::min(window_pages(), pages_for(tokens));
}

SequenceKv::SequenceKv(const KvCacheSpec& spec, KvPagePool& global, KvPagePool* chunked,
                       int64_t reserve_tokens)
    : spec_(spec), global_(global), chunked_(spec.chunked.layers > 0 ? chunked : nullptr) {
  const size_t g = size_t(spec.global_pages(reserve_tokens) + 1);
  const size_t c = size_t(spec.window_pages() + 1);
  g_ids_.reserve(g);
  g_ptrs_.reserve(g);
  c_ids_.reserve(c);
  c_ptrs_.reserve(c);
  tokens_.reserve(size_t(reserve_tokens));
  keys_.reserve(g);
}

PrefixMatch SequenceKv::match_prefix(std::span<const int32_t> prompt, int64_t max_tokens) const {
  PrefixMatch m;
  const int64_t P = spec_.page_rows();
  max_tokens = std::min<int64_t>({max_tokens, int64_t(prompt.size()), no_publish_from_});
  uint64_t parent = 0;
  std::vector<int32_t> found;
  std::vector<uint64_t> keys;
  for (int64_t i = 0; (i + 1) * P <= max_tokens; ++i) {
    const auto toks = prompt.subspan(size_t(i * P), size_t(P));
    const PageKey k = page_key(parent, toks);
    const int32_t id = global_.peek(k, toks);
    if (id < 0) break;
    found.push_back(id);
    keys.push_back(k.key);
    parent = k.key;
  }
  // The chunked pages [first, n) of the chain, or false when one is not cached.
  auto chunked_chain = [&](int64_t first, int64_t n, std::vector<int32_t>& out) {
    out.clear();
    for (int64_t i = first; i < n; ++i) {
      const auto toks = prompt.subspan(size_t(i * P), size_t(P));
      const int32_t id = chunked_->peek({keys[size_t(i)], i ? keys[size_t(i - 1)] : 0}, toks);
      if (id < 0) return false;
      out.push_back(id);
    }
    return true;
  };
  auto window_first = [&](int64_t R) {
    return (spec_.chunk > 0 ? R / spec_.chunk * spec_.chunk : 0) / P;
  };
  // Shorten until the chunked window at the reuse point is cached too (at a chunk boundary the
  // window is empty, so this always ends).
  for (int64_t n = int64_t(found.size()); n > 0; --n) {
    const int64_t R = n * P;
    std::vector<int32_t> cids;
    const int64_t first = chunked_ ? window_first(R) : 0;
    if (chunked_ && !chunked_chain(first, n, cids)) continue;
    m.tokens = R;
    m.global_ids.assign(found.begin(), found.begin() + n);
    m.keys.assign(keys.begin(), keys.begin() + n);
    m.chunked_ids = std::move(cids);
    m.chunked_first = first;
    break;
  }
  // Then the rows of a cached page the prompt shares before it diverges.
  const int64_t n = int64_t(m.global_ids.size());
  if (n == int64_t(found.size()) && n * P < max_tokens) {
    const auto rest = prompt.subspan(size_t(n * P), size_t(std::min(P, max_tokens - n * P)));
    int64_t common = 0;
    const int32_t g = global_.best_child(n ? keys[size_t(n - 1)] : 0, rest, &common);
    std::vector<int32_t> cids;
    int32_t c = -1;
    bool ok = g >= 0;
    if (ok && chunked_) {
      const int64_t first = window_first(n * P + common);
      c = chunked_->peek(global_.key_of(g), global_.page_tokens(g));
      ok = c >= 0 && chunked_chain(first, n, cids);
      if (ok) m.chunked_first = first;
    }
    if (ok) {
      if (chunked_) m.chunked_ids = std::move(cids);
      m.partial_global = g;
      m.partial_chunked = c;
      m.partial_rows = common;
      m.tokens = n * P + common;
    }
  }
  // Global pages only: the scheduler checks this against the global pool. Revived chunked pages
  // are part of the sequence's window, which its chunked reservation already covers.
  for (int32_t id : m.global_ids) m.revived += global_.refs(id) == 0;
  return m;
}

void SequenceKv::adopt(const PrefixMatch& m, std::span<const int32_t> prompt) {
  if (n_past_ != 0 || m.tokens == 0) return;
  for (int32_t id : m.global_ids) {
    global_.ref(id);
    g_ids_.push_back(id);
    g_ptrs_.push_back(global_.data(id));
  }
  for (int32_t id : m.chunked_ids) {
    chunked_->ref(id);
    c_ids_.push_back(id);
    c_ptrs_.push_back(chunked_->data(id));
  }
  c_first_ = m.chunked_first;
  // Copy-on-write of the page where the prompt diverges: its first rows, in a page of our own.
  auto copy_rows = [&](KvPagePool& pool, int32_t src, std::vector<int32_t>& ids,
                       std::vector<uint8_t*>& ptrs) {
    pool.ref(src);  // so that taking a page cannot evict the source
    const int32_t id = pool.take();
    std::memcpy(pool.data(id), pool.data(src), pool.page_bytes());
    std::fill_n(reinterpret_cast<int64_t*>(pool.data(id)) + m.partial_rows,
                pool.layout().page_rows - m.partial_rows, kKvEmpty);
    pool.unref(src);
    ids.push_back(id);
    ptrs.push_back(pool.data(id));
  };
  if (m.partial_global >= 0) {
    copy_rows(global_, m.partial_global, g_ids_, g_ptrs_);
    if (chunked_) copy_rows(*chunked_, m.partial_chunked, c_ids_, c_ptrs_);
  }
  keys_ = m.keys;
  tokens_.assign(prompt.begin(), prompt.begin() + m.tokens);
  n_past_ = m.tokens;
}

Status SequenceKv::prepare(int64_t n) {
  const int64_t P = spec_.page_rows();
  const int64_t end_page = spec_.pages_for(n_past_ + n);  // pages [0, end_page) needed
  const int64_t need_g = std::max<int64_t>(0, end_page - int64_t(g_ids_.size()));
  int64_t need_c = 0;
  int64_t first = 0;
  if (chunked_) {
    const int64_t lo = spec_.chunk > 0 ? n_past_ / spec_.chunk * spec_.chunk : 0;
    first = lo / P;
    const int64_t have_end = c_ids_.empty() ? first : c_first_ + int64_t(c_ids_.size());
    need_c = end_page - std::max(first, have_end);
  }
  if (!global_.can_take(need_g))
    return make_error("KV cache full: {} more pages of global-layer KV needed, {} available",
                      need_g, global_.free_pages() + global_.cached());
  if (chunked_) {
    // Release what has left the window first: those pages may serve this very step.
    int64_t drop = 0;
    while (drop < int64_t(c_ids_.size()) && c_first_ + drop < first) ++drop;
    for (int64_t i = 0; i < drop; ++i) chunked_->unref(c_ids_[size_t(i)]);
    c_ids_.erase(c_ids_.begin(), c_ids_.begin() + drop);
    c_ptrs_.erase(c_ptrs_.begin(), c_ptrs_.begin() + drop);
    c_first_ = c_ids_.empty() ? first : c_first_ + drop;
    if (!chunked_->can_take(need_c))
      return make_error("KV cache full: {} more pages of chunked-layer KV needed, {} available",
                        need_c, chunked_->free_pages() + chunked_->cached());
    for (int64_t i = 0; i < need_c; ++i) {
      const int32_t id = chunked_->take();
      c_ids_.push_back(id);
      c_ptrs_.push_back(chunked_->data(id));
    }
  }
  for (int64_t i = 0; i < need_g; ++i) {
    const int32_t id = global_.take();
    g_ids_.push_back(id);
    g_ptrs_.push_back(global_.data(id));
  }
  return Status::ok();
}

void SequenceKv::commit(std::span<const int32_t> tokens) {
  const int64_t P = spec_.page_rows();
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  n_past_ += int64_t(tokens.size());
  // Publish each page that is now full, in order (the chain needs its parent's key).
  for (int64_t i = int64_t(keys_.size()); (i + 1) * P <= n_past_; ++i) {
    if ((i + 1) * P > no_publish_from_) break;
    const auto toks = std::span<const int32_t>(tokens_).subspan(size_t(i * P), size_t(P));
    const PageKey k = page_key(i ? keys_[size_t(i - 1)] : 0, toks);
    keys_.push_back(k.key);
    global_.publish(g_ids_[size_t(i)], k, toks);
    if (chunked_ && i >= c_first_ && i < c_first_ + int64_t(c_ids_.size()))
      chunked_->publish(c_ids_[size_t(i - c_first_)], k, toks);
  }
}

void SequenceKv::release() {
  for (int32_t id : g_ids_) global_.unref(id);
  if (chunked_)
    for (int32_t id : c_ids_) chunked_->unref(id);
  g_ids_.clear();
  g_ptrs_.clear();
  c_ids_.clear();
  c_ptrs_.clear();
  tokens_.clear();
  keys_.clear();
  c_first_ = 0;
  n_past_ = 0;
  no_publish_from_ = INT64_MAX;
}

size_t SequenceKv::bytes() const {
  return g_ids_.size() * spec_.global.page_bytes() +
         (chunked_ ? c_ids_.size() * spec_.chunked.page_bytes() : 0);
}

void SequenceKv::store(int layer, int64_t pos, const float* k, const float* v) {
  const bool c = spec_.chunked_layer[size_t(layer)] && chunked_;
  const KvPageLayout& L = c ? spec_.chunked : spec_.global;
  const int64_t page = pos / L.page_rows, slot = pos % L.page_rows;
  uint8_t* base = c ? c_ptrs_[size_t(page - c_first_)] : g_ptrs_[size_t(page)];
  reinterpret_cast<int64_t*>(base)[slot] = pos;
  const int64_t j = spec_.kind_index[size_t(layer)];
  const size_t eb = kv_type_bytes(L.type), row = size_t(slot * L.kv_dim) * eb;
  float* ks = kv_type_scaled(L.type)
                  ? reinterpret_cast<float*>(base + L.ks_off(j)) + slot * L.n_kv_heads
                  : nullptr;
  float* vs = kv_type_scaled(L.type)
                  ? reinterpret_cast<float*>(base + L.vs_off(j)) + slot * L.n_kv_heads
                  : nullptr;
  kv_store_row(L.type, k, L.n_kv_heads, L.head_dim, base + L.k_row_off(j, slot), ks, kKvKeyBlock);
  kv_store_row(L.type, v, L.n_kv_heads, L.head_dim, base + L.v_off(j) + row, vs);
}

KvView SequenceKv::view(int layer) const {
  const bool c = spec_.chunked_layer[size_t(layer)] && chunked_;
  KvView v;
  v.layout = c ? spec_.chunked : spec_.global;
  const auto& ptrs = c ? c_ptrs_ : g_ptrs_;
  v.pages = ptrs.data();
  v.n_pages = int64_t(ptrs.size());
  v.layer = spec_.kind_index[size_t(layer)];
  return v;
}

}  // namespace herd
