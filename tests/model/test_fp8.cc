// FP8 checkpoints in the compressed-tensors layout (spec §2.4), written by `herd synth --fp8`.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "herd/base/mapped_file.h"
#include "herd/io/safetensors.h"
#include "herd/model/run_weights.h"
#include "herd/model/tensor_table.h"
#include "herd/model/text.h"
#include "herd/quant/fp8.h"
#include "herd/runtime/sequence.h"
#include "model/run_weights_test_util.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

std::string synth_fp8(const std::string& preset, int shards = 0) {
  SynthOptions o;
  o.preset = preset;
  o.seed = 3;
  o.fp8 = true;
  o.shards = shards;
  return testutil::synth_dir("fp8", o);
}

// Dequantized value of per-expert tensor `name` at (r, c): fp8 · scale[r].
float fp8_value(const TensorStore& st, const std::string& name, int64_t r, int64_t c) {
  const TensorView* q = st.find(name);
  const TensorView* s = st.find(name + "_scale");
  const float scale =
      weight_at(WeightRef{s->dtype, s->data, s->shape[0], 1, nullptr, nullptr}, r, 0);
  return fp8_e4m3_to_f32(q->data[r * q->shape[1] + c]) * scale;
}

// The BF16-layout twin of an FP8 checkpoint: same tensors, except the routed experts fused
// ([E, H, 2I] / [E, I, H], input-major) holding the dequantized FP8 values in F32 (exact).
std::string write_dequantized_twin(const LoadedModel& m) {
  const std::string dir = testutil::fresh_dir("twin");
  Llama4Config cfg = m.config;
  cfg.quantization_json.clear();
  EXPECT_TRUE(
      write_text_file((fs::path(dir) / "config.json").string(), config_to_json(cfg)).is_ok());
  for (const char* f : {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json"})
    fs::copy_file(fs::path(m.dir) / f, fs::path(dir) / f);
  const Llama4TextConfig& t = cfg.text;
  const int64_t E = t.num_local_experts, H = t.hidden_size, I = t.intermediate_size;
  std::vector<TensorToWrite> tensors;
  for (const TensorSpec& s : tensor_table(cfg)) {
    if (s.role != TensorRole::kExpertsGateUp && s.role != TensorRole::kExpertsDown) {
      const TensorView* v = m.store->find(s.name);
      tensors.push_back(TensorToWrite{s.name, v->dtype, v->shape, v->data, {}});
      continue;
    }
    const std::string base = s.name.substr(0, s.name.rfind('.') + 1);
    const bool gu = s.role == TensorRole::kExpertsGateUp;
    TensorToWrite w{s.name, DType::F32, s.shape, nullptr, {}};
    const TensorStore* st = m.store.get();
    w.fill = [=](uint8_t* dst) {
      float* f = reinterpret_cast<float*>(dst);
      const int64_t in = gu ? H : I, out = gu ? 2 * I : H;
      for (int64_t e = 0; e < E; ++e)
        for (int64_t i = 0; i < in; ++i)
          for (int64_t o = 0; o < out; ++o) {
            const std::string proj = gu ? (o < I ? "gate_proj" : "up_proj") : "down_proj";
            const int64_t row = gu && o >= I ? o - I : o;
            f[(e * in + i) * out + o] =
                fp8_value(*st, base + std::to_string(e) + "." + proj + ".weight", row, i);
          }
    };
    tensors.push_back(std::move(w));
  }
  Status s = write_sharded_safetensors(dir, tensors, 1);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return dir;
}

class Fp8 : public ::testing::TestWithParam<std::string> {};

TEST_P(Fp8, LoadsWithPerExpertTensorsAndConfig) {
  const std::string dir = synth_fp8(GetParam());
  auto m = load_model(dir);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_TRUE(has_per_expert_tensors(m->config, *m->store));
  EXPECT_NE(m->config.quantization_json.find("compressed-tensors"), std::string::npos);
  const auto table = text_tensor_table_per_expert(m->config);
  int fp8 = 0;
  for (const TensorSpec& s : table) {
    const TensorView* v = m->store->find(s.name);
    ASSERT_NE(v, nullptr) << s.name;
    EXPECT_EQ(v->shape, s.shape) << s.name;
    if (s.expert >= 0) {
      EXPECT_EQ(v->dtype, DType::F8_E4M3) << s.name;
      const TensorView* sc = m->store->find(s.name + "_scale");
      ASSERT_NE(sc, nullptr);
      EXPECT_EQ(sc->shape, (std::vector<int64_t>{s.shape[0], 1}));
      ++fp8;
    } else {
      EXPECT_EQ(v->dtype, DType::BF16) << s.name;
    }
  }
  EXPECT_EQ(fp8, int(m->config.text.moe_layers.size() * m->config.text.num_local_experts * 3));
  // The reference's fused experts only exist once asked for.
  const int64_t moe0 = m->config.text.moe_layers.at(0);
  EXPECT_EQ(m->text.layers[size_t(moe0)].experts_gate_up.data, nullptr);
}

TEST_P(Fp8, ReferenceLogitsEqualThoseOfTheDequantizedTwin) {
  const std::string dir = synth_fp8(GetParam());
  auto m = load_model(dir);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  ASSERT_TRUE(prepare_reference_weights(*m, pool).is_ok());
  auto twin = load_model(write_dequantized_twin(*m));
  ASSERT_TRUE(twin.is_ok()) << twin.status().message();
  TextDecoder a(*m, pool, Precision::kF32), b(*twin, pool, Precision::kF32);
  std::vector<int32_t> toks = {1, 9, 77, 4, 123, 31, 8};
  std::vector<float> la(static_cast<size_t>(a.vocab_size())),
      lb(static_cast<size_t>(b.vocab_size()));
  Sequence sa(a, 8), sb(b, 8);
  ASSERT_TRUE(sa.append_last(toks, la.data()).is_ok());
  ASSERT_TRUE(sb.append_last(toks, lb.data()).is_ok());
  EXPECT_EQ(la, lb);  // exact: fp8 · scale is one f32 product on both sides
}

TEST_P(Fp8, RunWeightsKeepFp8OrRequantize) {
  const std::string dir = synth_fp8(GetParam());
  for (QuantMode mode : {QuantMode::kBF16, QuantMode::kInt8, QuantMode::kInt4}) {
    auto m = load_model(dir);
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    ThreadPool pool(2);
    ASSERT_TRUE(prepare_run_weights(*m, {mode, false}, pool).is_ok());
    EXPECT_EQ(m->run_format, mode == QuantMode::kBF16 ? "fp8" : quant_mode_name(mode));
    const Llama4TextConfig& t = m->config.text;
    const int64_t E = t.num_local_experts, H = t.hidden_size, I = t.intermediate_size;
    const DType want =
        mode == QuantMode::kBF16 ? DType::F8_E4M3 : run_dtype(mode, WeightClass::kExpert);
    for (int64_t l : t.moe_layers) {
      const LayerWeights& r = m->run.layers[size_t(l)];
      const std::string base =
          m->config.text_prefix() + "model.layers." + std::to_string(l) + ".feed_forward.experts.";
      const TensorStore& st = *m->store;
      if (want == DType::F8_E4M3) {
        ASSERT_NE(r.experts_gate_up.row_scale, nullptr);
        ASSERT_EQ(r.experts_gate_up.dtype, DType::F8_E4M3);
      }
      // The FP8 run matrices dequantize exactly to fp8 · scale (F8 compare is exact equality).
      testutil::expect_run_matrix(
          "gate_up", r.experts_gate_up, want, E * 2 * I, H, [&](int64_t row, int64_t col) {
            const int64_t e = row / (2 * I), o = row % (2 * I);
            return fp8_value(
                st, base + std::to_string(e) + (o < I ? ".gate_proj" : ".up_proj") + ".weight",
                o % I, col);
          });
      testutil::expect_run_matrix(
          "down", r.experts_down, want, E * H, I, [&](int64_t row, int64_t col) {
            return fp8_value(st, base + std::to_string(row / H) + ".down_proj.weight", row % H,
                             col);
          });
    }
  }
}

// The fast path reads the FP8 experts directly (F8_E4M3 + row_scale) and tracks the reference.
TEST_P(Fp8, FastPathOnFp8RunWeightsTracksReference) {
  auto m = load_model(synth_fp8(GetParam()));
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  ASSERT_TRUE(prepare_reference_weights(*m, pool).is_ok());
  ASSERT_TRUE(prepare_run_weights(*m, {QuantMode::kBF16, false}, pool).is_ok());
  TextDecoder ref(*m, pool, Precision::kF32), fast(*m, pool, Precision::kAuto);
  std::vector<int32_t> toks = {2, 71, 18, 28};
  std::vector<float> a(static_cast<size_t>(ref.vocab_size())), b(a.size());
  Sequence sa(ref, 4), sb(fast, 4);
  ASSERT_TRUE(sa.append_last(toks, a.data()).is_ok());
  ASSERT_TRUE(sb.append_last(toks, b.data()).is_ok());
  double max_diff = 0, max_abs = 0;
  for (size_t v = 0; v < a.size(); ++v) {
    max_diff = std::max(max_diff, double(std::fabs(a[v] - b[v])));
    max_abs = std::max(max_abs, double(std::fabs(a[v])));
  }
  // W8A16: only the bf16 rounding of activations differs (spec §2.4 on W8A8 vs W8A16).
  EXPECT_LT(max_diff, 0.05 * max_abs);
}

INSTANTIATE_TEST_SUITE_P(Presets, Fp8, ::testing::Values("tiny", "tiny-interleaved"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(Fp8Errors, MissingWeightScaleNamesTheTensor) {
  const std::string dir = synth_fp8("tiny", 1);
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  std::string dropped;
  {
    auto f = SafetensorsFile::open(path);
    ASSERT_TRUE(f.is_ok());
    std::vector<TensorToWrite> keep;
    std::vector<std::vector<uint8_t>> copies;
    copies.reserve((*f)->tensors().size());
    for (const TensorView& v : (*f)->tensors()) {
      if (dropped.empty() && v.name.ends_with("experts.1.up_proj.weight_scale")) {
        dropped = v.name;
        continue;
      }
      copies.emplace_back(v.data, v.data + v.nbytes);
      keep.push_back(TensorToWrite{v.name, v.dtype, v.shape, copies.back().data(), {}});
    }
    f = Result<std::unique_ptr<SafetensorsFile>>(Status::error("closed"));
    ASSERT_TRUE(write_safetensors(path, keep).is_ok());
  }
  ASSERT_FALSE(dropped.empty());
  auto m = load_model(dir);
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find(dropped), std::string::npos) << m.status().message();
}

TEST(Fp8Encode, MatchesTheScalarConversion) {
  // Every code's value, every midpoint between neighbours, and values around them.
  std::vector<float> xs = {0.0f, -0.0f, 1e-9f, 500.0f, -1000.0f, 448.0f, 449.0f};
  for (int c = 0; c < 127; ++c) {
    const float v = fp8_e4m3_to_f32(uint8_t(c)), w = fp8_e4m3_to_f32(uint8_t(c + 1));
    for (float x : {v, 0.5f * (v + w), std::nextafter(0.5f * (v + w), 0.0f),
                    std::nextafter(0.5f * (v + w), 1e9f)}) {
      xs.push_back(x);
      xs.push_back(-x);
    }
  }
  for (float x : xs) EXPECT_EQ(fp8_e4m3_encode(x), f32_to_fp8_e4m3(x)) << x;
}

}  // namespace
}  // namespace herd
