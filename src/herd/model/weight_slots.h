// The one map from a tensor-table entry (role + layer) to the TextWeights field that holds it.
// Loading (safetensors, FP8, pre-quantized), pre-quantized saving, prepare_run_weights and
// weight_bytes all walk the tensor table and reach their fields through these, so a new role is
// one line here.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "herd/model/tensor_table.h"
#include "herd/model/weights.h"
#include "herd/quant/quantize.h"

namespace herd {

// The matrix field of `tw` (TextWeights, const or not) for a role; nullptr for norms and vision.
template <typename TW>
auto* weight_slot(TW& tw, TensorRole role, int layer) {
  using Ref = std::conditional_t<std::is_const_v<TW>, const WeightRef, WeightRef>;
  auto L = [&]() -> auto& {
    return tw.layers[size_t(layer)];
  };
  switch (role) {
    case TensorRole::kEmbedding:
      return &tw.embed;
    case TensorRole::kAttnQ:
      return &L().wq;
    case TensorRole::kAttnK:
      return &L().wk;
    case TensorRole::kAttnV:
      return &L().wv;
    case TensorRole::kAttnO:
      return &L().wo;
    case TensorRole::kRouter:
      return &L().router;
    case TensorRole::kExpertsGateUp:
      return &L().experts_gate_up;
    case TensorRole::kExpertsDown:
      return &L().experts_down;
    case TensorRole::kSharedGate:
      return &L().shared_gate;
    case TensorRole::kSharedUp:
      return &L().shared_up;
    case TensorRole::kSharedDown:
      return &L().shared_down;
    case TensorRole::kDenseGate:
      return &L().dense_gate;
    case TensorRole::kDenseUp:
      return &L().dense_up;
    case TensorRole::kDenseDown:
      return &L().dense_down;
    case TensorRole::kLmHead:
      return &tw.lm_head;
    default:
      return static_cast<Ref*>(nullptr);
  }
}

// The f32 norm-gain field of `tw` for a role; nullptr for matrices and vision.
template <typename TW>
auto* norm_slot(TW& tw, TensorRole role, int layer) {
  using Vec = std::conditional_t<std::is_const_v<TW>, const std::vector<float>, std::vector<float>>;
  switch (role) {
    case TensorRole::kAttnNorm:
      return &tw.layers[size_t(layer)].attn_norm;
    case TensorRole::kFfnNorm:
      return &tw.layers[size_t(layer)].ffn_norm;
    case TensorRole::kFinalNorm:
      return &tw.final_norm;
    default:
      return static_cast<Vec*>(nullptr);
  }
}

template <typename TW>
auto* weight_slot(TW& tw, const TensorSpec& s) {
  return weight_slot(tw, s.role, s.layer);
}
template <typename TW>
auto* norm_slot(TW& tw, const TensorSpec& s) {
  return norm_slot(tw, s.role, s.layer);
}

// An nn.Linear weight: a matrix slot other than the embedding (which is only looked up).
inline bool is_linear(TensorRole r) {
  switch (r) {
    case TensorRole::kEmbedding:
    case TensorRole::kAttnNorm:
    case TensorRole::kFfnNorm:
    case TensorRole::kFinalNorm:
    case TensorRole::kVision:
      return false;
    default:
      return true;
  }
}

// What a matrix role is to the quantization policy (quant/quantize.h run_dtype).
inline WeightClass weight_class(TensorRole r) {
  switch (r) {
    case TensorRole::kEmbedding:
      return WeightClass::kEmbedding;
    case TensorRole::kRouter:
      return WeightClass::kRouter;
    case TensorRole::kExpertsGateUp:
    case TensorRole::kExpertsDown:
      return WeightClass::kExpert;
    case TensorRole::kSharedGate:
    case TensorRole::kSharedUp:
    case TensorRole::kSharedDown:
      return WeightClass::kShared;
    case TensorRole::kDenseGate:
    case TensorRole::kDenseUp:
    case TensorRole::kDenseDown:
      return WeightClass::kDense;
    case TensorRole::kLmHead:
      return WeightClass::kLmHead;
    default:
      return WeightClass::kAttention;
  }
}

}  // namespace herd
