// What the decoder needs from a sequence's KV cache: implemented by runtime/kv_cache (which the
// model layer must not include). The page layout the kernels read is in ops/kv_view.h.
#pragma once

#include <cstdint>

#include "herd/ops/kv_view.h"

namespace herd {

class KvCache {
 public:
  virtual ~KvCache() = default;
  // Stores K/V (post-RoPE, post-QK-norm, f32 rows of kv_dim) of the token at absolute position
  // `pos` in `layer` (the model's layer index), converting to the cache's KvType. All tokens of a
  // forward batch are stored before any of them attends; the cache has room for them (the
  // runtime reserved it before the batch was formed). A prefill calls it from several threads at
  // once, for distinct positions: an implementation writes only that position's slot.
  virtual void store(int layer, int64_t pos, const float* k, const float* v) = 0;
  // The layer's pages as the attention kernels read them (ops/kv_view.h); valid until the next
  // store() or clear().
  virtual KvView view(int layer) const = 0;
};

}  // namespace herd
