// The tensor table against names and shapes typed by hand from spec §2.1, and parameter counts
// against the totals of spec §1.1 computed from the per-layer counts of spec §8.
#include "herd/model/tensor_table.h"

#include <gtest/gtest.h>

#include <map>

#include "herd/model/param_count.h"

namespace herd {
namespace {

using Shape = std::vector<int64_t>;

Llama4Config scout_like(int64_t experts, int64_t step, bool vision) {
  Llama4Config c;
  c.architecture = "Llama4ForConditionalGeneration";
  c.multimodal = true;
  auto& t = c.text;
  t.hidden_size = 5120;
  t.num_hidden_layers = 48;
  t.num_attention_heads = 40;
  t.num_key_value_heads = 8;
  t.head_dim = 128;
  t.vocab_size = 202048;
  t.num_local_experts = experts;
  t.intermediate_size = 8192;
  t.intermediate_size_mlp = 16384;
  t.interleave_moe_layer_step = step;
  t.attention_chunk_size = 8192;
  if (vision) {
    Llama4VisionConfig v;  // spec §1.1, identical for Scout and Maverick
    v.hidden_size = 1408;
    v.num_hidden_layers = 34;
    v.num_attention_heads = 16;
    v.intermediate_size = 5632;
    v.image_size = 336;
    v.patch_size = 14;
    v.pixel_shuffle_ratio = 0.5;
    v.projector_input_dim = 4096;
    v.projector_output_dim = 4096;
    v.vision_output_dim = 4096;
    c.vision = v;
  }
  EXPECT_TRUE(finalize_config(c, "test").is_ok());
  return c;
}

std::map<std::string, Shape> table_map(const Llama4Config& c) {
  std::map<std::string, Shape> m;
  for (const auto& s : tensor_table(c)) EXPECT_TRUE(m.emplace(s.name, s.shape).second) << s.name;
  return m;
}

void expect_tensors(const std::map<std::string, Shape>& m,
                    const std::vector<std::pair<std::string, Shape>>& literal) {
  for (const auto& [name, shape] : literal) {
    auto it = m.find(name);
    ASSERT_NE(it, m.end()) << "missing " << name;
    EXPECT_EQ(it->second, shape) << name;
  }
}

const std::string P = "language_model.model.layers.";

std::vector<std::pair<std::string, Shape>> attention_block(int i) {
  const std::string l = P + std::to_string(i) + ".";
  return {{l + "input_layernorm.weight", {5120}},
          {l + "self_attn.q_proj.weight", {5120, 5120}},
          {l + "self_attn.k_proj.weight", {1024, 5120}},
          {l + "self_attn.v_proj.weight", {1024, 5120}},
          {l + "self_attn.o_proj.weight", {5120, 5120}},
          {l + "post_attention_layernorm.weight", {5120}}};
}

std::vector<std::pair<std::string, Shape>> moe_block(int i, int64_t E) {
  const std::string f = P + std::to_string(i) + ".feed_forward.";
  return {{f + "router.weight", {E, 5120}},
          {f + "experts.gate_up_proj", {E, 5120, 16384}},
          {f + "experts.down_proj", {E, 8192, 5120}},
          {f + "shared_expert.gate_proj.weight", {8192, 5120}},
          {f + "shared_expert.up_proj.weight", {8192, 5120}},
          {f + "shared_expert.down_proj.weight", {5120, 8192}}};
}

std::vector<std::pair<std::string, Shape>> dense_block(int i) {
  const std::string f = P + std::to_string(i) + ".feed_forward.";
  return {{f + "gate_proj.weight", {16384, 5120}},
          {f + "up_proj.weight", {16384, 5120}},
          {f + "down_proj.weight", {5120, 16384}}};
}

const std::vector<std::pair<std::string, Shape>> kGlobals = {
    {"language_model.model.embed_tokens.weight", {202048, 5120}},
    {"language_model.model.norm.weight", {5120}},
    {"language_model.lm_head.weight", {202048, 5120}}};

const std::vector<std::pair<std::string, Shape>> kVisionSome = {
    {"vision_model.patch_embedding.linear.weight", {1408, 588}},
    {"vision_model.class_embedding", {1408}},
    {"vision_model.positional_embedding_vlm", {577, 1408}},
    {"vision_model.layernorm_pre.bias", {1408}},
    {"vision_model.layernorm_post.weight", {1408}},
    {"vision_model.model.layers.0.self_attn.q_proj.weight", {1408, 1408}},
    {"vision_model.model.layers.33.self_attn.o_proj.bias", {1408}},
    {"vision_model.model.layers.33.input_layernorm.bias", {1408}},
    {"vision_model.model.layers.12.mlp.fc1.weight", {5632, 1408}},
    {"vision_model.model.layers.12.mlp.fc2.weight", {1408, 5632}},
    {"vision_model.vision_adapter.mlp.fc1.weight", {4096, 5632}},
    {"vision_model.vision_adapter.mlp.fc2.weight", {4096, 4096}},
    {"multi_modal_projector.linear_1.weight", {5120, 4096}}};

TEST(TensorTable, ScoutNamesAndShapes) {
  const auto m = table_map(scout_like(16, 1, true));
  expect_tensors(m, kGlobals);
  expect_tensors(m, kVisionSome);
  for (int i : {0, 1, 3, 47}) {
    expect_tensors(m, attention_block(i));
    expect_tensors(m, moe_block(i, 16));
    EXPECT_EQ(m.count(P + std::to_string(i) + ".feed_forward.gate_proj.weight"), 0u);
  }
  // 579 text tensors (1 + 48·12 + 2) and 554 vision tensors (7 + 34·16 + 3).
  EXPECT_EQ(text_tensor_table(scout_like(16, 1, true)).size(), 579u);
  EXPECT_EQ(vision_tensor_table(scout_like(16, 1, true)).size(), 554u);
  EXPECT_EQ(m.size(), 579u + 554u);
}

TEST(TensorTable, MaverickNamesAndShapes) {
  const auto m = table_map(scout_like(128, 2, true));
  expect_tensors(m, kGlobals);
  for (int i : {0, 1, 3, 46, 47}) {
    expect_tensors(m, attention_block(i));
    if (i % 2) {
      expect_tensors(m, moe_block(i, 128));
    } else {
      expect_tensors(m, dense_block(i));
      EXPECT_EQ(m.count(P + std::to_string(i) + ".feed_forward.router.weight"), 0u);
    }
  }
  EXPECT_EQ(text_tensor_table(scout_like(128, 2, false)).size(), 1u + 24 * 12 + 24 * 9 + 2);
}

TEST(TensorTable, FlatNamesAndTiedEmbeddings) {
  Llama4Config c = scout_like(16, 1, false);
  c.multimodal = false;
  c.text.tie_word_embeddings = true;
  const auto m = table_map(c);
  EXPECT_EQ(m.count("model.embed_tokens.weight"), 1u);
  EXPECT_EQ(m.count("model.layers.0.feed_forward.experts.gate_up_proj"), 1u);
  EXPECT_EQ(m.count("lm_head.weight"), 0u);  // tied: no separate tensor
}

// Spec §8 per-layer counts.
constexpr int64_t kAttn = 62'914'560, kExpert = 125'829'120, kDense = 251'658'240;
constexpr int64_t kH = 5120, kEmbed = 202048 * kH, kNorms = 2 * kH;

TEST(ParamCount, ScoutText) {
  const ParamCounts pc = count_params(scout_like(16, 1, false));
  const int64_t layer = kAttn + 17 * kExpert + kH * 16 + kNorms;
  const int64_t text = 2 * kEmbed + 48 * layer + kH;
  EXPECT_EQ(pc.text_total, text);
  EXPECT_EQ(fmt::format("{:.2f}", double(pc.text_total) / 1e9), "107.77");
  EXPECT_EQ(pc.vision_total, 0);
  // Active: one routed + shared expert per layer, lm_head; no embedding (≈16.1 B, spec §1.1).
  EXPECT_EQ(pc.active_per_token, 48 * (kAttn + 2 * kExpert + kH * 16 + kNorms) + kH + kEmbed);
  EXPECT_EQ(fmt::format("{:.1f}", double(pc.active_per_token) / 1e9), "16.1");
}

TEST(ParamCount, ScoutWithVisionAndMaverickTotal) {
  const ParamCounts s = count_params(scout_like(16, 1, true));
  EXPECT_EQ(fmt::format("{:.3f}", double(s.vision_total) / 1e9), "0.872");
  EXPECT_EQ(fmt::format("{:.2f}", double(s.total) / 1e9), "108.64");
  const ParamCounts m = count_params(scout_like(128, 2, true));
  const int64_t moe = kAttn + 129 * kExpert + kH * 128 + kNorms;
  const int64_t dense = kAttn + kDense + kNorms;
  EXPECT_EQ(m.text_total, 2 * kEmbed + 24 * moe + 24 * dense + kH);
  EXPECT_EQ(m.vision_total, s.vision_total);
  EXPECT_EQ(fmt::format("{:.2f}", double(m.total) / 1e9), "401.58");
  // Maverick's routers are 128 wide: 16.15 B active (Scout's 16.14 B is the spec's "≈16.1").
  EXPECT_EQ(m.active_per_token,
            24 * (kAttn + 2 * kExpert + kH * 128 + kNorms) + 24 * dense + kEmbed + kH);
}

}  // namespace
}  // namespace herd
