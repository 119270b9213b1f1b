// RMSNorm and the weightless QK-norm (spec §3 steps 2.1 and 2.4, §7.3), computed like
// llama.cpp's ggml_rms_norm: sum of squares in double, mean and scale in f32, then x·scale and
// (for RMSNorm) ·gain as two f32 multiplications. The double sum costs nothing next to the
// matmuls and makes the norm independent of summation order.
#include "herd/ops/norm.h"

#include <cmath>

namespace herd {

namespace {

// 1 / sqrt(mean(x^2) + eps)
float rms_scale(const float* x, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
  const float mean = float(sum / double(n));
  return 1.0f / std::sqrt(mean + eps);
}

}  // namespace

void rms_norm(const float* x, const float* gain, float* out, int64_t n, float eps) {
  if (n <= 0) return;
  const float scale = rms_scale(x, n, eps);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * gain[i];
}

void qk_norm(float* x, int64_t n_heads, int64_t head_dim, float eps) {
  if (head_dim <= 0) return;
  // Mean over head_dim, no learned weight: a head comes out with RMS 1, i.e. L2 norm
  // sqrt(head_dim), not 1 (spec §7.3, META-LOG 78eb422).
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    const float scale = rms_scale(xh, head_dim, eps);
    for (int64_t i = 0; i < head_dim; ++i) xh[i] *= scale;
  }
}

}  // namespace herd
