// What the decoder needs from a sequence's KV cache. The cache knows the layer kinds: chunked
// (RoPE) layers keep only the keys a query of the current chunk can see; NoPE layers keep all.
// Implemented by runtime/kv_cache (which the model layer must not include).
#pragma once

#include <cstdint>

#include "herd/ops/kv_view.h"

namespace herd {

class KvCache {
 public:
  virtual ~KvCache() = default;
  // Stores K/V (post-RoPE, post-QK-norm) of the token at absolute position `pos` in `layer`.
  // All tokens of a forward batch are stored before any of them attends.
  virtual void store(int layer, int64_t pos, const float* k, const float* v) = 0;
  // The layer's pages as the attention kernels read them (ops/kv_view.h); valid until the next
  // store() or clear().
  virtual KvView view(int layer) const = 0;
};

}  // namespace herd
