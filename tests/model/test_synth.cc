// `herd synth`: determinism, loadability of every preset layout, fallback tokenizer ids.
#include "herd/convert/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "herd/convert/synth_tokenizer.h"
#include "herd/model/param_count.h"
#include "herd/model/weights.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> dir_contents(const std::string& d) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(d))
    if (e.is_regular_file()) m[fs::relative(e.path(), d).string()] = slurp(e.path());
  return m;
}

TEST(Synth, SameSeedSameBytes) {
  SynthOptions o;
  o.seed = 7;
  const auto a = dir_contents(testutil::synth_dir("a", o));
  const auto b = dir_contents(testutil::synth_dir("b", o));
  EXPECT_EQ(a.size(), 8u);  // config, generation_config, 3 tokenizer files, 2 shards, index
  EXPECT_TRUE(a == b);
  o.seed = 8;
  const auto c = dir_contents(testutil::synth_dir("c", o));
  EXPECT_EQ(a.at("config.json"), c.at("config.json"));
  EXPECT_NE(a.at("model-00001-of-00002.safetensors"), c.at("model-00001-of-00002.safetensors"));
}

TEST(Synth, TinyShardedLoadsWithEveryTensor) {
  const std::string d = testutil::synth_dir("tiny", SynthOptions{});
  EXPECT_TRUE(fs::exists(d + "/model.safetensors.index.json"));
  auto m = load_model(d);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const Llama4Config& c = m->config;
  EXPECT_TRUE(c.multimodal && c.vision.has_value());
  for (const TensorSpec& s : tensor_table(c)) {
    const TensorView* v = m->store->find(s.name);
    ASSERT_TRUE(v) << s.name;
    EXPECT_EQ(v->shape, s.shape) << s.name;
    EXPECT_EQ(v->dtype, DType::BF16) << s.name;
  }
  EXPECT_EQ(m->store->size(), tensor_table(c).size());
  const auto& t = c.text;
  EXPECT_EQ(t.hidden_size, 64);
  EXPECT_EQ(t.num_hidden_layers, 4);
  EXPECT_TRUE(t.layer_kind(0).rope && !t.layer_kind(3).rope);
  EXPECT_TRUE(t.layer_kind(0).qk_norm && t.rope_scaling.has_value());
  const LayerWeights& l0 = m->text.layers[0];
  EXPECT_EQ(l0.experts_gate_up.rows, 4 * 64);
  EXPECT_EQ(l0.experts_gate_up.cols, 2 * 64);
  EXPECT_EQ(l0.experts_down.rows, 4 * 64);
  EXPECT_EQ(l0.experts_down.cols, 64);
  EXPECT_EQ(l0.attn_norm.size(), 64u);
  EXPECT_NE(m->text.lm_head.data, m->text.embed.data);
  EXPECT_EQ(m->text.embed.rows, t.vocab_size);
}

TEST(Synth, SingleFileTextOnlyAndInterleaved) {
  SynthOptions o;
  o.preset = "tiny-interleaved";
  o.text_only = true;
  const std::string d = testutil::synth_dir("ti", o);
  EXPECT_TRUE(fs::exists(d + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(d + "/model.safetensors.index.json"));
  auto m = load_model(d);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto& t = m->config.text;
  EXPECT_FALSE(m->config.multimodal);
  EXPECT_EQ(t.num_local_experts, 128);
  EXPECT_EQ(t.moe_layers, (std::vector<int64_t>{1, 3}));
  EXPECT_FALSE(t.layer_kind(0).moe);
  EXPECT_TRUE(t.layer_kind(3).moe && !t.layer_kind(3).rope);
  EXPECT_FALSE(t.use_qk_norm || t.rope_scaling.has_value());
  EXPECT_EQ(m->text.layers[0].dense_gate.rows, 128);
  EXPECT_TRUE(m->store->find("model.embed_tokens.weight"));
  EXPECT_TRUE(m->store->find("lm_head.weight"));
}

TEST(Synth, FallbackTokenizerIds) {
  const std::string d = testutil::synth_dir("tok", SynthOptions{});
  json tj = json::parse(slurp(d + "/tokenizer.json"));
  EXPECT_EQ(tj["model"]["type"], "BPE");
  EXPECT_EQ(tj["model"]["vocab"].size(), 256u);
  EXPECT_EQ(tj["model"]["vocab"]["A"], 65);
  EXPECT_EQ(tj["model"]["vocab"]["\xC4\xA0"], 32);  // 'Ġ' = space
  EXPECT_EQ(tj["model"]["vocab"]["\xC4\x80"], 0);   // 'Ā' = byte 0
  EXPECT_EQ(tj["model"]["merges"].size(), 0u);
  EXPECT_EQ(tj["pre_tokenizer"]["type"], "ByteLevel");
  EXPECT_EQ(tj["decoder"]["type"], "ByteLevel");
  std::map<std::string, int> added;
  for (const auto& a : tj["added_tokens"]) added[a["content"]] = a["id"];
  EXPECT_EQ(added.size(), 21u);
  EXPECT_EQ(added["<|begin_of_text|>"], 256);
  EXPECT_EQ(added["<|eot|>"], 264);
  EXPECT_EQ(added["<|patch|>"], 274);
  EXPECT_EQ(added["<|reasoning_thinking_end|>"], 276);
  json cj = json::parse(slurp(d + "/config.json"));
  EXPECT_EQ(cj["text_config"]["vocab_size"], 277);
  EXPECT_EQ(cj["text_config"]["bos_token_id"], 256);
  EXPECT_EQ(cj["text_config"]["eos_token_id"], json({257, 263, 264}));
  EXPECT_EQ(cj["text_config"]["pad_token_id"], 268);
  EXPECT_EQ(cj["image_token_index"], 274);
  EXPECT_EQ(cj["boi_token_index"], 269);
  EXPECT_EQ(cj["eoi_token_index"], 270);
  json gj = json::parse(slurp(d + "/generation_config.json"));
  EXPECT_EQ(gj["eos_token_id"], json({257, 263, 264}));
  EXPECT_DOUBLE_EQ(gj["temperature"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(gj["top_p"].get<double>(), 0.9);
  json tc = json::parse(slurp(d + "/tokenizer_config.json"));
  EXPECT_EQ(tc["bos_token"], "<|begin_of_text|>");
}

TEST(Synth, RealTokenizerIdsByName) {
  SynthOptions o;
  o.tokenizer_dir = std::string(HERD_SHARED_DIR) + "/llama4";
  if (!fs::exists(o.tokenizer_dir + "/tokenizer.model")) GTEST_SKIP() << "no llama4 tokenizer";
  auto c = synth_config(o);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->text.vocab_size, 202048);
  EXPECT_EQ(c->text.bos_token_id, std::vector<int64_t>{200000});
  EXPECT_EQ(c->text.eos_token_id, (std::vector<int64_t>{200001, 200007, 200008}));
  EXPECT_EQ(c->text.pad_token_id, 200018);
  EXPECT_EQ(c->image_token_index, 200092);
  EXPECT_EQ(c->boi_token_index, 200080);
  EXPECT_EQ(c->eoi_token_index, 200081);
}

TEST(Synth, PresetSizesAndOverrides) {
  SynthOptions o;
  o.preset = "small";
  auto small = synth_config(o);
  ASSERT_TRUE(small.is_ok());
  const ParamCounts ps = count_params(*small);
  EXPECT_EQ(small->text.vocab_size, 202048);
  EXPECT_GT(ps.total, 140'000'000);
  EXPECT_LT(ps.total, 160'000'000);
  o.preset = "bench";
  auto bench = synth_config(o);
  ASSERT_TRUE(bench.is_ok());
  const double gb = double(count_params(*bench).total) * 2 / 1e9;
  EXPECT_GT(gb, 1.8);
  EXPECT_LT(gb, 2.2);
  o.preset = "tiny";
  o.layers = 6;
  o.hidden = 128;
  o.experts = 3;
  o.attention_chunk_size = 32;
  o.floor_scale = 16;
  auto t = synth_config(o);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(t->text.num_hidden_layers, 6);
  EXPECT_EQ(t->text.num_attention_heads, 8);
  EXPECT_EQ(t->text.num_key_value_heads, 4);
  EXPECT_EQ(t->text.num_local_experts, 3);
  EXPECT_EQ(t->text.attention_chunk_size, 32);
  EXPECT_EQ(t->text.floor_scale, 16);
  o.vocab = 100;  // smaller than the tokenizer
  EXPECT_FALSE(synth_config(o).is_ok());
  o.vocab = 1000;
  EXPECT_EQ(synth_config(o)->text.vocab_size, 1000);
  o.preset = "huge";
  EXPECT_FALSE(synth_config(o).is_ok());
}

TEST(Synth, OverwritesOnlyItsOwnWeights) {
  SynthOptions o;
  o.shards = 1;
  const std::string d = testutil::synth_dir("ow", o);
  o.out_dir = d;
  o.shards = 2;  // re-run with another layout: the old single file must go
  ASSERT_TRUE(synth_model(o).is_ok());
  EXPECT_FALSE(fs::exists(d + "/model.safetensors"));
  ASSERT_TRUE(load_model(d).is_ok());
  const std::string foreign = testutil::fresh_dir("foreign");
  std::vector<uint16_t> v(2);
  ASSERT_TRUE(write_safetensors(foreign + "/w.safetensors", {{"x", DType::BF16, {2}, v.data(), {}}})
                  .is_ok());
  o.out_dir = foreign;
  Status s = synth_model(o);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("refusing to overwrite"), std::string::npos) << s.message();
  EXPECT_TRUE(fs::exists(foreign + "/w.safetensors"));
}

TEST(Synth, InitScales) {
  SynthOptions o;
  o.text_only = true;
  auto c = synth_config(o);
  ASSERT_TRUE(c.is_ok());
  for (const TensorSpec& s : text_tensor_table(*c)) {
    if (s.role != TensorRole::kLmHead && s.role != TensorRole::kEmbedding) continue;
    std::vector<uint8_t> buf(size_t(s.numel()) * 2);
    synth_fill_bf16(1, s, *c, buf.data());
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < s.numel(); ++i) {
      const double v = bf16_to_f32(uint16_t(buf[2 * i] | buf[2 * i + 1] << 8));
      sum += v;
      sq += v * v;
    }
    const double n = double(s.numel()), mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    const double want = synth_init(s, *c).second;
    EXPECT_NEAR(mean, 0.0, 0.05 * want) << s.name;
    EXPECT_NEAR(sd, want, 0.03 * want) << s.name;
  }
}

}  // namespace
}  // namespace herd
