// Bytes of weights, as stored in their run format: what decode has to stream from memory.
#pragma once

#include <cstdint>

#include "herd/model/weights.h"

namespace herd {

// Values plus scales of one weight matrix.
int64_t weight_bytes(const WeightRef& w);
// Weight bytes one decoded token reads: per layer attention + norms + (router + one routed
// expert (the average expert) + shared expert | dense FFN), final norm, lm_head, one embedding
// row, in the run format when the model has one (else as stored). The roofline of decode is this divided by the memory bandwidth.
int64_t decode_bytes_per_token(const LoadedModel& m);

}  // namespace herd
