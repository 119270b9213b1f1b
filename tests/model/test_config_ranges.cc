// config.json range checks (model/config_ranges.cc): every numeric field refuses bad values
// with an error naming the file, the field and the value as written.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "herd/model/config.h"

namespace herd {
namespace {

using json = nlohmann::json;

json text() {
  return json{{"hidden_size", 64},
              {"num_hidden_layers", 4},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"head_dim", 16},
              {"vocab_size", 300},
              {"num_local_experts", 4},
              {"intermediate_size", 64},
              {"intermediate_size_mlp", 128},
              {"attention_chunk_size", 32},
              {"max_position_embeddings", 1024},
              {"rope_theta", 500000.0},
              {"rms_norm_eps", 1e-5},
              {"rope_scaling",
               {{"rope_type", "llama3"},
                {"factor", 16.0},
                {"low_freq_factor", 1.0},
                {"high_freq_factor", 1.0},
                {"original_max_position_embeddings", 8192}}},
              {"bos_token_id", 1},
              {"eos_token_id", {2, 3}},
              {"pad_token_id", 0}};
}

json vision() {
  return json{{"hidden_size", 32},          {"num_hidden_layers", 1},
              {"num_attention_heads", 2},   {"intermediate_size", 64},
              {"image_size", 336},          {"patch_size", 14},
              {"pixel_shuffle_ratio", 0.5}, {"projector_input_dim", 64},
              {"projector_output_dim", 64}, {"vision_output_dim", 64}};
}

json nested() {
  return json{{"architectures", {"Llama4ForConditionalGeneration"}},
              {"text_config", text()},
              {"vision_config", vision()},
              {"image_token_index", 10}};
}

// A JSON pointer into nested() and a value written as raw JSON text (so 1e400, huge integers
// and -0.0 reach the parser exactly as a file would hold them).
struct Bad {
  std::string pointer, raw, expect;
};

std::string parse_error(const std::string& pointer, const std::string& raw) {
  json j = nested();
  const std::string marker = "\"@@VALUE@@\"";
  j[json::json_pointer(pointer)] = "@@VALUE@@";
  std::string doc = j.dump();
  doc.replace(doc.find(marker), marker.size(), raw);
  auto r = parse_config(doc, "m/config.json");
  return r.is_ok() ? std::string("(accepted)") : r.status().message();
}

TEST(ConfigRanges, ValidBaseParses) {
  auto r = parse_config(nested().dump(), "m/config.json");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->text.max_position_embeddings, 1024);
}

TEST(ConfigRanges, EveryNumericFieldRefusesBadValues) {
  const std::vector<Bad> cases = {
      {"/text_config/hidden_size", "0", "'text_config.hidden_size' is 0"},
      {"/text_config/hidden_size", "-64", "'text_config.hidden_size' is -64"},
      {"/text_config/hidden_size", "1e30", "'hidden_size' is 1e+30, expected an integer"},
      {"/text_config/hidden_size", "\"64\"", "'hidden_size' must be an integer"},
      {"/text_config/num_hidden_layers", "0", "'text_config.num_hidden_layers' is 0"},
      {"/text_config/num_hidden_layers", "1000000", "'text_config.num_hidden_layers' is 1000000"},
      {"/text_config/num_attention_heads", "0", "'text_config.num_attention_heads' is 0"},
      {"/text_config/num_key_value_heads", "8", "'text_config.num_key_value_heads' is 8"},
      {"/text_config/head_dim", "0", "'text_config.head_dim' is 0"},
      {"/text_config/vocab_size", "0", "'text_config.vocab_size' is 0"},
      {"/text_config/vocab_size", "4294967296", "'text_config.vocab_size' is 4294967296"},
      {"/text_config/num_local_experts", "-1", "'text_config.num_local_experts' is -1"},
      {"/text_config/intermediate_size", "0", "'text_config.intermediate_size' is 0"},
      {"/text_config/intermediate_size_mlp", "-5", "'text_config.intermediate_size_mlp' is -5"},
      {"/text_config/interleave_moe_layer_step", "0",
       "'text_config.interleave_moe_layer_step' is 0"},
      {"/text_config/attention_chunk_size", "-1", "'text_config.attention_chunk_size' is -1"},
      {"/text_config/attention_chunk_size", "18446744073709551615",
       "'attention_chunk_size' is 18446744073709551615, too large"},
      {"/text_config/max_position_embeddings", "0", "'text_config.max_position_embeddings' is 0"},
      {"/text_config/rope_theta", "0", "'text_config.rope_theta' is 0"},
      {"/text_config/rope_theta", "-1", "'text_config.rope_theta' is -1"},
      {"/text_config/rope_theta", "1e400", "not valid JSON: number overflow parsing '1e400'"},
      {"/text_config/rms_norm_eps", "-1", "'text_config.rms_norm_eps' is -1"},
      {"/text_config/rms_norm_eps", "0", "'text_config.rms_norm_eps' is 0"},
      {"/text_config/floor_scale", "0", "'text_config.floor_scale' is 0"},
      {"/text_config/attn_scale", "-0.5", "'text_config.attn_scale' is -0.5"},
      {"/text_config/no_rope_layers", "[1, 1, 2, 0]", "'text_config.no_rope_layers' holds 2"},
      {"/text_config/bos_token_id", "300", "'text_config.bos_token_id' is 300, outside"},
      {"/text_config/bos_token_id", "-1", "'text_config.bos_token_id' is -1, outside"},
      {"/text_config/eos_token_id", "[2, 999]", "'text_config.eos_token_id' is 999, outside"},
      {"/text_config/pad_token_id", "301", "'text_config.pad_token_id' is 301"},
      {"/image_token_index", "300", "'image_token_index' is 300, outside"},
      {"/text_config/rope_scaling/factor", "0", "'text_config.rope_scaling.factor' is 0"},
      {"/text_config/rope_scaling/factor", "-2", "'text_config.rope_scaling.factor' is -2"},
      {"/text_config/rope_scaling/low_freq_factor", "0",
       "'text_config.rope_scaling.low_freq_factor' is 0"},
      {"/text_config/rope_scaling/high_freq_factor", "0.5",
       "'text_config.rope_scaling.high_freq_factor' is 0.5, must be >= low_freq_factor 1"},
      {"/text_config/rope_scaling/original_max_position_embeddings", "0",
       "'text_config.rope_scaling.original_max_position_embeddings' is 0"},
      {"/text_config/rope_scaling/rope_type", "7", "'rope_type' must be a string, got 7"},
      {"/vision_config/patch_size", "0", "'vision_config.patch_size' is 0"},
      {"/vision_config/patch_size", "1000", "'vision_config.patch_size' is 1000"},
      {"/vision_config/image_size", "0", "'vision_config.image_size' is 0"},
      {"/vision_config/hidden_size", "0", "'vision_config.hidden_size' is 0"},
      {"/vision_config/num_hidden_layers", "-1", "'vision_config.num_hidden_layers' is -1"},
      {"/vision_config/num_attention_heads", "0", "'vision_config.num_attention_heads' is 0"},
      {"/vision_config/intermediate_size", "0", "'vision_config.intermediate_size' is 0"},
      {"/vision_config/num_channels", "0", "'vision_config.num_channels' is 0"},
      {"/vision_config/pixel_shuffle_ratio", "0", "'vision_config.pixel_shuffle_ratio' is 0"},
      {"/vision_config/pixel_shuffle_ratio", "2", "'vision_config.pixel_shuffle_ratio' is 2"},
      {"/vision_config/projector_input_dim", "0", "'vision_config.projector_input_dim' is 0"},
      {"/vision_config/projector_output_dim", "0", "'vision_config.projector_output_dim' is 0"},
      {"/vision_config/vision_output_dim", "0", "'vision_config.vision_output_dim' is 0"},
      {"/vision_config/rope_theta", "0", "'vision_config.rope_theta' is 0"},
      {"/vision_config/norm_eps", "-1", "'vision_config.norm_eps' is -1"},
  };
  for (const Bad& c : cases) {
    const std::string e = parse_error(c.pointer, c.raw);
    EXPECT_NE(e.find("m/config.json"), std::string::npos)
        << c.pointer << " = " << c.raw << ": " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.pointer << " = " << c.raw << ": " << e;
  }
}

TEST(ConfigRanges, NullChunkSizeMeansNoChunking) {
  json j = nested();
  j["text_config"]["attention_chunk_size"] = nullptr;
  auto r = parse_config(j.dump(), "m/config.json");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->text.attention_chunk_size, 0);
  for (const LayerKind& k : r->text.layers) EXPECT_FALSE(k.chunked);
}

TEST(ConfigRanges, AbsentMaxPositionIsTransformersDefault) {
  json j = nested();
  j["text_config"].erase("max_position_embeddings");
  auto r = parse_config(j.dump(), "m/config.json");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->text.max_position_embeddings, 131072);
}

TEST(ConfigRanges, JsonErrorsCarryLineAndColumn) {
  auto r = parse_config("{\n  \"a\": 1,\n  oops\n}", "m/config.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("m/config.json: not valid JSON: parse error at line 3, "
                                      "column 3"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace herd
