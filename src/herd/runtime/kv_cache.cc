#include "herd/runtime/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace herd {

SequenceKvCache::SequenceKvCache(const Llama4TextConfig& cfg, int64_t max_batch)
    : kv_dim_(cfg.kv_dim()), n_kv_heads_(cfg.num_key_value_heads), head_dim_(cfg.head_dim) {
  layers_.resize(size_t(cfg.num_hidden_layers));
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const LayerKind& kind = cfg.layer_kind(i);
    // A query at p needs keys back to floor(p/c)*c >= p-c+1; the batch writes up to p+max_batch-1.
    if (kind.chunked)
      layers_[size_t(i)].ring = cfg.attention_chunk_size + std::max<int64_t>(max_batch, 1);
  }
}

KvPageLayout SequenceKvCache::layout(int64_t page_rows) const {
  KvPageLayout l;
  l.type = KvType::kF32;
  l.page_rows = page_rows;
  l.kv_dim = kv_dim_;
  l.n_kv_heads = n_kv_heads_;
  l.head_dim = head_dim_;
  l.layers = 1;
  return l;
}

// Reallocates L's page with `cap` slots (a multiple of 16), keeping the slots it had.
void SequenceKvCache::grow(Layer& L, int64_t cap) {
  const KvPageLayout nl = layout(cap), ol = layout(L.cap);
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, nl.page_bytes()));
  std::memset(p, 0, nl.page_bytes());
  auto* pos = reinterpret_cast<int64_t*>(p);
  std::fill_n(pos, cap, kKvEmpty);
  if (L.page) {
    const uint8_t* o = L.page.get();
    std::memcpy(pos, o, size_t(L.cap) * sizeof(int64_t));
    const size_t rows = size_t(L.cap * kv_dim_) * sizeof(float);
    std::memcpy(p + nl.k_off(0), o + ol.k_off(0), rows);
    std::memcpy(p + nl.v_off(0), o + ol.v_off(0), rows);
  }
  L.page.reset(p);
  L.page_ptr = p;
  L.cap = cap;
}

void SequenceKvCache::store(int layer, int64_t pos, const float* k, const float* v) {
  Layer& L = layers_[size_t(layer)];
  auto round16 = [](int64_t x) { return (x + 15) / 16 * 16; };
  int64_t slot;
  if (L.ring > 0) {
    slot = pos % L.ring;
    // Grow lazily up to the ring size so short sequences stay small.
    if (slot >= L.cap) grow(L, std::min(round16(L.ring), std::max(round16(slot + 1), 2 * L.cap)));
  } else {
    slot = L.n++;
    if (slot >= L.cap) grow(L, std::max<int64_t>(64, 2 * L.cap));
  }
  const KvPageLayout l = layout(L.cap);
  uint8_t* p = L.page.get();
  const size_t row = size_t(kv_dim_) * sizeof(float);
  std::memcpy(p + l.k_off(0) + size_t(slot) * row, k, row);
  std::memcpy(p + l.v_off(0) + size_t(slot) * row, v, row);
  reinterpret_cast<int64_t*>(p)[slot] = pos;
}

KvView SequenceKvCache::view(int layer) const {
  const Layer& L = layers_[size_t(layer)];
  KvView v;
  v.layout = layout(L.cap);
  v.pages = &L.page_ptr;
  v.n_pages = L.page ? 1 : 0;
  v.layer = 0;
  return v;
}

void SequenceKvCache::clear() {
  for (Layer& L : layers_) {
    L.n = L.cap = 0;
    L.page.reset();
    L.page_ptr = nullptr;
  }
}

size_t SequenceKvCache::bytes() const {
  size_t b = 0;
  for (const Layer& L : layers_)
    if (L.page) b += 2 * layout(L.cap).kv_bytes();
  return b;
}

}  // namespace herd
