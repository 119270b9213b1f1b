// The engine end to end: a request whose logits come out non-finite stops with an error that
// names where the activations first became non-finite, and the other requests are unaffected.
#include "herd/runtime/engine.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "herd/io/safetensors.h"
#include "herd/model/weights.h"
#include "model/synth_test_util.h"

namespace herd {
namespace {

// A tiny text model whose embedding row of token 9 holds a NaN (column 3).
std::string poisoned_model() {
  SynthOptions o;
  o.text_only = true;
  o.shards = 1;
  const std::string src = testutil::synth_dir("src", o);
  const std::string dst = testutil::fresh_dir("dst");
  auto store = TensorStore::open_dir(src);
  EXPECT_TRUE(store.is_ok());
  std::vector<TensorToWrite> ts;
  std::vector<uint16_t> embed;
  for (const auto& n : (*store)->names()) {
    const TensorView* v = (*store)->find(n);
    ts.push_back({n, v->dtype, v->shape, v->data, {}});
    if (n == "model.embed_tokens.weight") {
      const auto* p = reinterpret_cast<const uint16_t*>(v->data);
      embed.assign(p, p + v->numel());
      embed[size_t(9 * v->shape[1] + 3)] = 0x7FC0;
      ts.back().data = embed.data();
    }
  }
  EXPECT_TRUE(write_safetensors(dst + "/model.safetensors", ts).is_ok());
  for (const char* f : {"config.json", "tokenizer.json", "generation_config.json"})
    if (std::filesystem::exists(src + "/" + f))
      std::filesystem::copy_file(src + "/" + f, dst + "/" + f);
  return dst;
}

TEST(Engine, NonFiniteLogitsStopTheRequestAndNameTheLayer) {
  const std::string dir = poisoned_model();
  for (const char* precision : {"auto", "f32"}) {
    EngineOptions eo;
    eo.model_dir = dir;
    eo.threads = 2;
    eo.progress = false;
    eo.precision = std::string(precision) == "f32" ? Precision::kF32 : Precision::kAuto;
    auto e = Engine::open(eo);
    ASSERT_TRUE(e.is_ok()) << e.status().message();
    Request bad;
    bad.prompt = {1, 2, 9, 3};
    bad.max_tokens = 4;
    Completion bad_done, ok_done;
    bad.on_finish = [&](const Completion& c) { bad_done = c; };
    Request ok;
    ok.prompt = {1, 2, 3};
    ok.max_tokens = 4;
    ok.on_finish = [&](const Completion& c) { ok_done = c; };
    ASSERT_TRUE((*e)->scheduler().submit(std::move(bad)).is_ok());
    ASSERT_TRUE((*e)->scheduler().submit(std::move(ok)).is_ok());
    ASSERT_TRUE((*e)->scheduler().run_until_idle().is_ok());
    EXPECT_EQ(bad_done.reason, FinishReason::kError) << precision;
    EXPECT_NE(bad_done.error.message().find("not finite"), std::string::npos)
        << bad_done.error.message();
    EXPECT_NE(bad_done.error.message().find("the embedding, 'embed' (position 2, column 3)"),
              std::string::npos)
        << bad_done.error.message();
    EXPECT_EQ(ok_done.reason, FinishReason::kLength) << precision;
    EXPECT_EQ(ok_done.generated, 4);
    EXPECT_EQ((*e)->scheduler().global_pool().in_use(), 0);
  }
}

}  // namespace
}  // namespace herd
