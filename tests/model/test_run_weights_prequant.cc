// `herd quantize` files: save -> load maps the run format back bit-exactly, with no conversion.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "herd/convert/prequant_save.h"
#include "herd/model/run_weights.h"
#include "herd/model/tensor_table.h"
#include "herd/model/text.h"
#include "herd/ops/cpu_features.h"
#include "herd/quant/formats.h"
#include "herd/runtime/sequence.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

size_t matrix_bytes(const WeightRef& w) {
  return size_t(w.rows) * size_t(encoded_row_bytes(w.dtype, w.cols));
}

void expect_same(const std::string& what, const WeightRef& a, const WeightRef& b) {
  // Files hold Q8G / Q4G; a run prepared on an AVX-512 VNNI machine holds them 16 rows
  // interleaved (Q8GI / Q4GI): the same codes and scales row by row.
  if (is_interleaved(a.dtype) && b.dtype == code_format(a.dtype)) {
    ASSERT_EQ(a.rows, b.rows) << what;
    ASSERT_EQ(a.cols, b.cols) << what;
    const int64_t rb = packed_row_bytes(b.dtype, b.cols), G = quant_groups(b.cols);
    std::vector<uint8_t> codes(static_cast<size_t>(rb));
    std::vector<float> scales(static_cast<size_t>(G));
    for (int64_t r = 0; r < a.rows; ++r) {
      deinterleave_row(static_cast<const uint8_t*>(a.data), a.dtype, a.cols, r, codes.data(),
                       scales.data());
      ASSERT_EQ(std::memcmp(codes.data(), static_cast<const uint8_t*>(b.data) + r * rb, size_t(rb)),
                0)
          << what << ": codes of row " << r << " differ";
      ASSERT_EQ(std::memcmp(scales.data(), b.group_scale + r * G, size_t(G) * sizeof(float)), 0)
          << what << ": scales of row " << r << " differ";
    }
    return;
  }
  ASSERT_EQ(a.dtype, b.dtype) << what;
  ASSERT_EQ(a.rows, b.rows) << what;
  ASSERT_EQ(a.cols, b.cols) << what;
  EXPECT_EQ(std::memcmp(a.data, b.data, matrix_bytes(a)), 0) << what << ": bytes differ";
  ASSERT_EQ(a.group_scale == nullptr, b.group_scale == nullptr) << what;
  if (a.group_scale) {
    EXPECT_EQ(std::memcmp(a.group_scale, b.group_scale,
                          size_t(a.rows * quant_groups(a.cols)) * sizeof(float)),
              0)
        << what << ": scales differ";
  }
  ASSERT_EQ(a.row_scale == nullptr, b.row_scale == nullptr) << what;
  if (a.row_scale) {
    EXPECT_EQ(std::memcmp(a.row_scale, b.row_scale, size_t(a.rows) * sizeof(float)), 0) << what;
  }
}

void expect_same_run(const TextWeights& a, const TextWeights& b) {
  expect_same("embed", a.embed, b.embed);
  expect_same("lm_head", a.lm_head, b.lm_head);
  EXPECT_EQ(a.final_norm, b.final_norm);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const LayerWeights &x = a.layers[i], &y = b.layers[i];
    const std::string L = "layer " + std::to_string(i) + " ";
    EXPECT_EQ(x.attn_norm, y.attn_norm) << L;
    EXPECT_EQ(x.ffn_norm, y.ffn_norm) << L;
    const std::pair<const char*, WeightRef LayerWeights::*> mats[] = {
        {"wq", &LayerWeights::wq},
        {"wk", &LayerWeights::wk},
        {"wv", &LayerWeights::wv},
        {"wo", &LayerWeights::wo},
        {"router", &LayerWeights::router},
        {"experts_gate_up", &LayerWeights::experts_gate_up},
        {"experts_down", &LayerWeights::experts_down},
        {"shared_gate", &LayerWeights::shared_gate},
        {"shared_up", &LayerWeights::shared_up},
        {"shared_down", &LayerWeights::shared_down},
        {"dense_gate", &LayerWeights::dense_gate},
        {"dense_up", &LayerWeights::dense_up},
        {"dense_down", &LayerWeights::dense_down}};
    for (const auto& [name, member] : mats) {
      if (!(x.*member).data && !(y.*member).data) continue;
      expect_same(L + name, x.*member, y.*member);
    }
  }
}

class Prequantized : public ::testing::TestWithParam<std::tuple<std::string, QuantMode>> {};

TEST_P(Prequantized, SaveLoadIsBitExactAndConvertsNothing) {
  const auto& [preset, mode] = GetParam();
  SynthOptions so;
  so.preset = preset;
  so.seed = 5;
  const std::string src = testutil::synth_dir("src", so);
  const std::string out = testutil::fresh_dir("out");
  auto m = load_model(src);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  QuantOptions q{mode, false};
  ASSERT_TRUE(prepare_run_weights(*m, q, pool).is_ok());
  Status s = save_prequantized(*m, out);
  ASSERT_TRUE(s.is_ok()) << s.message();
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json",
                        "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;

  const uint64_t before = run_weight_conversions();
  auto p = load_model(out);
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  EXPECT_TRUE(is_herd_prequantized(p->config));
  ASSERT_TRUE(p->has_run);
  EXPECT_EQ(p->run_format, quant_mode_name(mode));
  EXPECT_TRUE(prepare_run_weights(*p, q, pool).is_ok());  // already in this format: no-op
  EXPECT_EQ(run_weight_conversions(), before) << "a pre-quantized model must not convert";
  expect_same_run(m->run, p->run);

  // The reference needs the original checkpoint.
  Status r = prepare_reference_weights(*p, pool);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.message().find("is pre-quantized (" + std::string(quant_mode_name(mode)) +
                             "): the f32 reference needs the original BF16 checkpoint"),
            std::string::npos)
      << r.message();
  QuantOptions other{mode == QuantMode::kInt8 ? QuantMode::kInt4 : QuantMode::kInt8, false};
  EXPECT_FALSE(prepare_run_weights(*p, other, pool).is_ok());

  // Both run the same fast forward pass to the same logits.
  TextDecoder a(*m, pool, Precision::kAuto), b(*p, pool, Precision::kAuto);
  std::vector<int32_t> toks = {3, 14, 15, 92};
  std::vector<float> la(static_cast<size_t>(a.vocab_size())),
      lb(static_cast<size_t>(b.vocab_size()));
  Sequence sa(a, 4), sb(b, 4);
  ASSERT_TRUE(sa.append_last(toks, la.data()).is_ok());
  ASSERT_TRUE(sb.append_last(toks, lb.data()).is_ok());
  EXPECT_EQ(la, lb);
}

INSTANTIATE_TEST_SUITE_P(All, Prequantized,
                         ::testing::Combine(::testing::Values("tiny", "tiny-interleaved"),
                                            ::testing::Values(QuantMode::kBF16, QuantMode::kInt8,
                                                              QuantMode::kInt4,
                                                              QuantMode::kInt4All)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + "_" +
                                           std::string(quant_mode_name(std::get<1>(info.param)));
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(PrequantizedFile, PackedTensorHasLogicalShapeAndPackedSize) {
  SynthOptions so;
  so.preset = "tiny";
  const std::string src = testutil::synth_dir("src", so);
  const std::string out = testutil::fresh_dir("out");
  auto m = load_model(src);
  ASSERT_TRUE(m.is_ok());
  ThreadPool pool(1);
  ASSERT_TRUE(prepare_run_weights(*m, {QuantMode::kInt4, false}, pool).is_ok());
  ASSERT_TRUE(save_prequantized(*m, out, 1).is_ok());
  auto st = TensorStore::open_dir(out);
  ASSERT_TRUE(st.is_ok()) << st.status().message();
  const Llama4TextConfig& t = m->config.text;
  const std::string n = "language_model.model.layers.0.feed_forward.experts.run_gate_up.weight";
  const TensorView* v = (*st)->find(n);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->dtype, DType::Q4G);
  EXPECT_EQ(v->shape,
            (std::vector<int64_t>{t.num_local_experts * 2 * t.intermediate_size, t.hidden_size}));
  EXPECT_EQ(v->nbytes, size_t(v->shape[0] * packed_row_bytes(DType::Q4G, t.hidden_size)));
  const TensorView* sc = (*st)->find(n + ".scales");
  ASSERT_NE(sc, nullptr);
  EXPECT_EQ(sc->dtype, DType::F32);
  EXPECT_EQ(sc->shape, (std::vector<int64_t>{v->shape[0], quant_groups(t.hidden_size)}));
  // Attention stays bf16 under int4 and keeps its Hugging Face name; on AMX and AVX512_BF16
  // machines in 16-row tiles (HERD_BF16T: logical shape, padded K).
  const TensorView* q = (*st)->find("language_model.model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  const bool tiles =
      active_isa() == Isa::kAmx || (active_isa() == Isa::kAvx512Vnni && cpu_features().avx512bf16);
  EXPECT_EQ(q->dtype, tiles ? DType::BF16T : DType::BF16);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{t.num_attention_heads * t.head_dim, t.hidden_size}));
  if (q->dtype == DType::BF16T) {
    EXPECT_EQ(q->nbytes, size_t(q->shape[0] * packed_row_bytes(DType::BF16T, t.hidden_size)));
  }
}

}  // namespace
}  // namespace herd
