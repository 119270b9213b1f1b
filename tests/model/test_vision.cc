// Vision encoder pieces whose answer is known by hand (pixel shuffle order, RoPE angles), tile
// independence, and loading a vision_config over a text-only extraction.
#include "herd/model/vision.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "herd/io/safetensors.h"
#include "herd/model/tensor_table.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

TEST(Vision, PixelShuffleOrderIsRowMajorPairs) {
  // g[y][x] holds (y, x, c) encoded; spec §5.6: token i·12+j = [g[2i][2j], g[2i][2j+1],
  // g[2i+1][2j], g[2i+1][2j+1]].
  const int64_t side = 24, d = 3;
  std::vector<float> in(size_t(side * side * d)), out(in.size());
  for (int64_t y = 0; y < side; ++y)
    for (int64_t x = 0; x < side; ++x)
      for (int64_t c = 0; c < d; ++c)
        in[size_t((y * side + x) * d + c)] = float(y * 1000 + x * 10 + c);
  pixel_shuffle_tile(in.data(), side, d, out.data());
  auto at = [&](int64_t token, int64_t col) { return out[size_t(token * 4 * d + col)]; };
  // Token 13 = (i 1, j 1): g[2][2], g[2][3], g[3][2], g[3][3].
  EXPECT_EQ(at(13, 0), 2020.0f);
  EXPECT_EQ(at(13, 2), 2022.0f);
  EXPECT_EQ(at(13, 3), 2030.0f);
  EXPECT_EQ(at(13, 6), 3020.0f);
  EXPECT_EQ(at(13, 9), 3030.0f);
  // Token 1 is the next column pair of the first row pair (not the next row: llama.cpp's order).
  EXPECT_EQ(at(1, 0), 20.0f);
  EXPECT_EQ(at(12, 0), 2000.0f);
  EXPECT_EQ(at(143, 11), 23232.0f);
  // A permutation: every input value appears exactly once.
  std::vector<float> a(in), b(out);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
}

TEST(Vision, RopeAnglesAtRealHeadDim) {
  // Spec §5.4: head dim 88, pairs 0..21 rotate with the column x+1, 22..43 with the row y+1,
  // f_k = 10000^(-k/22); CLS (token 576) not at all.
  const int64_t side = 24, hd = 88;
  const int64_t n = 3 * side + 5;  // row 3, column 5
  EXPECT_DOUBLE_EQ(vision_rope_angle(n, 0, side, hd, 1e4), 6.0);
  EXPECT_DOUBLE_EQ(vision_rope_angle(n, 22, side, hd, 1e4), 4.0);
  EXPECT_NEAR(vision_rope_angle(n, 1, side, hd, 1e4), 6.0 * std::pow(1e4, -1.0 / 22), 1e-12);
  EXPECT_NEAR(vision_rope_angle(n, 43, side, hd, 1e4), 4.0 * std::pow(1e4, -21.0 / 22), 1e-12);
  EXPECT_EQ(vision_rope_angle(576, 0, side, hd, 1e4), 0.0);
  EXPECT_EQ(vision_rope_angle(576, 30, side, hd, 1e4), 0.0);
}

TEST(Vision, SynthRealWidthIsTheReleasedEncoder) {
  SynthOptions o;
  o.vision_width = "real";
  auto cfg = synth_config(o);
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().message();
  const Llama4VisionConfig& v = *cfg->vision;
  EXPECT_EQ(v.hidden_size, 1408);
  EXPECT_EQ(v.num_hidden_layers, 34);
  EXPECT_EQ(v.num_attention_heads, 16);
  EXPECT_EQ(v.intermediate_size, 5632);
  EXPECT_EQ(v.image_size, 336);
  EXPECT_EQ(v.patch_size, 14);
  int64_t params = 0;
  for (const TensorSpec& t : vision_tensor_table(*cfg))
    if (t.name.starts_with("vision_model.")) params += t.numel();
  // With Scout's projector (5120 x 4096): the spec's vision+projector count, 0.872 B (§1.1).
  EXPECT_NEAR(double(params + 5120 * 4096) / 1e9, 0.872, 0.0005) << params;
  o.vision_width = "100";
  EXPECT_FALSE(synth_config(o).is_ok());
  o.vision_width = "176";
  auto mid = synth_config(o);
  ASSERT_TRUE(mid.is_ok());
  EXPECT_EQ(mid->vision->hidden_size / mid->vision->num_attention_heads, 88);
}

// Deterministic pixels in [-1, 1] (different per tile).
std::vector<float> test_pixels(int64_t n_tiles, int64_t seed) {
  std::vector<float> px(size_t(n_tiles * 3 * 336 * 336));
  uint64_t s = 0x9E3779B97F4A7C15ull * uint64_t(seed + 1);
  for (float& x : px) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = float(double(s >> 11) / double(1ull << 53)) * 2.0f - 1.0f;
  }
  return px;
}

TEST(Vision, TilesAreEncodedIndependently) {
  SynthOptions o;
  o.shards = 1;
  auto m = load_model(testutil::synth_dir("m", o));
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ASSERT_TRUE(has_vision_weights(*m));
  ThreadPool pool(2);
  for (Precision p : {Precision::kF32, Precision::kAuto}) {
    auto enc = VisionEncoder::create(*m, pool, p);
    ASSERT_TRUE(enc.is_ok()) << enc.status().message();
    VisionEncoder& e = **enc;
    const int64_t per = e.tokens_per_tile() * e.output_dim();
    EXPECT_EQ(e.tokens_per_tile(), 144);
    // Five tiles (two passes of the encoder) against the last one alone: bitwise equal, since
    // tiles never attend to each other and every product is batch-invariant.
    const std::vector<float> px = test_pixels(5, 1);
    std::vector<float> all(size_t(5 * per)), one(static_cast<size_t>(per));
    ASSERT_TRUE(e.encode(px.data(), 5, all.data()).is_ok());
    ASSERT_TRUE(e.encode(px.data() + 4 * 3 * 336 * 336, 1, one.data()).is_ok());
    EXPECT_TRUE(std::equal(one.begin(), one.end(), all.begin() + 4 * per));
    // Different tiles give different embeddings, all finite.
    EXPECT_FALSE(std::equal(all.begin(), all.begin() + per, all.begin() + per));
    for (float x : all) ASSERT_TRUE(std::isfinite(x));
  }
}

// The multimodal synthetic checkpoint after `edit` changed its tensors.
std::string rewritten(const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  return testutil::rewritten_checkpoint(SynthOptions{}, edit);
}

TEST(Vision, MisShapedVisionTensorIsAnError) {
  // A present vision tensor of the wrong shape is a broken checkpoint, not a text extraction.
  const std::string d = rewritten([](std::vector<TensorToWrite>& ts) {
    for (auto& t : ts)
      if (t.name == "vision_model.model.layers.1.mlp.fc2.bias") t.shape = {16};  // 32 stored
  });
  auto m = load_model(d);
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("'vision_model.model.layers.1.mlp.fc2.bias'"),
            std::string::npos)
      << m.status().message();
  EXPECT_NE(m.status().message().find("expected [32]"), std::string::npos) << m.status().message();
}

// f32 -> IEEE half, round to nearest (enough for weights of magnitude 1e-8 .. 60000).
uint16_t to_f16(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const float a = std::fabs(f);
  if (a < std::ldexp(1.0f, -14))  // subnormal: units of 2^-24
    return uint16_t(sign | uint16_t(std::lrint(std::ldexp(a, 24))));
  int e = 0;
  const float m = std::frexp(a, &e);       // a = m · 2^e, m in [0.5, 1)
  long q = std::lrint(std::ldexp(m, 11));  // 11 significant bits
  if (q == 2048) q = 1024, ++e;
  return uint16_t(sign | uint16_t((e + 14) << 10) | uint16_t(q - 1024));
}

TEST(Vision, F16VisionWeightsGiveTheSameEmbeddings) {
  // The vision weights are used as stored; F16 has no gemm kernel, so the fast path must not
  // hand it one. Every vision matrix converted to F16 (bf16 values are exact in f16 unless tiny).
  std::vector<std::vector<uint16_t>> keep;
  const std::string d = rewritten([&](std::vector<TensorToWrite>& ts) {
    for (auto& t : ts) {
      if (!t.name.starts_with("vision_model.") || t.shape.size() != 2) continue;
      const auto* src = static_cast<const uint16_t*>(t.data);
      int64_t n = 1;
      for (int64_t x : t.shape) n *= x;
      keep.emplace_back(size_t(n));
      for (int64_t i = 0; i < n; ++i) keep.back()[size_t(i)] = to_f16(bf16_to_f32(src[i]));
      t.dtype = DType::F16;
      t.data = keep.back().data();
    }
  });
  auto m16 = load_model(d);
  ASSERT_TRUE(m16.is_ok()) << m16.status().message();
  SynthOptions o;
  auto m = load_model(testutil::synth_dir("bf16", o));
  ASSERT_TRUE(m.is_ok());
  ThreadPool pool(2);
  const std::vector<float> px = test_pixels(1, 3);
  std::vector<std::vector<float>> outs;
  for (const LoadedModel* model : {&*m, &*m16})
    for (Precision p : {Precision::kF32, Precision::kAuto}) {
      auto enc = VisionEncoder::create(*model, pool, p);
      ASSERT_TRUE(enc.is_ok()) << enc.status().message();
      outs.emplace_back(size_t((*enc)->tokens_per_tile() * (*enc)->output_dim()));
      ASSERT_TRUE((*enc)->encode(px.data(), 1, outs.back().data()).is_ok());
    }
  auto max_diff = [](const std::vector<float>& a, const std::vector<float>& b) {
    float w = 0;
    for (size_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(a[i] - b[i]));
    return w;
  };
  EXPECT_LE(max_diff(outs[0], outs[2]), 1e-5f);  // f32 path: BF16 vs F16 weights
  EXPECT_LE(max_diff(outs[0], outs[3]), 0.05f);  // F16 weights through the fast path
  EXPECT_LE(max_diff(outs[0], outs[1]), 0.05f);  // BF16 fast path (bf16 activations)
}

TEST(Vision, TextOnlyExtractionLoadsAsTextModel) {
  // config.json with a vision_config, files without any vision tensor (spec: transformers and
  // llama.cpp users expect such an extraction to load as text).
  const std::string dst = rewritten([](std::vector<TensorToWrite>& ts) {
    std::erase_if(ts, [](const TensorToWrite& t) {
      return t.name.starts_with("vision_model.") || t.name.starts_with("multi_modal_projector.");
    });
  });
  auto m = load_model(dst);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_TRUE(m->config.vision.has_value());
  EXPECT_FALSE(has_vision_weights(*m));
  ThreadPool pool(1);
  auto enc = VisionEncoder::create(*m, pool);
  ASSERT_FALSE(enc.is_ok());
  EXPECT_NE(enc.status().message().find("no vision encoder"), std::string::npos)
      << enc.status().message();
}

}  // namespace
}  // namespace herd
