// VisionEncoder: reads like Hugging Face's Llama4VisionModel.forward followed by
// Llama4MultiModalProjector (spec §5.2–5.7): unfold + patch linear → append CLS last → add
// positional embedding → layernorm_pre → L × pre-norm ViT layer (2-D RoPE on q, k) →
// layernorm_post → drop CLS → pixel shuffle → adapter MLP (GELU after both layers) → projector.
#include "herd/model/vision.h"

#include <algorithm>
#include <cmath>

#include "herd/ops/matmul.h"

namespace herd {

namespace {

// Tiles per pass through the layers: enough rows (4 × 577) for the products to run at full
// speed, while the activations of a 17-tile image at the real width (the MLP's 5632 columns)
// stay a few hundred MB instead of a gigabyte.
constexpr int64_t kTilesPerPass = 4;

}  // namespace

void pixel_shuffle_tile(const float* in, int64_t side, int64_t d, float* out) {
  const int64_t half = side / 2;
  for (int64_t i = 0; i < half; ++i)
    for (int64_t j = 0; j < half; ++j) {
      float* dst = out + (i * half + j) * 4 * d;
      const int64_t src[4] = {(2 * i) * side + 2 * j, (2 * i) * side + 2 * j + 1,
                              (2 * i + 1) * side + 2 * j, (2 * i + 1) * side + 2 * j + 1};
      for (int s = 0; s < 4; ++s) std::copy_n(in + src[s] * d, d, dst + s * d);
    }
}

double vision_rope_angle(int64_t n, int64_t j, int64_t side, int64_t head_dim, double theta) {
  if (n >= side * side) return 0.0;  // CLS: identity (HF masks its frequencies to 0)
  // HF: freq_dim = head_dim/2 frequencies theta^(-2k/freq_dim), k < freq_dim/2, each used once
  // for x (first half of the pairs) and once for y (second half).
  const int64_t nf = head_dim / 4;
  const bool is_x = j < nf;
  const int64_t k = is_x ? j : j - nf;
  const double f = std::pow(theta, -2.0 * double(k) / double(head_dim / 2));
  const int64_t coord = is_x ? n % side : n / side;
  return double(coord + 1) * f;
}

Result<std::unique_ptr<VisionEncoder>> VisionEncoder::create(const LoadedModel& model,
                                                             ThreadPool& pool,
                                                             Precision precision) {
  HERD_ASSIGN_OR_RETURN(VisionWeights w, load_vision_weights(model));
  const Llama4VisionConfig& v = *model.config.vision;
  const std::string& dir = model.dir;
  if (v.pixel_shuffle_ratio != 0.5)
    return make_error("model dir {}: vision_config.pixel_shuffle_ratio {} is not supported (0.5)",
                      dir, v.pixel_shuffle_ratio);
  if (v.patch_size <= 0 || v.image_size % v.patch_size != 0 || (v.image_size / v.patch_size) % 2)
    return make_error(
        "model dir {}: vision_config image_size {} is not an even multiple of patch_size {}", dir,
        v.image_size, v.patch_size);
  if (v.num_attention_heads <= 0 || v.hidden_size % v.num_attention_heads != 0 ||
      (v.hidden_size / v.num_attention_heads) % 4 != 0)
    return make_error(
        "model dir {}: vision_config hidden_size {} / num_attention_heads {} must give a head "
        "dim divisible by 4 (2-D RoPE)",
        dir, v.hidden_size, v.num_attention_heads);
  if (w.projector.cols != w.adapter_fc2.rows)
    return make_error(
        "model dir {}: multi_modal_projector.linear_1.weight takes {} inputs but the vision "
        "adapter gives {}",
        dir, w.projector.cols, w.adapter_fc2.rows);
  std::unique_ptr<VisionEncoder> e(new VisionEncoder(model, pool, precision));
  e->w_ = std::move(w);
  return e;
}

VisionEncoder::VisionEncoder(const LoadedModel& model, ThreadPool& pool, Precision precision)
    : cfg_(*model.config.vision), pool_(pool), fast_(precision == Precision::kAuto) {
  side_ = cfg_.image_size / cfg_.patch_size;
  tokens_ = side_ * side_ + 1;
  shuffled_side_ = side_ / 2;
  head_dim_ = cfg_.hidden_size / cfg_.num_attention_heads;
  text_hidden_ = model.config.text.hidden_size;
  const int64_t pairs = head_dim_ / 2;
  cos_.resize(size_t(tokens_ * pairs));
  sin_.resize(cos_.size());
  for (int64_t n = 0; n < tokens_; ++n)
    for (int64_t j = 0; j < pairs; ++j) {
      const double a = vision_rope_angle(n, j, side_, head_dim_, cfg_.rope_theta);
      cos_[size_t(n * pairs + j)] = float(std::cos(a));
      sin_[size_t(n * pairs + j)] = float(std::sin(a));
    }
  head_acts_.resize(size_t(2 * pool_.size()));
  head_buf_.resize(size_t(pool_.size()));
}

void VisionEncoder::linear(const float* x, int64_t n, const WeightRef& w, const float* bias,
                           float* y) {
  // F16 checkpoints have no gemm kernel (the text path converts them at load); the vision
  // weights are used as stored, so those products take the f32 reference.
  if (fast_ && (w.dtype == DType::BF16 || w.dtype == DType::F32)) {
    prepare_acts(x, n, w.cols, w.cols, w.dtype, acts_);
    gemm(pool_, acts_, w, y, w.rows);
  } else {
    matmul(pool_, x, n, w.cols, w, y, w.rows);
  }
  if (!bias) return;
  pool_.parallel_for(size_t(n), 16, [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t)
      for (int64_t o = 0; o < w.rows; ++o) y[int64_t(t) * w.rows + o] += bias[o];
  });
}

void VisionEncoder::layer_norm(const float* x, const std::vector<float>& w,
                               const std::vector<float>& b, float* y, int64_t n) {
  const int64_t d = cfg_.hidden_size;
  const double eps = cfg_.norm_eps;
  pool_.parallel_for(size_t(n), 16, [&](size_t b0, size_t e0, int) {
    for (size_t t = b0; t < e0; ++t) {
      const float* xr = x + int64_t(t) * d;
      float* yr = y + int64_t(t) * d;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < d; ++i) mean += xr[i];
      mean /= double(d);
      for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      const double inv = 1.0 / std::sqrt(var / double(d) + eps);
      for (int64_t i = 0; i < d; ++i)
        yr[i] = float((xr[i] - mean) * inv) * w[size_t(i)] + b[size_t(i)];
    }
  });
}

void VisionEncoder::gelu(float* x, int64_t n) {
  // nn.GELU(): the exact erf form, not the tanh approximation.
  pool_.parallel_for(size_t(n), 4096, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * float(M_SQRT1_2)));
  });
}

void VisionEncoder::rope(float* x, int64_t n_tiles) {
  const int64_t d = cfg_.hidden_size, heads = cfg_.num_attention_heads, pairs = head_dim_ / 2;
  pool_.parallel_for(size_t(n_tiles * tokens_), 16, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const int64_t n = int64_t(r) % tokens_;
      const float* c = &cos_[size_t(n * pairs)];
      const float* s = &sin_[size_t(n * pairs)];
      for (int64_t h = 0; h < heads; ++h) {
        float* p = x + int64_t(r) * d + h * head_dim_;
        for (int64_t j = 0; j < pairs; ++j) {
          const float a = p[2 * j], bb = p[2 * j + 1];
          p[2 * j] = a * c[j] - bb * s[j];
          p[2 * j + 1] = a * s[j] + bb * c[j];
        }
      }
    }
  });
}

// Bidirectional attention within each tile, every head: att_ = softmax(q·kᵀ/√hd)·v.
void VisionEncoder::attention(int64_t n_tiles) {
  const int64_t d = cfg_.hidden_size, heads = cfg_.num_attention_heads, T = tokens_;
  const int64_t hd = head_dim_;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  auto softmax_row = [&](float* s) {
    float mx = -INFINITY;
    for (int64_t k = 0; k < T; ++k) mx = std::max(mx, s[k] *= scale);
    double sum = 0;
    for (int64_t k = 0; k < T; ++k) sum += (s[k] = std::exp(s[k] - mx));
    const float inv = float(1.0 / sum);
    for (int64_t k = 0; k < T; ++k) s[k] *= inv;
  };
  if (!fast_) {
    // Reference: one query row at a time with the f32 dot of ops/matmul.
    pool_.parallel_for(size_t(n_tiles * heads * T), 32, [&](size_t b, size_t e, int th) {
      std::vector<float>& s = head_buf_[size_t(th)];
      s.resize(size_t(T));
      for (size_t item = b; item < e; ++item) {
        const int64_t tile = int64_t(item) / (heads * T), h = int64_t(item) / T % heads;
        const int64_t qi = int64_t(item) % T, base = tile * T;
        const float* q = &q_[size_t((base + qi) * d + h * hd)];
        for (int64_t k = 0; k < T; ++k)
          s[size_t(k)] = dot_f32(q, &k_[size_t((base + k) * d + h * hd)], hd);
        softmax_row(s.data());
        float* o = &att_[size_t((base + qi) * d + h * hd)];
        std::fill_n(o, hd, 0.0f);
        for (int64_t k = 0; k < T; ++k) {
          const float* vr = &v_[size_t((base + k) * d + h * hd)];
          for (int64_t i = 0; i < hd; ++i) o[i] += s[size_t(k)] * vr[i];
        }
      }
    });
    return;
  }
  // Fast: per (tile, head) two f32 products through the gemm kernels on this thread.
  pool_.parallel_for(size_t(n_tiles * heads), 1, [&](size_t b, size_t e, int th) {
    std::vector<float>& buf = head_buf_[size_t(th)];
    buf.resize(size_t(2 * T * hd + T * T));
    float* kh = buf.data();   // [T, hd]
    float* vt = kh + T * hd;  // [hd, T]
    float* s = vt + T * hd;   // [T, T]
    PreparedActs& qa = head_acts_[size_t(2 * th)];
    PreparedActs& pa = head_acts_[size_t(2 * th + 1)];
    for (size_t item = b; item < e; ++item) {
      const int64_t tile = int64_t(item) / heads, h = int64_t(item) % heads, base = tile * T;
      for (int64_t k = 0; k < T; ++k) {
        std::copy_n(&k_[size_t((base + k) * d + h * hd)], hd, kh + k * hd);
        for (int64_t i = 0; i < hd; ++i) vt[i * T + k] = v_[size_t((base + k) * d + h * hd + i)];
      }
      prepare_acts(&q_[size_t(base * d + h * hd)], T, d, hd, DType::F32, qa);
      gemm_serial(qa, WeightRef{DType::F32, kh, T, hd}, s, T);
      for (int64_t r = 0; r < T; ++r) softmax_row(s + r * T);
      prepare_acts(s, T, T, T, DType::F32, pa);
      gemm_serial(pa, WeightRef{DType::F32, vt, hd, T}, &att_[size_t(base * d + h * hd)], d);
    }
  });
}

void VisionEncoder::encoder_layer(const VisionLayerWeights& l, int64_t n_tiles) {
  const int64_t N = n_tiles * tokens_, D = cfg_.hidden_size, F = l.fc1.rows;
  layer_norm(h_.data(), l.ln1_w, l.ln1_b, xn_.data(), N);
  linear(xn_.data(), N, l.wq, l.bq.data(), q_.data());
  linear(xn_.data(), N, l.wk, l.bk.data(), k_.data());
  linear(xn_.data(), N, l.wv, l.bv.data(), v_.data());
  rope(q_.data(), n_tiles);
  rope(k_.data(), n_tiles);
  attention(n_tiles);
  linear(att_.data(), N, l.wo, l.bo.data(), xn_.data());
  for (int64_t i = 0; i < N * D; ++i) h_[size_t(i)] += xn_[size_t(i)];
  layer_norm(h_.data(), l.ln2_w, l.ln2_b, xn_.data(), N);
  linear(xn_.data(), N, l.fc1, l.b1.data(), mlp_.data());
  gelu(mlp_.data(), N * F);
  linear(mlp_.data(), N, l.fc2, l.b2.data(), xn_.data());
  for (int64_t i = 0; i < N * D; ++i) h_[size_t(i)] += xn_[size_t(i)];
}

Status VisionEncoder::encode(const float* pixels, int64_t n_tiles, float* out,
                             const TraceFn& trace) {
  if (n_tiles <= 0) return make_error("vision encoder: {} tiles to encode", n_tiles);
  const int64_t D = cfg_.hidden_size, C = cfg_.num_channels, P = cfg_.patch_size;
  const int64_t S = cfg_.image_size, T = tokens_, np = side_ * side_, K = C * P * P;
  const int64_t F = w_.layers.empty() ? 0 : w_.layers[0].fc1.rows;
  const int64_t per_tile_out = tokens_per_tile() * text_hidden_;
  for (int64_t t0 = 0; t0 < n_tiles; t0 += kTilesPerPass) {
    const int64_t nt = std::min(kTilesPerPass, n_tiles - t0), N = nt * T;
    for (auto* b : {&h_, &xn_, &q_, &k_, &v_, &att_}) b->resize(size_t(N * D));
    mlp_.resize(size_t(N * F));
    // Unfold (spec §5.2): patch (py, px) of tile t, element c·P·P + r·P + q.
    std::vector<float> patches(size_t(nt * np * K));
    const float* px0 = pixels + t0 * C * S * S;
    pool_.parallel_for(size_t(nt * np), 8, [&](size_t b, size_t e, int) {
      for (size_t it = b; it < e; ++it) {
        const int64_t t = int64_t(it) / np, p = int64_t(it) % np, py = p / side_, px = p % side_;
        float* dst = &patches[it * size_t(K)];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t r = 0; r < P; ++r)
            std::copy_n(px0 + ((t * C + c) * S + py * P + r) * S + px * P, P,
                        dst + c * P * P + r * P);
      }
    });
    linear(patches.data(), nt * np, w_.patch, nullptr, att_.data());
    if (trace) trace("patch_embedding", -1, att_.data(), nt * np, D);
    // CLS appended last (token 576), then the positional embedding (row 576 = CLS).
    for (int64_t t = 0; t < nt; ++t) {
      std::copy_n(&att_[size_t(t * np * D)], np * D, &h_[size_t(t * T * D)]);
      std::copy_n(w_.class_emb.data(), D, &h_[size_t((t * T + np) * D)]);
      for (int64_t i = 0; i < T * D; ++i) h_[size_t(t * T * D + i)] += w_.pos_emb[size_t(i)];
    }
    layer_norm(h_.data(), w_.pre_w, w_.pre_b, h_.data(), N);
    if (trace) trace("layernorm_pre", -1, h_.data(), N, D);
    for (size_t j = 0; j < w_.layers.size(); ++j) {
      encoder_layer(w_.layers[j], nt);
      if (trace) trace("layer", int(j), h_.data(), N, D);
    }
    layer_norm(h_.data(), w_.post_w, w_.post_b, xn_.data(), N);
    // Drop CLS, pixel-shuffle each tile: [nt·144, 4D] into q_ (N·D ≥ nt·576·D floats).
    for (int64_t t = 0; t < nt; ++t) {
      std::copy_n(&xn_[size_t(t * T * D)], np * D, &h_[size_t(t * np * D)]);
      pixel_shuffle_tile(&h_[size_t(t * np * D)], side_, D, &q_[size_t(t * np * D)]);
    }
    if (trace) trace("layernorm_post", -1, h_.data(), nt * np, D);
    const int64_t M = nt * tokens_per_tile();
    if (trace) trace("pixel_shuffle", -1, q_.data(), M, 4 * D);
    // Adapter (spec §5.7): GELU after fc1 and after fc2, no biases; then the projector.
    adapt1_.resize(size_t(M * w_.adapter_fc1.rows));
    adapt2_.resize(size_t(M * w_.adapter_fc2.rows));
    linear(q_.data(), M, w_.adapter_fc1, nullptr, adapt1_.data());
    gelu(adapt1_.data(), M * w_.adapter_fc1.rows);
    linear(adapt1_.data(), M, w_.adapter_fc2, nullptr, adapt2_.data());
    gelu(adapt2_.data(), M * w_.adapter_fc2.rows);
    if (trace) trace("adapter", -1, adapt2_.data(), M, w_.adapter_fc2.rows);
    float* y = out + t0 * per_tile_out;
    linear(adapt2_.data(), M, w_.projector, nullptr, y);
    if (trace) trace("projector", -1, y, M, text_hidden_);
  }
  return Status::ok();
}

}  // namespace herd
