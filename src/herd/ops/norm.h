// RMSNorm and the weightless QK-norm (spec §3 step 1 and 4).
#pragma once

#include <cstdint>

namespace herd {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * gain[i]   (in place allowed)
void rms_norm(const float* x, const float* gain, float* out, int64_t n, float eps);
// The fast path's RMSNorm: the same f32 squares summed in double, 8 lanes then a fixed tree
// (so not bitwise rms_norm's sequential sum), and the same two multiplications per element.
void rms_norm_fast(const float* x, const float* gain, float* out, int64_t n, float eps);
// Weightless RMS norm of each head of x [n_heads, head_dim] (in place). Not an L2 normalisation
// to unit length (spec §7.3): the mean is over head_dim.
void qk_norm(float* x, int64_t n_heads, int64_t head_dim, float eps);
// The fast path's QK-norm: each head's sum as rms_norm_fast's (8 double lanes, fixed tree).
void qk_norm_fast(float* x, int64_t n_heads, int64_t head_dim, float eps);

}  // namespace herd
