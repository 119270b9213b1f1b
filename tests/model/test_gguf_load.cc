// GGUF import (model/gguf_load.h): a synthetic checkpoint exported by herd's own exporter and
// loaded back through the GGUF path gives the logits of the safetensors path — bitwise on the
// f32 reference (F32 and BF16 files), bitwise on the fast path for BF16 files where both use
// the same bf16 kernel — split parts load as one model, the tokenizer from the GGUF arrays
// encodes like the directory's, and each broken file gives one error naming what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "herd/convert/gguf_export.h"
#include "herd/io/gguf_files.h"
#include "herd/model/gguf_load.h"
#include "herd/model/run_weights.h"
#include "herd/model/text.h"
#include "herd/ops/gemm.h"
#include "herd/runtime/engine.h"
#include "herd/runtime/sequence.h"
#include "herd/tokenizer/tokenizer.h"
#include "herd/tokenizer/tokenizer_gguf.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

ThreadPool& pool() {
  static ThreadPool p(2);
  return p;
}

std::vector<int32_t> some_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint32_t x = 99;
  for (auto& v : t) {
    x = x * 1664525u + 1013904223u;
    v = int32_t((x >> 8) % uint32_t(vocab));
  }
  return t;
}

// Logits at every position of a 24-token prompt.
std::vector<float> logits(LoadedModel& m, Precision p) {
  if (p == Precision::kAuto) {
    QuantOptions q;
    q.progress = false;
    Status s = prepare_run_weights(m, q, pool());
    EXPECT_TRUE(s.is_ok()) << s.message();
  }
  TextDecoder dec(m, pool(), p);
  const int64_t n = 24, V = dec.vocab_size();
  auto tokens = some_tokens(n, V);
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  std::vector<float> out(size_t(n * V));
  Sequence s(dec, 512);
  Status st = s.append(tokens, all, out.data());
  EXPECT_TRUE(st.is_ok()) << st.message();
  return out;
}

LoadedModel load(const std::string& path) {
  auto m = load_model(path);
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  return std::move(m).value();
}

std::string exported(const std::string& dir, GgufDtype dt, const std::string& name) {
  const std::string out = dir + "/" + name;
  auto rep = export_gguf({dir, out, dt});
  EXPECT_TRUE(rep.is_ok()) << rep.status().message();
  return out;
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "logit " << i;
}

// Rewrites a GGUF with edits: `keys` replaced or added, `type_of` giving a tensor a new type
// (its data then zero), `parts` > 1 writing split parts NAME-0000k-of-0000N.gguf instead.
struct Rewrite {
  std::vector<gguf::KeyValue> keys;
  std::string retype;
  uint32_t new_type = 0;
  int parts = 1;
  bool router_bf16 = false;  // ffn_gate_inp F32 -> BF16 (exact for bf16-valued weights)
};

void rewrite(const std::string& src, const std::string& dst, const Rewrite& rw) {
  auto r = gguf::Reader::open(src);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const auto& ts = r->tensors();
  const size_t per = (ts.size() + size_t(rw.parts) - 1) / size_t(rw.parts);
  for (int p = 0; p < rw.parts; ++p) {
    gguf::Writer w(r->alignment());
    if (p == 0)
      for (const auto& kv : r->metadata())
        if (kv.key != "general.alignment") w.set(kv.key, kv.value);
    if (p == 0)
      for (const auto& kv : rw.keys) w.set(kv.key, kv.value);
    if (rw.parts > 1) {  // llama.cpp's gguf-split keys
      w.set("split.no", gguf::Value::u16(uint16_t(p)));
      w.set("split.count", gguf::Value::u16(uint16_t(rw.parts)));
      w.set("split.tensors.count", gguf::Value::i32(int32_t(ts.size())));
    }
    for (size_t i = size_t(p) * per; i < std::min(ts.size(), size_t(p + 1) * per); ++i) {
      const gguf::TensorInfo* t = &ts[i];
      const bool re = t->name == rw.retype;
      const bool to_bf16 = rw.router_bf16 && t->name.find("ffn_gate_inp") != std::string::npos;
      const uint32_t type = re ? rw.new_type : to_bf16 ? 30u : t->type;
      const uint64_t bytes = t->ne.size()
                                 ? gguf::ggml_row_bytes(type, t->ne[0]) *
                                       (t->nbytes / gguf::ggml_row_bytes(t->type, t->ne[0]))
                                 : 0;
      Status s = w.add_tensor(t->name, t->ne, gguf::GgmlType(type),
                              [t, re, to_bf16, bytes](gguf::TensorSink& out) -> Status {
                                if (to_bf16) {
                                  std::vector<uint16_t> h(t->nbytes / 4);
                                  for (size_t k = 0; k < h.size(); ++k) {
                                    float f;
                                    std::memcpy(&f, t->data + 4 * k, 4);
                                    h[k] = f32_to_bf16(f);
                                  }
                                  return out.write(h.data(), h.size() * 2);
                                }
                                if (!re) return out.write(t->data, t->nbytes);
                                std::vector<uint8_t> zero(bytes);
                                return out.write(zero.data(), zero.size());
                              });
      ASSERT_TRUE(s.is_ok()) << s.message();
    }
    const std::string path =
        rw.parts > 1 ? gguf::split_part_path(dst.substr(0, dst.size() - 5), p + 1, rw.parts) : dst;
    Status s = w.write(path);
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
}

std::string error_of(const std::string& path) {
  auto m = load_model(path);
  EXPECT_FALSE(m.is_ok());
  return m.is_ok() ? std::string() : m.status().message();
}

class GgufLoad : public ::testing::TestWithParam<std::string> {
 protected:
  std::string synth() {
    SynthOptions o;
    o.preset = GetParam();
    o.text_only = true;
    o.seed = 5;
    o.shards = 1;
    return testutil::synth_dir(GetParam(), o);
  }
};

TEST_P(GgufLoad, ReferenceLogitsBitwiseEqualSafetensors) {
  const std::string dir = synth();
  LoadedModel st = load(dir);
  const std::vector<float> want = logits(st, Precision::kF32);
  for (GgufDtype dt : {GgufDtype::kF32, GgufDtype::kBF16}) {
    LoadedModel g = load(exported(dir, dt, dt == GgufDtype::kF32 ? "f32.gguf" : "bf16.gguf"));
    EXPECT_EQ(g.run_format, kGgufRunFormat);
    // F32 holds the BF16 weights exactly and BF16 is them: the same numbers through the same
    // arithmetic (out-major experts summed in input order like the input-major ones).
    expect_same_bits(want, logits(g, Precision::kF32));
  }
}

TEST_P(GgufLoad, FastPathBitwiseEqualsBf16Run) {
  // On AVX512-BF16 / AMX machines the safetensors run repacks bf16 weights into 16-row tiles,
  // whose kernel sums in another order than the plain-row one the GGUF views get; at AVX2 and
  // AVX-512 both paths read plain BF16 rows with the same kernel and must agree to the bit.
  // The exporter writes the router F32 (as llama.cpp's converter does) and herd runs an F32
  // router with f32 activations, where the bf16 run rounds them: so this file's router is
  // rewritten as the BF16 it came from.
  const std::string dir = synth();
  const std::string path = dir + "/bf16-router.gguf";
  Rewrite rw;
  rw.router_bf16 = true;
  rewrite(exported(dir, GgufDtype::kBF16, "bf16.gguf"), path, rw);
  const Isa native = active_isa();
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    LoadedModel st = load(dir), g = load(path);
    expect_same_bits(logits(st, Precision::kAuto), logits(g, Precision::kAuto));
  }
  force_isa(native);
}

TEST_P(GgufLoad, ConfigFromMetadataMatchesConfigJson) {
  const std::string dir = synth();
  LoadedModel st = load(dir), g = load(exported(dir, GgufDtype::kBF16, "bf16.gguf"));
  const Llama4TextConfig &a = st.config.text, &b = g.config.text;
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.num_local_experts, b.num_local_experts);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.intermediate_size_mlp, b.intermediate_size_mlp);
  EXPECT_EQ(a.attention_chunk_size, b.attention_chunk_size);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_FLOAT_EQ(float(a.rms_norm_eps), float(b.rms_norm_eps));
  EXPECT_EQ(a.use_qk_norm, b.use_qk_norm);
  EXPECT_EQ(a.rope_scaling.has_value(), b.rope_scaling.has_value());
  if (a.rope_scaling && b.rope_scaling) {
    EXPECT_EQ(a.rope_scaling->factor, b.rope_scaling->factor);
    EXPECT_EQ(a.rope_scaling->original_max_position_embeddings,
              b.rope_scaling->original_max_position_embeddings);
  }
  for (int64_t i = 0; i < a.num_hidden_layers; ++i) {
    EXPECT_EQ(a.layer_kind(i).moe, b.layer_kind(i).moe) << i;
    EXPECT_EQ(a.layer_kind(i).rope, b.layer_kind(i).rope) << i;
    EXPECT_EQ(a.layer_kind(i).chunked, b.layer_kind(i).chunked) << i;
    EXPECT_EQ(a.layer_kind(i).qk_norm, b.layer_kind(i).qk_norm) << i;
    EXPECT_EQ(a.layer_kind(i).temp_tuning, b.layer_kind(i).temp_tuning) << i;
  }
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  ASSERT_FALSE(b.eos_token_id.empty());
}

TEST_P(GgufLoad, SplitPartsLoadAsOneModel) {
  const std::string dir = synth();
  const std::string whole = exported(dir, GgufDtype::kBF16, "bf16.gguf");
  rewrite(whole, dir + "/split.gguf", Rewrite{{}, "", 0, 3});
  const std::string part2 = gguf::split_part_path(dir + "/split", 2, 3);
  ASSERT_TRUE(fs::exists(part2));
  LoadedModel a = load(whole), b = load(part2);  // any part names the whole set
  ASSERT_TRUE(b.gguf);
  EXPECT_EQ(b.gguf->parts().size(), 3u);
  expect_same_bits(logits(a, Precision::kF32), logits(b, Precision::kF32));
  fs::remove(gguf::split_part_path(dir + "/split", 3, 3));
  EXPECT_NE(error_of(part2).find("part 3 of 3 is missing"), std::string::npos) << error_of(part2);
}

TEST_P(GgufLoad, TokenizerFromMetadataEncodesLikeTheDirectory) {
  const std::string dir = synth();
  auto files = gguf::Files::open(exported(dir, GgufDtype::kBF16, "bf16.gguf"));
  ASSERT_TRUE(files.is_ok());
  auto a = Tokenizer::load(dir);
  auto b = tokenizer_from_gguf(files->first(), files->path());
  ASSERT_TRUE(a.is_ok() && b.is_ok()) << b.status().message();
  for (const char* text : {"Hello, world!", "<|begin_of_text|>naïve café 日本語 🙂 1234",
                           "  spaces\n\nand\ttabs"}) {
    EXPECT_EQ(a->encode(text, true), b->encode(text, true)) << text;
    EXPECT_EQ(a->encode(text, false), b->encode(text, false)) << text;
  }
}

TEST_P(GgufLoad, EngineOpensTheFileLikeTheDirectory) {
  const std::string dir = synth();
  const std::string path = exported(dir, GgufDtype::kBF16, "bf16.gguf");
  EngineOptions o;
  o.threads = 2;
  o.progress = false;
  o.model_dir = dir;
  auto a = Engine::open(o);
  o.model_dir = path;
  auto b = Engine::open(o);
  ASSERT_TRUE(a.is_ok() && b.is_ok()) << b.status().message();
  ASSERT_TRUE((*b)->has_tokenizer());
  EXPECT_EQ((*a)->encode_prompt("Hello, GGUF", true), (*b)->encode_prompt("Hello, GGUF", true));
  // Every stop id of the directory (config.json + generation_config.json) stops the GGUF too.
  for (int32_t id : (*a)->stop_ids())
    EXPECT_NE(std::find((*b)->stop_ids().begin(), (*b)->stop_ids().end(), id),
              (*b)->stop_ids().end())
        << id;
}

INSTANTIATE_TEST_SUITE_P(Presets, GgufLoad, ::testing::Values("tiny", "tiny-interleaved"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// The real vocabulary: Meta's tokenizer.model -> GGUF arrays (herd's exporter, merges rebuilt
// from the ranks) -> tokenizer_from_gguf encodes exactly as the tiktoken ranks do.
// The trained default model scales RoPE with a smooth band (factor 4, low 1, high 4, original
// context 256), unlike released Llama 4 (low = high = 1). Its GGUF holds only the per-pair
// divisors (rope_freqs); the loader recovers parameters that give the same divisors, and the
// f32 logits equal the directory's within the conformance tolerance.
TEST(GgufRopeScaling, SmoothBandOfTheTrainedModelRoundTrips) {
  const std::string dir = std::string(HERD_SOURCE_DIR) + "/models/default";
  const std::string out = testutil::fresh_dir("gguf") + "/default-f32.gguf";
  auto rep = export_gguf({dir, out, GgufDtype::kF32});
  ASSERT_TRUE(rep.is_ok()) << rep.status().message();
  LoadedModel st = load(dir), g = load(out);
  ASSERT_TRUE(st.config.text.rope_scaling.has_value());
  ASSERT_LT(st.config.text.rope_scaling->low_freq_factor,
            st.config.text.rope_scaling->high_freq_factor);  // the case this test is for
  ASSERT_TRUE(g.config.text.rope_scaling.has_value());
  const std::vector<float> a = llama3_rope_factors(st.config.text),
                           b = llama3_rope_factors(g.config.text);
  ASSERT_EQ(a.size(), b.size());
  int band = 0;
  for (size_t j = 0; j < a.size(); ++j) {
    EXPECT_NEAR(b[j], a[j], 1e-5f * a[j]) << "pair " << j;
    band += a[j] > 1 && a[j] < st.config.text.rope_scaling->factor;
  }
  EXPECT_GE(band, 2);
  const std::vector<float> want = logits(st, Precision::kF32), got = logits(g, Precision::kF32);
  ASSERT_EQ(want.size(), got.size());
  float worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(want[i] - got[i]));
  EXPECT_LT(worst, 1e-4f);  // divisors within 1e-5 relative; the conformance tolerance
}

TEST(GgufTokenizer, RealVocabularyRoundTrip) {
  const std::string model = std::string(HERD_SHARED_DIR) + "/llama4/tokenizer.model";
  ASSERT_TRUE(fs::exists(model)) << model;
  const std::string dir = testutil::fresh_dir("tok");
  fs::copy_file(model, dir + "/tokenizer.model");
  Llama4Config cfg;
  cfg.text.vocab_size = 202048;
  gguf::Writer w;
  ASSERT_TRUE(add_tokenizer_metadata(dir, cfg, w).is_ok());
  ASSERT_TRUE(w.write(dir + "/vocab.gguf").is_ok());
  auto r = gguf::Reader::open(dir + "/vocab.gguf");
  ASSERT_TRUE(r.is_ok());
  auto a = Tokenizer::from_tiktoken_file(model);
  auto b = tokenizer_from_gguf(*r, dir);
  ASSERT_TRUE(a.is_ok() && b.is_ok()) << b.status().message();
  for (const char* text :
       {"The quick brown fox jumps over the lazy dog.",
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
        "Größe, naïve café — 日本語のテキスト, Ελληνικά 🙂 1234567 can't "
        "I'll",
        "<|header_start|>user<|header_end|>\n\nWhat is 2+2?<|eot|>"}) {
    EXPECT_EQ(a->encode(text, true), b->encode(text, true)) << text;
  }
  EXPECT_EQ(b->bos_id(), 200000);
  EXPECT_EQ(b->eot_id(), 200008);
}

// ---- One clear error per broken file ----

class GgufErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    SynthOptions o;
    o.text_only = true;
    o.shards = 1;
    dir_ = testutil::synth_dir("err", o);
    path_ = exported(dir_, GgufDtype::kBF16, "ok.gguf");
  }
  std::string dir_, path_;
};

TEST_F(GgufErrors, Truncated) {
  const auto size = fs::file_size(path_);
  fs::copy_file(path_, dir_ + "/cut.gguf");
  fs::resize_file(dir_ + "/cut.gguf", size / 2);
  const std::string e = error_of(dir_ + "/cut.gguf");
  EXPECT_NE(e.find("cut.gguf"), std::string::npos) << e;
  EXPECT_NE(e.find("past the end of the file"), std::string::npos) << e;
  fs::resize_file(dir_ + "/cut.gguf", 100);  // inside the metadata
  const std::string e2 = error_of(dir_ + "/cut.gguf");
  EXPECT_NE(e2.find("truncated"), std::string::npos) << e2;
}

TEST_F(GgufErrors, BadMagic) {
  fs::copy_file(path_, dir_ + "/magic.gguf");
  std::fstream f(dir_ + "/magic.gguf", std::ios::in | std::ios::out | std::ios::binary);
  f.write("GGUX", 4);
  f.close();
  const std::string e = error_of(dir_ + "/magic.gguf");
  EXPECT_NE(e.find("bad magic"), std::string::npos) << e;
}

TEST_F(GgufErrors, UnknownArchitecture) {
  rewrite(path_, dir_ + "/arch.gguf",
          Rewrite{{{"general.architecture", gguf::Value::string("llama")}}, "", 0, 1});
  const std::string e = error_of(dir_ + "/arch.gguf");
  EXPECT_NE(e.find("architecture 'llama' is not supported"), std::string::npos) << e;
}

TEST_F(GgufErrors, UnsupportedTensorType) {
  // Q8_1 (9) and MXFP4 (39): 32-element blocks, which fit the tiny preset's rows (the 256-block
  // IQ types do not; the reader names the tensor then too).
  for (uint32_t type : {9u, 39u}) {
    const std::string p = dir_ + "/type" + std::to_string(type) + ".gguf";
    rewrite(path_, p, Rewrite{{}, "blk.1.attn_q.weight", type, 1});
    const std::string e = error_of(p);
    EXPECT_NE(e.find("tensor blk.1.attn_q.weight has type " +
                     std::string(gguf::ggml_type_name(type)) + ", which herd does not support"),
              std::string::npos)
        << e;
  }
}

TEST_F(GgufErrors, NoFastKernelsNamesTensorAndType) {
  // F16 maps to a DType but the fast path has no F16 kernels yet: the f32 reference runs it,
  // --precision auto refuses it by name at prepare time (not a crash in a kernel).
  auto rep = export_gguf({dir_, dir_ + "/f16.gguf", GgufDtype::kF16});
  ASSERT_TRUE(rep.is_ok());
  LoadedModel m = load(dir_ + "/f16.gguf");
  if (fast_kernels_for(DType::F16)) GTEST_SKIP() << "F16 kernels present";
  QuantOptions q;
  q.progress = false;
  Status s = prepare_run_weights(m, q, pool());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("is F16, which this build of herd has no fast kernels for"),
            std::string::npos)
      << s.message();
  q.mode = QuantMode::kInt8;
  s = prepare_run_weights(m, q, pool());
  EXPECT_NE(s.message().find("--quant int8 does not apply"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace herd
