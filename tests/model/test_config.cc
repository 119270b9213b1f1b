// config.json parsing: spelling variants (spec §1.4), derived layer facts (§1.2), errors.
#include "herd/model/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace herd {
namespace {

using json = nlohmann::json;

// Scout's text_config as released (CFGDUMP values, corrected rope scaling).
json scout_text() {
  return json{{"hidden_size", 5120},
              {"num_hidden_layers", 48},
              {"num_attention_heads", 40},
              {"num_key_value_heads", 8},
              {"head_dim", 128},
              {"vocab_size", 202048},
              {"num_local_experts", 16},
              {"num_experts_per_tok", 1},
              {"intermediate_size", 8192},
              {"intermediate_size_mlp", 16384},
              {"interleave_moe_layer_step", 1},
              {"attention_chunk_size", 8192},
              {"rope_theta", 500000.0},
              {"rope_scaling",
               {{"rope_type", "llama3"},
                {"factor", 16.0},
                {"low_freq_factor", 1.0},
                {"high_freq_factor", 1.0},
                {"original_max_position_embeddings", 8192}}},
              {"use_qk_norm", true},
              {"attn_temperature_tuning", 4},
              {"floor_scale", 8192},
              {"attn_scale", 0.1},
              {"rms_norm_eps", 1e-5},
              {"bos_token_id", 200000},
              {"eos_token_id", {200001, 200007, 200008}},
              {"pad_token_id", 200018},
              {"model_type", "llama4_text"}};
}

json nested(const json& text) {
  return json{{"architectures", {"Llama4ForConditionalGeneration"}},
              {"model_type", "llama4"},
              {"text_config", text},
              {"image_token_index", 200092},
              {"torch_dtype", "bfloat16"}};
}

Llama4Config parse_ok(const json& j) {
  auto r = parse_config(j.dump(), "config.json");
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? *r : Llama4Config{};
}

std::string parse_err(const json& j) {
  auto r = parse_config(j.dump(), "config.json");
  EXPECT_FALSE(r.is_ok());
  return r.is_ok() ? "" : r.status().message();
}

TEST(Config, NestedScout) {
  Llama4Config c = parse_ok(nested(scout_text()));
  EXPECT_TRUE(c.multimodal);
  EXPECT_EQ(c.text_prefix(), "language_model.");
  EXPECT_EQ(c.text.hidden_size, 5120);
  EXPECT_EQ(c.text.eos_token_id, (std::vector<int64_t>{200001, 200007, 200008}));
  ASSERT_TRUE(c.text.rope_scaling.has_value());
  EXPECT_FLOAT_EQ(c.text.rope_scaling->factor, 16.0f);
  EXPECT_TRUE(c.text.attn_temperature_tuning);  // integer 4 is truthy
  EXPECT_EQ(c.image_token_index, 200092);
  // Derived (spec §1.2): every layer MoE; NoPE 3, 7, ..., 47; qk-norm only on RoPE layers.
  for (int i = 0; i < 48; ++i) {
    const LayerKind& k = c.text.layer_kind(i);
    EXPECT_TRUE(k.moe) << i;
    EXPECT_EQ(k.rope, (i + 1) % 4 != 0) << i;
    EXPECT_EQ(k.chunked, k.rope) << i;
    EXPECT_EQ(k.qk_norm, k.rope) << i;
    EXPECT_EQ(k.temp_tuning, !k.rope) << i;
  }
}

TEST(Config, FlatTextOnly) {
  json t = scout_text();
  t["architectures"] = {"Llama4ForCausalLM"};
  Llama4Config c = parse_ok(t);
  EXPECT_FALSE(c.multimodal);
  EXPECT_EQ(c.text_prefix(), "");
  EXPECT_EQ(c.text.num_hidden_layers, 48);
  // model_type alone is enough.
  t.erase("architectures");
  EXPECT_EQ(parse_ok(t).architecture, "Llama4ForCausalLM");
}

TEST(Config, RopeParametersAndDtypeSpellings) {
  json t = scout_text();
  t.erase("rope_scaling");
  t.erase("rope_theta");
  t["rope_parameters"] = {{"rope_type", "llama3"},   {"rope_theta", 250000.0},
                          {"factor", 8.0},           {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  json j = nested(t);
  j.erase("torch_dtype");
  j["dtype"] = "float16";
  Llama4Config c = parse_ok(j);
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 250000.0);
  EXPECT_FLOAT_EQ(c.text.rope_scaling->factor, 8.0f);
  EXPECT_EQ(c.torch_dtype, "float16");
  // rope_parameters with rope_type "default" = unscaled.
  t["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  EXPECT_FALSE(parse_ok(nested(t)).text.rope_scaling.has_value());
}

TEST(Config, TemperatureTuningSpellings) {
  json t = scout_text();
  t["attn_temperature_tuning"] = false;
  EXPECT_FALSE(parse_ok(nested(t)).text.attn_temperature_tuning);
  t["attn_temperature_tuning"] = 0;
  EXPECT_FALSE(parse_ok(nested(t)).text.attn_temperature_tuning);
  t.erase("attn_temperature_tuning");  // HF default: on
  EXPECT_TRUE(parse_ok(nested(t)).text.attn_temperature_tuning);
}

TEST(Config, MaverickDerivation) {
  json t = scout_text();
  t["num_local_experts"] = 128;
  t["interleave_moe_layer_step"] = 2;
  t["use_qk_norm"] = false;
  t["rope_scaling"] = nullptr;
  Llama4Config c = parse_ok(nested(t));  // moe_layers / no_rope_layers absent: derived
  EXPECT_FALSE(c.text.rope_scaling.has_value());
  for (int i = 0; i < 48; ++i) {
    EXPECT_EQ(c.text.layer_kind(i).moe, i % 2 == 1) << i;
    EXPECT_EQ(c.text.layer_kind(i).rope, (i + 1) % 4 != 0) << i;
    EXPECT_FALSE(c.text.layer_kind(i).qk_norm);
  }
  // Every NoPE layer of Maverick is MoE; layer 0 is dense (spec §1.2).
  for (int i = 3; i < 48; i += 4) EXPECT_TRUE(c.text.layer_kind(i).moe);
  EXPECT_FALSE(c.text.layer_kind(0).moe);
  // Explicit lists win over the derivation.
  t["moe_layers"] = {0, 5};
  std::vector<int> nr(48, 1);
  nr[0] = 0;
  t["no_rope_layers"] = nr;
  c = parse_ok(nested(t));
  EXPECT_TRUE(c.text.layer_kind(0).moe && !c.text.layer_kind(0).rope);
  EXPECT_FALSE(c.text.layer_kind(1).moe);
  EXPECT_TRUE(c.text.layer_kind(3).rope);
}

TEST(Config, LayerTypes) {
  json t = scout_text();
  std::vector<std::string> types(48, "chunked_attention");
  types[5] = "full_attention";
  t["layer_types"] = types;
  Llama4Config c = parse_ok(nested(t));
  EXPECT_FALSE(c.text.layer_kind(5).rope);
  EXPECT_TRUE(c.text.layer_kind(3).rope);
}

TEST(Config, Errors) {
  json j = nested(scout_text());
  j["architectures"] = {"LlamaForCausalLM"};
  std::string e = parse_err(j);
  EXPECT_NE(e.find("unsupported architecture 'LlamaForCausalLM'"), std::string::npos) << e;
  EXPECT_NE(e.find("config.json"), std::string::npos);

  json t = scout_text();
  t.erase("hidden_size");
  e = parse_err(nested(t));
  EXPECT_NE(e.find("'hidden_size'"), std::string::npos) << e;
  EXPECT_NE(e.find("text_config"), std::string::npos) << e;

  t = scout_text();
  t["num_key_value_heads"] = "eight";
  e = parse_err(nested(t));
  EXPECT_NE(e.find("'num_key_value_heads'"), std::string::npos) << e;

  e = parse_err(json::array());
  EXPECT_NE(e.find("config.json"), std::string::npos);
  auto r = parse_config("{not json", "x/config.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("x/config.json"), std::string::npos);
}

TEST(Config, MissingConfigFile) {
  const std::string missing = ::testing::TempDir() + "/herd_no_such_model_dir";
  auto r = load_config(missing);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "model directory " + missing + " does not exist");
  const std::string empty = ::testing::TempDir() + "/herd_empty_model_dir";
  std::filesystem::create_directories(empty);
  r = load_config(empty);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), empty + ": no config.json in the model directory");
}

TEST(Config, JsonRoundTrip) {
  Llama4Config a = parse_ok(nested(scout_text()));
  auto b = parse_config(config_to_json(a), "round-trip");
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(b->text.hidden_size, a.text.hidden_size);
  EXPECT_EQ(b->text.eos_token_id, a.text.eos_token_id);
  EXPECT_EQ(b->multimodal, a.multimodal);
  for (int i = 0; i < 48; ++i) EXPECT_EQ(b->text.layer_kind(i).rope, a.text.layer_kind(i).rope);
}

}  // namespace
}  // namespace herd
