// Text RoPE (spec §3.4): frequencies with llama3 scaling, interleaved-pair rotation, and the
// NoPE-layer attention temperature (spec §3 step 5).
#include "herd/ops/rope.h"

#include <cmath>
#include <numbers>

namespace herd {

std::vector<float> rope_inv_freq(int64_t head_dim, double theta,
                                 const std::optional<RopeScaling>& scaling) {
  // Computed in double and rounded once to f32, so inv_freq[j] is the f32 nearest to the exact
  // value (spec §8 lists them); llama.cpp's GGUF rope_freqs factors are also computed in double.
  std::vector<float> out(size_t(head_dim / 2));
  for (int64_t j = 0; j < head_dim / 2; ++j) {
    double f = std::pow(theta, -2.0 * double(j) / double(head_dim));
    if (scaling) {
      // llama3 (HF `_compute_llama3_parameters`): keep short wavelengths, divide long ones by
      // factor, blend linearly in 1/wavelength between the two (empty band when
      // low_freq_factor == high_freq_factor, as in Scout's 16/1/1).
      const RopeScaling& s = *scaling;
      const double l0 = double(s.original_max_position_embeddings);
      const double low_wavelen = l0 / s.low_freq_factor;
      const double high_wavelen = l0 / s.high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_wavelen && s.high_freq_factor != s.low_freq_factor) {
        const double smooth =
            (l0 / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
    out[size_t(j)] = float(f);
  }
  return out;
}

void rope_cos_sin(int64_t pos, const float* inv_freq, int64_t half, float* cs) {
  // The angle is formed in f32 (float(pos) is exact below 2^24) and cos/sin taken in f32, as
  // llama.cpp does.
  const float p = float(pos);
  for (int64_t j = 0; j < half; ++j) {
    const float angle = p * inv_freq[j];
    cs[2 * j] = std::cos(angle);
    cs[2 * j + 1] = std::sin(angle);
  }
}

void apply_rope(float* x, int64_t n_heads, int64_t head_dim, const float* cs) {
  // Pairs are adjacent elements (GPT-J / ggml NORM style, spec §3.4, §7.1).
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t j = 0; j < head_dim / 2; ++j) {
      const float c = cs[2 * j], s = cs[2 * j + 1];
      const float a = xh[2 * j], b = xh[2 * j + 1];
      xh[2 * j] = a * c - b * s;
      xh[2 * j + 1] = a * s + b * c;
    }
  }
}

void apply_rope(float* x, int64_t n_heads, int64_t head_dim, int64_t pos, const float* inv_freq) {
  std::vector<float> cs(size_t(head_dim / 2 * 2));
  rope_cos_sin(pos, inv_freq, head_dim / 2, cs.data());
  apply_rope(x, n_heads, head_dim, cs.data());
}

float attn_temperature(int64_t pos, double floor_scale, double attn_scale) {
  // Absolute position + 1, natural log; exactly 1 for pos <= floor_scale - 2 (spec §3 step 5,
  // §7.4). Double inside, one rounding to f32 (llama.cpp's llm_graph_input_attn_temp likewise).
  return float(1.0 + attn_scale * std::log(1.0 + std::floor(double(pos + 1) / floor_scale)));
}

}  // namespace herd
