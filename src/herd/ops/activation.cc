// SwiGLU and the top-1 sigmoid router (spec §3.2).
#include "herd/ops/activation.h"

namespace herd {

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

RouterChoice router_top1(const float* logits, int64_t n_experts) {
  // Top-1 by raw logit, first index on ties (torch.topk / argmax order). The weight is the
  // sigmoid of that raw logit — no softmax, no renormalisation (spec §3.2 step 3, §7.2).
  RouterChoice c;
  if (n_experts <= 0) return c;
  for (int64_t e = 1; e < n_experts; ++e)
    if (logits[e] > logits[c.expert]) c.expert = e;
  c.weight = 1.0f / (1.0f + std::exp(-logits[c.expert]));
  return c;
}

}  // namespace herd
