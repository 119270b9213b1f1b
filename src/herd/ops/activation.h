// SiLU / SwiGLU and the Llama 4 top-1 sigmoid router (spec §3.2).
#pragma once

#include <cmath>
#include <cstdint>

namespace herd {

inline float silu(float x) {
  return x / (1.0f + std::exp(-x));
}
// out[i] = silu(gate[i]) * up[i]  (out may alias gate or up)
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// The fast path's SwiGLU: AVX-512 with a polynomial exp (ops/exp_avx512.h, ~2 ulp) when the
// active ISA has it, else swiglu. Element-wise, so batch-invariant.
void swiglu_fast(const float* gate, const float* up, float* out, int64_t n);

struct RouterChoice {
  int64_t expert = 0;  // argmax of the router logits (first on ties)
  float weight = 0;    // sigmoid(logit[expert]): scales the expert's INPUT, not its output
};
RouterChoice router_top1(const float* logits, int64_t n_experts);

}  // namespace herd
