#include "herd/model/param_count.h"

#include "herd/model/tensor_table.h"

namespace herd {

ParamCounts count_params(const Llama4Config& cfg) {
  ParamCounts c;
  const int64_t E = cfg.text.num_local_experts;
  for (const TensorSpec& s : tensor_table(cfg)) {
    const int64_t n = s.numel();
    switch (s.role) {
      case TensorRole::kEmbedding:
        c.embedding += n;
        break;
      case TensorRole::kLmHead:
        c.lm_head += n;
        c.active_per_token += n;
        break;
      case TensorRole::kAttnQ:
      case TensorRole::kAttnK:
      case TensorRole::kAttnV:
      case TensorRole::kAttnO:
        c.attention += n;
        c.active_per_token += n;
        break;
      case TensorRole::kAttnNorm:
      case TensorRole::kFfnNorm:
      case TensorRole::kFinalNorm:
        c.norms += n;
        c.active_per_token += n;
        break;
      case TensorRole::kRouter:
        c.routers += n;
        c.active_per_token += n;
        break;
      case TensorRole::kExpertsGateUp:
      case TensorRole::kExpertsDown:
        c.routed_experts += n;
        c.active_per_token += n / E;  // top-1: one expert's slice
        break;
      case TensorRole::kSharedGate:
      case TensorRole::kSharedUp:
      case TensorRole::kSharedDown:
        c.shared_experts += n;
        c.active_per_token += n;
        break;
      case TensorRole::kDenseGate:
      case TensorRole::kDenseUp:
      case TensorRole::kDenseDown:
        c.dense_ffn += n;
        c.active_per_token += n;
        break;
      case TensorRole::kVision:
        c.vision_total += n;
        break;
    }
  }
  c.text_total = c.embedding + c.lm_head + c.attention + c.norms + c.routers + c.routed_experts +
                 c.shared_experts + c.dense_ffn;
  c.total = c.text_total + c.vision_total;
  return c;
}

}  // namespace herd
