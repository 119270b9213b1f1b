// Text RoPE: interleaved adjacent pairs (complex form), with llama3 frequency scaling (spec §3.4).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace herd {

// llama3 frequency scaling (spec §3.4); absent for Maverick. Config holds one (config.json
// "rope_scaling"); it lives here, beside its only consumer, so ops/ needs nothing from model/.
struct RopeScaling {  // llama3 frequency scaling (spec §3.4); absent for Maverick
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 1.0f;
  int64_t original_max_position_embeddings = 8192;
};

// inv_freq[j] = theta^(-2j/head_dim), j < head_dim/2, then llama3 scaling when given.
std::vector<float> rope_inv_freq(int64_t head_dim, double theta,
                                 const std::optional<RopeScaling>& scaling);
// Rotates pairs (x[2j], x[2j+1]) of every head of x [n_heads, head_dim] by angle pos*inv_freq[j].
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, int64_t pos, const float* inv_freq);
// The same in two steps, so the cos / sin of a position are computed once for every layer and
// head that rotates it: cs[2j] = cos(pos·inv_freq[j]), cs[2j+1] = sin(...), j < half; then
// apply_rope(x, n_heads, head_dim, cs) gives apply_rope(x, ..., pos, inv_freq) bit for bit.
void rope_cos_sin(int64_t pos, const float* inv_freq, int64_t half, float* cs);
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, const float* cs);
// The same with AVX-512 where the active ISA has it: bit for bit apply_rope
// (ops/activation_fast.cc).
void apply_rope_fast(float* x, int64_t n_heads, int64_t head_dim, const float* cs);

// Attention temperature tuning on NoPE layers (spec §3 step 5):
//   s(p) = 1 + attn_scale * ln(1 + floor((p + 1) / floor_scale))
float attn_temperature(int64_t pos, double floor_scale, double attn_scale);

}  // namespace herd
