// One sequence's decoding state: its KV cache and position. Prefill is split into micro-batches
// of at most n_ubatch tokens (the cache's chunk ring is sized for that).
#pragma once

#include <cstdint>
#include <span>

#include "herd/model/text.h"
#include "herd/runtime/kv_cache.h"

namespace herd {

class Sequence {
 public:
  Sequence(TextDecoder& decoder, int64_t n_ubatch = 512);

  // Appends tokens at the next positions. For each i in `want` (indices into `tokens`,
  // ascending) one vocab-size row of logits is written to `out`, in order.
  Status append(std::span<const int32_t> tokens, std::span<const int64_t> want, float* out,
                const TraceFn& trace = nullptr);
  // Appends tokens and writes the logits of the last one (the usual prefill/decode step).
  Status append_last(std::span<const int32_t> tokens, float* out);

  int64_t n_past() const { return n_past_; }
  TextDecoder& decoder() { return decoder_; }
  void reset();
  const SequenceKvCache& cache() const { return cache_; }

 private:
  TextDecoder& decoder_;
  int64_t n_ubatch_;
  SequenceKvCache cache_;
  int64_t n_past_ = 0;
};

}  // namespace herd
