// weight_bytes / decode_bytes_per_token: the bytes each format stores, from the layouts of
// quant/formats.h written out by hand here, and the per-token total of a prepared synthetic
// model against the sum of its members listed one by one.
#include "herd/model/weight_bytes.h"

#include <gtest/gtest.h>

#include "herd/model/run_weights.h"
#include "herd/quant/formats.h"
#include "model/run_weights_test_util.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

TEST(WeightBytes, EveryFormatByItsLayout) {
  static const uint8_t dummy = 0;
  static const float scale = 0;
  for (int64_t cols : {64, 128, 300}) {
    const int64_t rows = 48, G = quant_groups(cols);
    auto ref = [&](DType t) { return WeightRef{t, &dummy, rows, cols, nullptr, nullptr}; };
    EXPECT_EQ(weight_bytes(ref(DType::BF16)), rows * cols * 2);
    EXPECT_EQ(weight_bytes(ref(DType::F32)), rows * cols * 4);
    WeightRef f8 = ref(DType::F8_E4M3);
    f8.row_scale = &scale;
    EXPECT_EQ(weight_bytes(f8), rows * cols + rows * 4);
    WeightRef q8 = ref(DType::Q8G), q4 = ref(DType::Q4G);
    q8.group_scale = q4.group_scale = &scale;
    EXPECT_EQ(weight_bytes(q8), rows * (G * 128 + G * 4));
    EXPECT_EQ(weight_bytes(q4), rows * (G * 64 + G * 4));
    EXPECT_EQ(weight_bytes(ref(DType::BF16T)), rows * ((cols + 31) / 32 * 32) * 2);
    // Interleaved: 16-row records of codes + 16 scales per group, rows padded to 16.
    WeightRef q8i = ref(DType::Q8GI);
    q8i.rows = 40;
    EXPECT_EQ(weight_bytes(q8i), 48 * G * (2048 + 64) / 16);
    WeightRef q4i = ref(DType::Q4GI);
    EXPECT_EQ(weight_bytes(q4i), rows * G * (1024 + 64) / 16);
    EXPECT_EQ(weight_bytes(WeightRef{}), 0);
  }
}

// The members one by one: embedding row, lm_head and final norm, per layer q/k/v/o and two
// norms, then router + one expert + shared (MoE) or the dense FFN.
int64_t listed_bytes(const LoadedModel& m) {
  const Llama4TextConfig& c = m.config.text;
  const TextWeights& t = m.run;
  const int64_t H = c.hidden_size, E = c.num_local_experts;
  int64_t b = weight_bytes(t.embed) / t.embed.rows + weight_bytes(t.lm_head) + H * 4;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const LayerWeights& l = t.layers[size_t(i)];
    b += weight_bytes(l.wq) + weight_bytes(l.wk) + weight_bytes(l.wv) + weight_bytes(l.wo) +
         2 * H * 4;
    if (c.layer_kind(i).moe)
      b += weight_bytes(l.router) +
           (weight_bytes(l.experts_gate_up) + weight_bytes(l.experts_down)) / E +
           weight_bytes(l.shared_gate) + weight_bytes(l.shared_up) + weight_bytes(l.shared_down);
    else
      b += weight_bytes(l.dense_gate) + weight_bytes(l.dense_up) + weight_bytes(l.dense_down);
  }
  return b;
}

TEST(WeightBytes, DecodeBytesPerTokenIsTheSumOfTheMembers) {
  SynthOptions o;
  o.preset = "tiny-interleaved";  // MoE every second layer: dense layers too
  o.text_only = true;
  const std::string dir = testutil::synth_dir("m", o);
  for (QuantMode mode : {QuantMode::kBF16, QuantMode::kInt4, QuantMode::kInt8}) {
    const LoadedModel lm = testutil::load_prepared(dir, mode);
    const LoadedModel* m = &lm;
    bool moe = false, dense = false;
    for (int64_t i = 0; i < m->config.text.num_hidden_layers; ++i)
      (m->config.text.layer_kind(i).moe ? moe : dense) = true;
    EXPECT_TRUE(moe && dense);  // both kinds of layer are counted
    const int64_t b = decode_bytes_per_token(*m);
    EXPECT_GT(b, 0);
    EXPECT_EQ(b, listed_bytes(*m)) << quant_mode_name(mode);
  }
}

}  // namespace
}  // namespace herd
