// One sequence on its own pages: the simplest way to run the decoder (tests, `herd quality`, the
// non-finite diagnosis). Prefill is split into micro-batches of at most n_ubatch tokens. The
// scheduler (runtime/scheduler.h) drives many sequences over shared pools with the same pieces.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "herd/model/text.h"
#include "herd/runtime/kv_cache.h"

namespace herd {

class Sequence {
 public:
  // kv_type: how K/V are stored (f32 keeps the reference exact). page_rows: a multiple of 16.
  explicit Sequence(TextDecoder& decoder, int64_t n_ubatch = 512, KvType kv_type = KvType::kF32,
                    int64_t page_rows = 32);

  // Appends tokens at the next positions. For each i in `want` (indices into `tokens`,
  // ascending) one vocab-size row of logits is written to `out`, in order.
  Status append(std::span<const int32_t> tokens, std::span<const int64_t> want, float* out,
                const TraceFn& trace = nullptr);
  // Appends tokens and writes the logits of the last one (the usual prefill/decode step).
  Status append_last(std::span<const int32_t> tokens, float* out);

  int64_t n_past() const { return kv_->n_past(); }
  TextDecoder& decoder() { return decoder_; }
  void reset() { kv_->release(); }
  const SequenceKv& cache() const { return *kv_; }
  const KvCacheSpec& spec() const { return spec_; }

 private:
  TextDecoder& decoder_;
  int64_t n_ubatch_;
  KvCacheSpec spec_;
  std::unique_ptr<KvPagePool> global_, chunked_;  // private, growable
  std::unique_ptr<SequenceKv> kv_;
};

}  // namespace herd
