// GGUF export: tensor names/shapes, the expert split + transpose checked element by element
// against the safetensors, exact F32 copies of BF16 weights, metadata, rope factors, the
// llama.cpp compatibility report, and the vocabulary rebuilt from Meta's tiktoken ranks.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "herd/base/dtype.h"
#include "herd/convert/gguf_export.h"
#include "herd/io/gguf.h"
#include "herd/io/safetensors.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

float bf16_at(const TensorView& v, size_t i) {
  uint16_t h;
  std::memcpy(&h, v.data + 2 * i, 2);
  return bf16_to_f32(h);
}
float f32_at(const gguf::TensorInfo& t, size_t i) {
  float f;
  std::memcpy(&f, t.data + 4 * i, 4);
  return f;
}

TEST(GgufExport, TinyMatchesCheckpointExactly) {
  SynthOptions o;
  o.text_only = true;
  const std::string dir = testutil::synth_dir("tiny", o);
  const std::string out = dir + "/model.gguf";
  auto rep = export_gguf({dir, out, GgufDtype::kF32});
  ASSERT_TRUE(rep.is_ok()) << rep.status().message();
  EXPECT_TRUE(rep->llama_cpp_differences.empty());
  auto r = gguf::Reader::open(out);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  auto store = TensorStore::open_dir(dir);
  ASSERT_TRUE(store.is_ok());
  auto cfg = load_config(dir);
  ASSERT_TRUE(cfg.is_ok());
  const Llama4TextConfig& t = cfg->text;
  const int64_t H = t.hidden_size, I = t.intermediate_size, E = t.num_local_experts;

  EXPECT_EQ(*r->find("general.architecture")->get_string(), "llama4");
  int64_t v = 0;
  ASSERT_TRUE(r->find("llama4.expert_feed_forward_length")->get_int(&v));
  EXPECT_EQ(v, I);
  ASSERT_TRUE(r->find("llama4.feed_forward_length")->get_int(&v));
  EXPECT_EQ(v, t.intermediate_size_mlp);
  EXPECT_EQ(r->find("llama4.attention.sliding_window"), nullptr);  // chunked + NoPE layers
  EXPECT_EQ(r->find("tokenizer.ggml.tokens")->array_size(), size_t(t.vocab_size));
  EXPECT_EQ(*r->find("tokenizer.ggml.pre")->get_string(), "llama4");

  // Every exported float equals the BF16 value it came from (plain copies).
  const TensorView* q = (*store)->find("model.layers.1.self_attn.q_proj.weight");
  const gguf::TensorInfo* gq = r->find_tensor("blk.1.attn_q.weight");
  ASSERT_TRUE(q && gq);
  EXPECT_EQ(gq->ne, (std::vector<int64_t>{H, t.q_dim()}));
  for (size_t i = 0; i < size_t(q->numel()); ++i) ASSERT_EQ(f32_at(*gq, i), bf16_at(*q, i)) << i;

  // Experts: gate_up [E, H, 2I] -> ffn_gate_exps / ffn_up_exps ne {H, I, E} (PyTorch [E, I, H]).
  const TensorView* gu = (*store)->find("model.layers.2.feed_forward.experts.gate_up_proj");
  const TensorView* dn = (*store)->find("model.layers.2.feed_forward.experts.down_proj");
  const gguf::TensorInfo* gate = r->find_tensor("blk.2.ffn_gate_exps.weight");
  const gguf::TensorInfo* up = r->find_tensor("blk.2.ffn_up_exps.weight");
  const gguf::TensorInfo* down = r->find_tensor("blk.2.ffn_down_exps.weight");
  ASSERT_TRUE(gu && dn && gate && up && down);
  EXPECT_EQ(gate->ne, (std::vector<int64_t>{H, I, E}));
  EXPECT_EQ(down->ne, (std::vector<int64_t>{I, H, E}));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < I; ++i) {
        const size_t src = size_t((e * H + h) * 2 * I + i), dst = size_t((e * I + i) * H + h);
        ASSERT_EQ(f32_at(*gate, dst), bf16_at(*gu, src));
        ASSERT_EQ(f32_at(*up, dst), bf16_at(*gu, src + size_t(I)));
        // down [E, I, H] -> PyTorch [E, H, I]
        ASSERT_EQ(f32_at(*down, size_t((e * H + h) * I + i)),
                  bf16_at(*dn, size_t((e * I + i) * H + h)));
      }
  const gguf::TensorInfo* rf = r->find_tensor("rope_freqs.weight");
  ASSERT_NE(rf, nullptr);
  EXPECT_EQ(rf->ne, (std::vector<int64_t>{t.head_dim / 2}));
}

TEST(GgufExport, Bf16ExportKeepsNormsAndRouterF32) {
  SynthOptions o;
  o.preset = "tiny-interleaved";
  o.text_only = true;
  const std::string dir = testutil::synth_dir("ti", o);
  auto rep = export_gguf({dir, dir + "/m.gguf", GgufDtype::kBF16});
  ASSERT_TRUE(rep.is_ok()) << rep.status().message();
  EXPECT_TRUE(rep->llama_cpp_differences.empty());  // 128 experts, no QK-norm
  auto r = gguf::Reader::open(dir + "/m.gguf");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->find_tensor("blk.0.ffn_gate.weight")->type, 30u);  // dense layer 0
  EXPECT_EQ(r->find_tensor("blk.1.ffn_gate_inp.weight")->type, 0u);
  EXPECT_EQ(r->find_tensor("blk.1.attn_norm.weight")->type, 0u);
  EXPECT_EQ(r->find_tensor("rope_freqs.weight"), nullptr);  // no rope scaling
}

TEST(GgufExport, RopeFactorsAndDifferences) {
  Llama4TextConfig t;
  t.head_dim = 128;
  t.rope_theta = 500000;
  t.rope_scaling = RopeScaling{16, 1, 1, 8192};  // Scout (spec §3.4): pairs 35.. divided by 16
  std::vector<float> f = llama3_rope_factors(t);
  ASSERT_EQ(f.size(), 64u);
  for (size_t j = 0; j < 64; ++j) EXPECT_EQ(f[j], j < 35 ? 1.0f : 16.0f) << j;

  SynthOptions o;
  o.attention_chunk_size = 4096;
  auto cfg = synth_config(o);
  ASSERT_TRUE(cfg.is_ok());
  const auto d = llama_cpp_differences(cfg->text);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].find("8192"), std::string::npos) << d[0];
}

TEST(GgufExport, VocabularyFromTiktokenRanks) {
  const std::string tok = std::string(HERD_SHARED_DIR) + "/llama4/tokenizer.model";
  if (!std::filesystem::exists(tok)) GTEST_SKIP() << "no llama4 tokenizer";
  const std::string dir = testutil::fresh_dir("tok");
  std::filesystem::copy_file(tok, dir + "/tokenizer.model");
  Llama4Config cfg;
  cfg.text.vocab_size = 202048;
  gguf::Writer w;
  Status s = add_tokenizer_metadata(dir, cfg, w);
  ASSERT_TRUE(s.is_ok()) << s.message();
  const gguf::Value* tokens = nullptr;
  const gguf::Value* merges = nullptr;
  for (const auto& kv : w.metadata()) {
    if (kv.key == "tokenizer.ggml.tokens") tokens = &kv.value;
    if (kv.key == "tokenizer.ggml.merges") merges = &kv.value;
  }
  ASSERT_TRUE(tokens && merges);
  const auto& t = *tokens->get_strings();
  ASSERT_EQ(t.size(), 202048u);
  EXPECT_EQ(t[0], "À");  // rank 0 is byte 0xC0, spelled U+00C0
  EXPECT_EQ(t[200000], "<|begin_of_text|>");
  // Every base token of 2+ bytes comes from exactly one merge.
  const auto& m = *merges->get_strings();
  EXPECT_EQ(m.size(), size_t(200000 - 256));
  const std::unordered_set<std::string> base(t.begin(), t.begin() + 200000);
  for (size_t i = 0; i < m.size(); i += 97) {
    const size_t sp = m[i].find(' ', 1);
    ASSERT_NE(sp, std::string::npos) << m[i];
    EXPECT_TRUE(base.count(m[i].substr(0, sp) + m[i].substr(sp + 1))) << m[i];
  }
}

}  // namespace
}  // namespace herd
