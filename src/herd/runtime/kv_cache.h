// Per-sequence KV cache laid out by layer kind (spec §6): a chunked (RoPE) layer keeps a ring of
// attention_chunk_size + max_batch slots — enough for every query of a batch to see its whole
// chunk while the batch's own keys are written — and a NoPE (global) layer keeps every token.
// Stopgap until the page pool: each layer is ONE f32 page (ops/kv_view.h) of capacity rounded up
// to 16 slots, regrown by copying; a chunked layer's ring order is not ascending by position,
// which the attention kernels do not rely on.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "herd/model/config.h"
#include "herd/model/kv_interface.h"

namespace herd {

class SequenceKvCache final : public KvCache {
 public:
  // max_batch: the most tokens of this sequence one forward() call may hold.
  SequenceKvCache(const Llama4TextConfig& cfg, int64_t max_batch);

  void store(int layer, int64_t pos, const float* k, const float* v) override;
  KvView view(int layer) const override;

  // Forgets everything (the sequence restarts at position 0).
  void clear();
  // Bytes currently allocated for K and V.
  size_t bytes() const;
  // Slots of a chunked layer (0 when the layer keeps everything).
  int64_t ring_capacity(int layer) const { return layers_[size_t(layer)].ring; }

  static constexpr int64_t kEmpty = kKvEmpty;  // masked everywhere

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  struct Layer {
    int64_t ring = 0;  // > 0: ring of this many slots (slot = pos % ring); 0: append
    int64_t n = 0;     // append: rows written
    int64_t cap = 0;   // slots of the page (its page_rows)
    std::unique_ptr<uint8_t, Free> page;
    const uint8_t* page_ptr = nullptr;  // what view().pages points at
  };
  KvPageLayout layout(int64_t page_rows) const;
  void grow(Layer& L, int64_t cap);
  int64_t kv_dim_, n_kv_heads_, head_dim_;
  std::vector<Layer> layers_;
};

}  // namespace herd
