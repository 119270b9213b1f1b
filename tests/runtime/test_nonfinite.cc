// Non-finite logits at run time (runtime/nonfinite.h): the cheap check, and the f32 re-run that
// names the first layer and intermediate where activations became NaN / Inf, on synth models
// with one weight poisoned.
#include "herd/runtime/nonfinite.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <vector>

#include "herd/io/safetensors.h"
#include "herd/io/tensor_scan.h"
#include "herd/model/run_weights.h"
#include "herd/model/weights.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();

TEST(NonFinite, AllFinite) {
  std::vector<float> x(37, 1.0f);
  EXPECT_TRUE(all_finite(x.data(), int64_t(x.size())));
  EXPECT_TRUE(all_finite(x.data(), 0));
  for (size_t i = 0; i < x.size(); ++i) {
    for (float bad :
         {kNan, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
      x[i] = bad;
      EXPECT_FALSE(all_finite(x.data(), int64_t(x.size()))) << i;
      x[i] = 1.0f;
    }
  }
  x[3] = std::numeric_limits<float>::max();
  x[4] = std::numeric_limits<float>::denorm_min();
  EXPECT_TRUE(all_finite(x.data(), int64_t(x.size())));
}

// What the check costs per generated token on Llama 4's vocabulary (printed for the record;
// the bound only catches a pathological regression).
TEST(NonFinite, AllFiniteCostPerToken) {
  std::vector<float> row(202048, 0.5f);
  const int reps = 200;
  bool ok = true;
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) {
    row[size_t(r)] = float(r);  // keeps the calls from being folded together
    ok &= all_finite(row.data(), int64_t(row.size()));
  }
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
      reps;
  EXPECT_TRUE(ok);
  std::printf("all_finite over 202048 logits: %.1f us per token\n", us);
  EXPECT_LT(us, 5000.0);
}

SynthOptions tiny_text() {
  SynthOptions o;
  o.text_only = true;
  o.shards = 1;
  return o;
}

TEST(NonFinite, HealthyModelIsFiniteEverywhere) {
  const std::string dir = testutil::synth_dir("ok", tiny_text());
  auto m = load_model(dir);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  ASSERT_TRUE(prepare_reference_weights(*m, pool).is_ok());
  const std::vector<int32_t> tokens = {1, 2, 3, 4};
  auto o = find_nonfinite_origin(*m, pool, tokens);
  ASSERT_TRUE(o.is_ok()) << o.status().message();
  EXPECT_FALSE(o->found);
  EXPECT_NE(o->message().find("every activation and the logits are finite"), std::string::npos);
}

TEST(NonFinite, NaNNormGainIsFoundAtItsLayer) {
  const std::string dir = testutil::synth_dir("norm", tiny_text());
  auto m = load_model(dir);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  ASSERT_TRUE(prepare_reference_weights(*m, pool).is_ok());
  // Norm gains are f32 copies made at load: poison column 5 of layer 2's post-attention norm.
  m->text.layers[2].ffn_norm[5] = kNan;
  const std::vector<int32_t> tokens = {7, 8, 9};
  auto o = find_nonfinite_origin(*m, pool, tokens);
  ASSERT_TRUE(o.is_ok()) << o.status().message();
  ASSERT_TRUE(o->found);
  EXPECT_EQ(o->layer, 2);
  EXPECT_EQ(o->name, "ffn_norm");
  EXPECT_EQ(o->position, 0);
  EXPECT_EQ(o->column, 5);
  EXPECT_EQ(o->message(),
            "activations first became non-finite in layer 2, 'ffn_norm' (position 0, column 5)");
}

// A poisoned embedding row only shows where its token is used, and `herd verify`'s scanner
// finds the same tensor on disk.
TEST(NonFinite, NaNEmbeddingRowIsFoundAtItsPosition) {
  const std::string dst = testutil::nan_embedding_model(9, 3);  // token 9's row, column 3

  auto m = load_model(dst);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  ASSERT_TRUE(prepare_reference_weights(*m, pool).is_ok());
  const std::vector<int32_t> clean = {1, 2, 3};
  auto o = find_nonfinite_origin(*m, pool, clean);
  ASSERT_TRUE(o.is_ok());
  EXPECT_FALSE(o->found);
  const std::vector<int32_t> tokens = {1, 2, 9, 3};
  o = find_nonfinite_origin(*m, pool, tokens);
  ASSERT_TRUE(o.is_ok()) << o.status().message();
  ASSERT_TRUE(o->found);
  EXPECT_EQ(o->layer, -1);
  EXPECT_EQ(o->name, "embed");
  EXPECT_EQ(o->position, 2);
  EXPECT_EQ(o->column, 3);
  EXPECT_NE(o->message().find("in the embedding, 'embed' (position 2, column 3)"),
            std::string::npos)
      << o->message();

  const ScanResult scan = scan_nonfinite(*m->store, pool);
  ASSERT_EQ(scan.bad.size(), 1u);
  EXPECT_EQ(scan.bad[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(scan.bad[0].count, 1);
  EXPECT_EQ(scan.bad[0].first_index, 9 * m->config.text.hidden_size + 3);
}

}  // namespace
}  // namespace herd
