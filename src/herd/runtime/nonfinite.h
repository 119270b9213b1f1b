// Non-finite logits at run time. all_finite is the cheap check a generation loop makes on each
// logits row; find_nonfinite_origin is the expensive diagnosis it runs only once that check
// fails: the tokens up to and including the bad position are re-run on the f32 reference path
// from an empty cache, with every traced intermediate inspected, and the first (layer,
// intermediate) whose activations hold a NaN or infinity is named.
//
// Cost: all_finite reads the row once (vocab floats: 800 KB for Llama 4's 202048, tens of
// microseconds, under a tenth of a percent of a Scout decode step). The diagnosis costs one
// f32 prefill of the whole sequence plus a pass over every activation, and happens at most
// once, when generation is about to fail anyway.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "herd/base/status.h"
#include "herd/base/thread_pool.h"
#include "herd/model/weights.h"

namespace herd {

// True when none of x[0..n) is NaN or +-Inf.
bool all_finite(const float* x, int64_t n);

struct NonFiniteOrigin {
  bool found = false;    // false: on the f32 path every activation and the logits are finite
  int layer = -1;        // decoder layer; -1 for the embedding and the logits
  std::string name;      // trace name ("embed", "attn_norm", "attn_out", ...) or "logits"
  int64_t position = 0;  // index into `tokens` of the first row holding a non-finite value
  int64_t column = 0;    // its first non-finite column
  // "activations first became non-finite at layer 3, 'ffn_out' (position 5, column 17), ..."
  std::string message() const;
};

// `model` must have the reference weights the f32 path reads (load_model's views of a BF16 /
// F16 / F32 checkpoint; prepare_reference_weights for FP8 experts); a pre-quantized model has
// none, which is an error. `tokens`: the sequence up to and including the position whose logits
// were non-finite.
Result<NonFiniteOrigin> find_nonfinite_origin(const LoadedModel& model, ThreadPool& pool,
                                              std::span<const int32_t> tokens);

}  // namespace herd
