// The engine end to end: a request whose logits come out non-finite stops with an error that
// names where the activations first became non-finite, and the other requests are unaffected.
#include "herd/runtime/engine.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "model/synth_test_util.h"

namespace herd {
namespace {

TEST(Engine, NonFiniteLogitsStopTheRequestAndNameTheLayer) {
  const std::string dir = testutil::nan_embedding_model(9, 3);
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
