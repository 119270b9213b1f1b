#include "herd/runtime/sequence.h"

#include <algorithm>
#include <vector>

namespace herd {

Sequence::Sequence(TextDecoder& decoder, int64_t n_ubatch, KvType kv_type, int64_t page_rows)
    : decoder_(decoder),
      n_ubatch_(std::max<int64_t>(n_ubatch, 1)),
      spec_(KvCacheSpec::make(decoder.config(), kv_type, page_rows, n_ubatch_)) {
  global_ = std::make_unique<KvPagePool>(spec_.global, 16, /*growable=*/true);
  if (spec_.chunked.layers > 0)
    chunked_ = std::make_unique<KvPagePool>(spec_.chunked, spec_.window_pages(), true);
  kv_ = std::make_unique<SequenceKv>(spec_, *global_, chunked_.get(), 0);
}

Status Sequence::append(std::span<const int32_t> tokens, std::span<const int64_t> want, float* out,
                        const TraceFn& trace) {
  const int64_t V = decoder_.vocab_size();
  for (size_t j = 0; j < want.size(); ++j)
    if (want[j] < 0 || want[j] >= int64_t(tokens.size()) || (j > 0 && want[j] <= want[j - 1]))
      return make_error("logits index {} is invalid for {} tokens", want[j], tokens.size());
  KvCache* caches[] = {kv_.get()};
  std::vector<BatchToken> batch;
  size_t w = 0;
  for (int64_t b = 0; b < int64_t(tokens.size()); b += n_ubatch_) {
    const int64_t e = std::min<int64_t>(int64_t(tokens.size()), b + n_ubatch_);
    batch.clear();
    const size_t w0 = w;
    for (int64_t i = b; i < e; ++i) {
      const bool logits = w < want.size() && want[w] == i;
      if (logits) ++w;
      // Positions continue from the tokens already cached.
      batch.push_back(BatchToken{tokens[size_t(i)], kv_->n_past() + (i - b), 0, logits});
    }
    HERD_TRY(kv_->prepare(e - b));
    HERD_TRY(decoder_.forward(batch, caches, out + int64_t(w0) * V, trace));
    kv_->commit(tokens.subspan(size_t(b), size_t(e - b)));
  }
  return Status::ok();
}

Status Sequence::append_last(std::span<const int32_t> tokens, float* out) {
  if (tokens.empty()) return make_error("nothing to evaluate: empty token list");
  const int64_t last = int64_t(tokens.size()) - 1;
  return append(tokens, std::span<const int64_t>(&last, 1), out);
}

}  // namespace herd
