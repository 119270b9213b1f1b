// Parameter counts from the tensor table (works with config.json alone).
#pragma once

#include <cstdint>

#include "herd/model/config.h"

namespace herd {

struct ParamCounts {
  int64_t embedding = 0;  // embed_tokens
  int64_t lm_head = 0;    // 0 when tied to the embedding
  int64_t attention = 0;  // q, k, v, o of all layers
  int64_t norms = 0;      // every RMSNorm gain of the text model
  int64_t routers = 0;
  int64_t routed_experts = 0;
  int64_t shared_experts = 0;
  int64_t dense_ffn = 0;
  int64_t text_total = 0;
  int64_t vision_total = 0;  // vision encoder + adapter + projector
  int64_t total = 0;
  // Weights one token touches: per layer attention + norms + (router + ONE routed expert +
  // shared expert | dense FFN), final norm, lm_head. The embedding row lookup is not counted
  // (Meta's "17B active" excludes it; spec §1.1 gives ≈16.1 B on this rule).
  int64_t active_per_token = 0;
};

ParamCounts count_params(const Llama4Config& cfg);

}  // namespace herd
