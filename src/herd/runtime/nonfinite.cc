#include "herd/runtime/nonfinite.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "herd/model/run_weights.h"
#include "herd/model/text.h"
#include "herd/runtime/sequence.h"

namespace herd {

namespace {
// The first non-finite element of x[0..n), or -1. Exponent all ones = NaN or infinity.
int64_t first_nonfinite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &x[i], 4);
    if ((u & 0x7F800000u) == 0x7F800000u) return i;
  }
  return -1;
}
}  // namespace

// Branch-free: per element, (u & exp) + 0x00800000 carries into bit 31 exactly when the
// exponent is all ones; OR-ing those bits over the row is one vector pass at O3 (the release
// build's -O2 does not vectorize this loop). The exact element is found later, off this path.
__attribute__((optimize("O3"))) bool all_finite(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &x[i], 4);
    bad |= (u & 0x7F800000u) + 0x00800000u;
  }
  return (bad & 0x80000000u) == 0;
}

std::string NonFiniteOrigin::message() const {
  if (!found)
    return "on the f32 reference path every activation and the logits are finite: the "
           "non-finite values come from the fast path (try --precision f32)";
  if (name == "logits")
    return fmt::format(
        "the activations are finite through the last layer; the logits (final norm and "
        "lm_head) are first non-finite at position {}, column {}",
        position, column);
  const std::string where =
      layer < 0 ? std::string("the embedding") : fmt::format("layer {}", layer);
  return fmt::format("activations first became non-finite in {}, '{}' (position {}, column {})",
                     where, name, position, column);
}

Result<NonFiniteOrigin> find_nonfinite_origin(const LoadedModel& model, ThreadPool& pool,
                                              std::span<const int32_t> tokens) {
  if (tokens.empty()) return Status::error("find_nonfinite_origin: no tokens");
  if (is_herd_prequantized(model.config))
    return make_error(
        "model {} is pre-quantized ({}): no f32 reference weights to locate the non-finite "
        "values with",
        model.dir, model.run_format);
  TextDecoder decoder(model, pool, Precision::kF32);
  // One micro-batch for the whole sequence, so trace rows are token positions.
  Sequence seq(decoder, int64_t(tokens.size()));
  NonFiniteOrigin origin;
  auto trace = [&](std::string_view name, int layer, const float* data, int64_t rows,
                   int64_t cols) {
    if (origin.found || name == "expert") return;  // expert ids, not activations
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t c = first_nonfinite(data + r * cols, cols);
      if (c < 0) continue;
      origin = {true, layer, std::string(name), r, c};
      return;
    }
  };
  const int64_t last = int64_t(tokens.size()) - 1;
  std::vector<float> logits(size_t(decoder.vocab_size()));
  HERD_TRY(seq.append(tokens, std::span<const int64_t>(&last, 1), logits.data(), trace));
  if (!origin.found) {
    const int64_t c = first_nonfinite(logits.data(), int64_t(logits.size()));
    if (c >= 0) origin = {true, -1, "logits", last, c};
  }
  return origin;
}

}  // namespace herd
