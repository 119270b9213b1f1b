// prepare_run_weights on synthetic checkpoints: every run matrix against the stored weight it
// came from (transposed for the experts), dtypes per --quant policy (model/run_weights.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "herd/model/run_weights.h"
#include "herd/model/run_weights_internal.h"
#include "herd/model/text.h"
#include "herd/runtime/kv_cache.h"
#include "herd/runtime/sequence.h"
#include "model/run_weights_test_util.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

using testutil::expect_run_matrix;
using testutil::load_prepared;

const std::string& synth_once(const std::string& preset) {
  static std::map<std::string, std::string> dirs;
  auto& d = dirs[preset];
  if (d.empty()) {
    SynthOptions o;
    o.preset = preset;
    o.seed = 11;
    o.out_dir = (std::filesystem::path(::testing::TempDir()) /
                 ("herd_run_weights_" + preset + "_" + std::to_string(getpid())))
                    .string();
    Status s = synth_model(o);
    EXPECT_TRUE(s.is_ok()) << s.message();
    d = o.out_dir;
  }
  return d;
}

// A stored nn.Linear matrix as the source of a run matrix.
std::function<float(int64_t, int64_t)> same(const WeightRef& w) {
  return [w](int64_t r, int64_t c) { return weight_at(w, r, c); };
}

void expect_linear(const std::string& what, const WeightRef& run, const WeightRef& text,
                   DType dtype) {
  expect_run_matrix(what, run, dtype, text.rows, text.cols, same(text));
  // Stored BF16 kept as BF16 is a view, never a copy (tiled BF16T is a converted copy).
  if (dtype == DType::BF16 && text.dtype == DType::BF16 && run.dtype == DType::BF16) {
    EXPECT_EQ(run.data, text.data) << what;
  }
}

struct Case {
  std::string preset;
  QuantMode mode;
};

class RunWeights : public ::testing::TestWithParam<Case> {};

TEST_P(RunWeights, EveryMatrixMatchesItsStoredWeight) {
  const Case& c = GetParam();
  const LoadedModel m = load_prepared(synth_once(c.preset), c.mode);
  ASSERT_TRUE(m.has_run);
  EXPECT_EQ(m.run_format, quant_mode_name(c.mode));
  const Llama4TextConfig& t = m.config.text;
  const int64_t E = t.num_local_experts, H = t.hidden_size, I = t.intermediate_size;
  const DType attn = run_dtype(c.mode, WeightClass::kAttention);
  const DType ex = run_dtype(c.mode, WeightClass::kExpert);
  const DType dense = run_dtype(c.mode, WeightClass::kDense);
  // Policy (spec §2.3 and the --quant table): spelled out once more so a change is deliberate.
  switch (c.mode) {
    case QuantMode::kBF16:
      EXPECT_EQ(attn, DType::BF16);
      EXPECT_EQ(ex, DType::BF16);
      break;
    case QuantMode::kInt8:
      EXPECT_EQ(attn, DType::Q8G);
      EXPECT_EQ(ex, DType::Q8G);
      break;
    case QuantMode::kInt4:
      EXPECT_EQ(attn, DType::BF16);
      EXPECT_EQ(ex, DType::Q4G);
      EXPECT_EQ(dense, DType::BF16);
      break;
    case QuantMode::kInt4All:
      EXPECT_EQ(attn, DType::Q4G);
      EXPECT_EQ(ex, DType::Q4G);
      EXPECT_EQ(dense, DType::Q4G);
      break;
    case QuantMode::kQ8_0:  // llama.cpp's block formats, every matrix (the --pure mix)
      EXPECT_EQ(attn, DType::GGUF_Q8_0);
      EXPECT_EQ(ex, DType::GGUF_Q8_0);
      EXPECT_EQ(dense, DType::GGUF_Q8_0);
      break;
    case QuantMode::kQ4_0:
      EXPECT_EQ(attn, DType::GGUF_Q4_0);
      EXPECT_EQ(ex, DType::GGUF_Q4_0);
      EXPECT_EQ(dense, DType::GGUF_Q4_0);
      break;
  }
  EXPECT_EQ(run_dtype(c.mode, WeightClass::kShared), ex);
  EXPECT_EQ(run_dtype(c.mode, WeightClass::kLmHead), attn);

  expect_linear("embed", m.run.embed, m.text.embed, DType::BF16);
  EXPECT_EQ(m.run.embed.data, m.text.embed.data);
  expect_linear("lm_head", m.run.lm_head, m.text.lm_head, attn);
  EXPECT_EQ(m.run.final_norm, m.text.final_norm);
  ASSERT_EQ(m.run.layers.size(), m.text.layers.size());
  for (size_t i = 0; i < m.text.layers.size(); ++i) {
    const LayerWeights& s = m.text.layers[i];
    const LayerWeights& r = m.run.layers[i];
    const std::string L = "layer " + std::to_string(i) + " ";
    EXPECT_EQ(r.attn_norm, s.attn_norm);
    EXPECT_EQ(r.ffn_norm, s.ffn_norm);
    expect_linear(L + "wq", r.wq, s.wq, attn);
    expect_linear(L + "wk", r.wk, s.wk, attn);
    expect_linear(L + "wv", r.wv, s.wv, attn);
    expect_linear(L + "wo", r.wo, s.wo, attn);
    if (t.layer_kind(int64_t(i)).moe) {
      expect_linear(L + "router", r.router, s.router, DType::BF16);
      expect_linear(L + "shared_gate", r.shared_gate, s.shared_gate, ex);
      expect_linear(L + "shared_up", r.shared_up, s.shared_up, ex);
      expect_linear(L + "shared_down", r.shared_down, s.shared_down, ex);
      // Run row e*2I + o is column o of expert e's stored [H, 2I]: gate rows, then up rows.
      const WeightRef gu = s.experts_gate_up, dn = s.experts_down;
      expect_run_matrix(L + "experts_gate_up", r.experts_gate_up, ex, E * 2 * I, H,
                        [&](int64_t row, int64_t col) {
                          const int64_t e = row / (2 * I), o = row % (2 * I);
                          return weight_at(gu, e * H + col, o);
                        });
      expect_run_matrix(L + "experts_down", r.experts_down, ex, E * H, I,
                        [&](int64_t row, int64_t col) {
                          const int64_t e = row / H, o = row % H;
                          return weight_at(dn, e * I + col, o);
                        });
    } else {
      expect_linear(L + "dense_gate", r.dense_gate, s.dense_gate, dense);
      expect_linear(L + "dense_up", r.dense_up, s.dense_up, dense);
      expect_linear(L + "dense_down", r.dense_down, s.dense_down, dense);
    }
  }
}

TEST_P(RunWeights, ConversionCounterAndIdempotence) {
  const Case& c = GetParam();
  auto m = load_model(synth_once(c.preset));
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  QuantOptions q{c.mode, false};
  const uint64_t before = run_weight_conversions();
  ASSERT_TRUE(prepare_run_weights(*m, q, pool).is_ok());
  EXPECT_GT(run_weight_conversions(), before);  // the experts are always repacked
  const uint64_t after = run_weight_conversions();
  ASSERT_TRUE(prepare_run_weights(*m, q, pool).is_ok());  // same format: nothing to do
  EXPECT_EQ(run_weight_conversions(), after);
  QuantOptions other{c.mode == QuantMode::kInt8 ? QuantMode::kInt4 : QuantMode::kInt8, false};
  Status s = prepare_run_weights(*m, other, pool);
  EXPECT_FALSE(s.is_ok());
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (const char* p : {"tiny", "tiny-interleaved"})
    for (QuantMode q : {QuantMode::kBF16, QuantMode::kInt8, QuantMode::kInt4, QuantMode::kInt4All})
      out.push_back({p, q});
  // llama.cpp's 32-element blocks need every input width a multiple of 32 (tiny-interleaved's
  // experts have 16: RunWeightsErrors below).
  for (QuantMode q : {QuantMode::kQ8_0, QuantMode::kQ4_0}) out.push_back({"tiny", q});
  return out;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.preset + "_" + std::string(quant_mode_name(info.param.mode));
  for (char& ch : n)
    if (ch == '-') ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Presets, RunWeights, ::testing::ValuesIn(all_cases()), case_name);

// A width that is not whole blocks of 32 is refused by name, not quantized with a ragged block.
TEST(RunWeightsErrors, BlockFormatsNameTheWidthThatIsNotWholeBlocks) {
  for (QuantMode q : {QuantMode::kQ8_0, QuantMode::kQ4_0}) {
    auto m = load_model(synth_once("tiny-interleaved"));
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    ThreadPool pool(2);
    QuantOptions o;
    o.mode = q;
    o.progress = false;
    const Status s = prepare_run_weights(*m, o, pool);
    ASSERT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("blocks of 32"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("intermediate_size is 16"), std::string::npos) << s.message();
  }
}

// The fast path over bf16 run weights computes what the f32 reference computes, up to the bf16
// rounding of activations (a check that the repacked layout is the one the decoder reads).
TEST(RunWeightsDecoder, Bf16FastPathTracksReference) {
  for (const char* preset : {"tiny", "tiny-interleaved"}) {
    LoadedModel m = load_prepared(synth_once(preset), QuantMode::kBF16);
    ThreadPool pool(2);
    TextDecoder ref(m, pool, Precision::kF32), fast(m, pool, Precision::kAuto);
    ASSERT_EQ(fast.precision(), Precision::kAuto);
    const int64_t V = ref.vocab_size(), n = 6;
    std::vector<int32_t> toks = {1, 17, 99, 5, 250, 42};
    std::vector<float> a(static_cast<size_t>(V)), b(static_cast<size_t>(V));
    Sequence sa(ref, n), sb(fast, n);
    ASSERT_TRUE(sa.append_last(toks, a.data()).is_ok());
    ASSERT_TRUE(sb.append_last(toks, b.data()).is_ok());
    double max_diff = 0, max_abs = 0;
    for (int64_t v = 0; v < V; ++v) {
      max_diff = std::max(max_diff, double(std::fabs(a[size_t(v)] - b[size_t(v)])));
      max_abs = std::max(max_abs, double(std::fabs(a[size_t(v)])));
    }
    // Logits have std ≈ 2 (synth.h); bf16 activations over 4 layers move them by ~1e-2.
    EXPECT_LT(max_diff, 0.05 * max_abs) << preset;
  }
}

// Owned buffers: small ones from malloc (64-byte aligned), large ones their own 2 MiB aligned
// mapping advised for huge pages ("hg" in its smaps VmFlags); every byte writable and kept, and
// the mappings gone with the model.
std::string vm_flags_at(const void* addr) {  // "" when no mapping holds addr
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<uintptr_t>(addr);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find('-') < 17)
      inside = a >= lo && a < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      return line;
  }
  return "";
}

TEST(RunWeightsOwned, LargeBuffersAreHugePageAlignedMappings) {
  std::vector<uint8_t*> large;
  {
    LoadedModel m;
    const size_t sizes[] = {100, size_t(1) << 20, (size_t(8) << 20) + 12345, size_t(40) << 20};
    std::vector<uint8_t*> ptrs;
    for (size_t n : sizes) {
      uint8_t* p = run_internal::alloc_owned(m, n);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
      for (size_t i = 0; i < n; i += 4093) p[i] = uint8_t(i * 31);
      p[n - 1] = 0x5A;
      ptrs.push_back(p);
      if (n < (size_t(8) << 20)) continue;
      large.push_back(p);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (size_t(2) << 20), 0u);
      const std::string flags = vm_flags_at(p);
      EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
      EXPECT_NE(vm_flags_at(p + n - 1), "");  // the last byte is mapped
    }
    for (size_t k = 0; k < ptrs.size(); ++k) {
      for (size_t i = 0; i < sizes[k] - 1; i += 4093) ASSERT_EQ(ptrs[k][i], uint8_t(i * 31));
      EXPECT_EQ(ptrs[k][sizes[k] - 1], 0x5A);
      EXPECT_EQ(m.owned[k].bytes, sizes[k]);
    }
  }
  for (uint8_t* p : large) EXPECT_EQ(vm_flags_at(p), "") << "still mapped after the model";
}

}  // namespace
}  // namespace herd
