// Checked safetensors views as the types the forward passes read (weights.cc, vision_weights.cc).
#pragma once

#include <vector>

#include "herd/io/safetensors.h"
#include "herd/ops/weight.h"

namespace herd {

// 2-D tensors map directly. The fused expert tensors [E, in, out] become one [E*in, out] matrix:
// expert e is rows [e*in, (e+1)*in) (load-time reshape, see LayerWeights in weights.h).
WeightRef as_matrix(const TensorView& v);
// f32 copy of a (small) tensor: norm gains, biases, embeddings.
std::vector<float> as_f32(const TensorView& v);

}  // namespace herd
