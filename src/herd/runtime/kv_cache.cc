#include "herd/runtime/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace herd {

SequenceKvCache::SequenceKvCache(const Llama4TextConfig& cfg, int64_t max_batch)
    : kv_dim_(cfg.kv_dim()) {
  layers_.resize(size_t(cfg.num_hidden_layers));
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const LayerKind& kind = cfg.layer_kind(i);
    // A query at p needs keys back to floor(p/c)*c >= p-c+1; the batch writes up to p+max_batch-1.
    if (kind.chunked) layers_[size_t(i)].ring = cfg.attention_chunk_size + std::max<int64_t>(max_batch, 1);
  }
}

void SequenceKvCache::store(int layer, int64_t pos, const float* k, const float* v) {
  Layer& L = layers_[size_t(layer)];
  int64_t slot;
  if (L.ring > 0) {
    slot = pos % L.ring;
    if (slot >= L.n) {
      // Grow lazily up to the ring size so short sequences stay small.
      const int64_t n = std::min(L.ring, std::max(slot + 1, 2 * L.n));
      L.k.resize(size_t(n * kv_dim_));
      L.v.resize(size_t(n * kv_dim_));
      L.pos.resize(size_t(n), kEmpty);
      L.n = n;
    }
  } else {
    slot = L.n;
    if (int64_t(L.pos.size()) <= slot) {
      const size_t cap = std::max<size_t>(64, L.pos.size() * 2);
      L.k.resize(cap * size_t(kv_dim_));
      L.v.resize(cap * size_t(kv_dim_));
      L.pos.resize(cap, kEmpty);
    }
    ++L.n;
  }
  std::memcpy(&L.k[size_t(slot * kv_dim_)], k, size_t(kv_dim_) * sizeof(float));
  std::memcpy(&L.v[size_t(slot * kv_dim_)], v, size_t(kv_dim_) * sizeof(float));
  L.pos[size_t(slot)] = pos;
}

KvView SequenceKvCache::view(int layer) const {
  const Layer& L = layers_[size_t(layer)];
  return KvView{L.k.data(), L.v.data(), L.pos.data(), L.n, kv_dim_};
}

void SequenceKvCache::clear() {
  for (Layer& L : layers_) {
    L.n = 0;
    L.k.clear();
    L.v.clear();
    L.pos.clear();
  }
}

size_t SequenceKvCache::bytes() const {
  size_t b = 0;
  for (const Layer& L : layers_) b += (L.k.capacity() + L.v.capacity()) * sizeof(float);
  return b;
}

}  // namespace herd
