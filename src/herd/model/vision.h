// The Llama 4 vision encoder (spec §5.2–5.7; Hugging Face Llama4VisionModel +
// Llama4MultiModalProjector are the reference): normalised pixel tiles [n_tiles, 3, 336, 336] in,
// one text-width embedding per <|patch|> token out (144 per tile). Tiles are independent (no
// attention between them), so a batch of tiles is one batch of rows for every linear layer.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "herd/base/status.h"
#include "herd/base/thread_pool.h"
#include "herd/model/text.h"
#include "herd/model/weights.h"
#include "herd/ops/gemm.h"

namespace herd {

struct VisionLayerWeights {
  std::vector<float> ln1_w, ln1_b;  // input_layernorm
  WeightRef wq, wk, wv, wo;         // [D, D]
  std::vector<float> bq, bk, bv, bo;
  std::vector<float> ln2_w, ln2_b;  // post_attention_layernorm
  WeightRef fc1, fc2;               // [F, D], [D, F]
  std::vector<float> b1, b2;
};

// Views into the mmap'd checkpoint (matrices) and f32 copies (vectors, small).
struct VisionWeights {
  WeightRef patch;                    // [D, C·P·P], Unfold order c·P·P + row·P + col
  std::vector<float> class_emb;       // [D]
  std::vector<float> pos_emb;         // [patches + 1, D], last row = CLS
  std::vector<float> pre_w, pre_b;    // layernorm_pre
  std::vector<float> post_w, post_b;  // layernorm_post
  std::vector<VisionLayerWeights> layers;
  WeightRef adapter_fc1;  // [projector_input_dim, D/ratio²]
  WeightRef adapter_fc2;  // [projector_output_dim, projector_input_dim]
  WeightRef projector;    // [text hidden, vision_output_dim]
};

// True when the model has a vision_config and its files the vision tensors (load_model accepts
// all or none; none with a vision_config is a text-only extraction, loaded with a warning).
bool has_vision_weights(const LoadedModel& model);

// Views the vision tensors (has_vision_weights); load_model has already checked their
// presence, shapes and dtypes.
Result<VisionWeights> load_vision_weights(const LoadedModel& model);

// Pixel shuffle of one tile (spec §5.6): `in` is the side×side grid of width-d tokens (row-major),
// `out` (side/2)² tokens of width 4d, token i·(side/2)+j = [g[2i][2j], g[2i][2j+1], g[2i+1][2j],
// g[2i+1][2j+1]]. Only ratio 0.5 exists in Llama 4 (checked by VisionEncoder::create).
void pixel_shuffle_tile(const float* in, int64_t side, int64_t d, float* out);

// Rotation angle of pair j of patch token n under the vision 2-D RoPE (spec §5.4); the CLS token
// (n == side²) gets 0. n_pairs = head_dim / 2, the first half rotates with the column, the second
// with the row.
double vision_rope_angle(int64_t n, int64_t j, int64_t side, int64_t head_dim, double theta);

class VisionEncoder {
 public:
  // kF32: f32 activations through ops/matmul (the reference the golden test checks); kAuto: the
  // SIMD kernels of ops/gemm (activations rounded to bf16 for bf16 weights).
  static Result<std::unique_ptr<VisionEncoder>> create(const LoadedModel& model, ThreadPool& pool,
                                                       Precision precision = Precision::kF32);

  int64_t tile_size() const { return cfg_.image_size; }
  int64_t tokens_per_tile() const { return shuffled_side_ * shuffled_side_; }  // 144
  int64_t output_dim() const { return text_hidden_; }                          // text hidden

  // pixels: [n_tiles, C, S, S] normalised floats; out: [n_tiles · tokens_per_tile, output_dim].
  // The trace sees "patch_embedding" [n·576, D], "layernorm_pre" [n·577, D], "layer" (index j)
  // [n·577, D] after each encoder layer, "layernorm_post" [n·576, D] (CLS dropped),
  // "pixel_shuffle" [n·144, 4D], "adapter" [n·144, projector_output_dim] and "projector".
  Status encode(const float* pixels, int64_t n_tiles, float* out, const TraceFn& trace = nullptr);

 private:
  VisionEncoder(const LoadedModel& model, ThreadPool& pool, Precision precision);
  void linear(const float* x, int64_t n, const WeightRef& w, const float* bias, float* y);
  void layer_norm(const float* x, const std::vector<float>& w, const std::vector<float>& b,
                  float* y, int64_t n);
  void gelu(float* x, int64_t n);
  void rope(float* x, int64_t n_tiles);
  void attention(int64_t n_tiles);
  void encoder_layer(const VisionLayerWeights& l, int64_t n_tiles);

  Llama4VisionConfig cfg_;
  ThreadPool& pool_;
  bool fast_;
  VisionWeights w_;
  int64_t side_ = 0, tokens_ = 0, shuffled_side_ = 0, head_dim_ = 0, text_hidden_ = 0;
  std::vector<float> cos_, sin_;  // [tokens_, head_dim/2]
  PreparedActs acts_;
  std::vector<PreparedActs> head_acts_;       // per thread (fast attention)
  std::vector<std::vector<float>> head_buf_;  // per thread scratch
  std::vector<float> h_, xn_, q_, k_, v_, att_, mlp_, adapt1_, adapt2_;
};

}  // namespace herd
