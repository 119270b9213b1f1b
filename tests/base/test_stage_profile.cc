// The stage timers behind `herd bench --profile`: nothing is recorded while off, nested and
// consecutive stages add their wall time and calls, and a take resets the totals.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "herd/base/stage_profile.h"

namespace herd {
namespace {

using namespace std::chrono_literals;

TEST(StageProfile, OffRecordsNothing) {
  stage_profile_enable(false);
  { StageScope s(Stage::kNorm); }
  const StageTotals t = stage_profile_take();
  for (size_t i = 0; i < kStageCount; ++i) EXPECT_EQ(t.calls[i], 0) << stage_name(Stage(i));
}

TEST(StageProfile, NestedAndConsecutiveStagesAddUp) {
  stage_profile_enable(true);
  {
    StageScope whole(Stage::kForward);
    StageScope steps(Stage::kQkv);
    std::this_thread::sleep_for(2ms);
    steps.to(Stage::kAttention);
    std::this_thread::sleep_for(1ms);
    steps.stop();
    { StageScope inner(Stage::kNorm); }
  }
  const StageTotals t = stage_profile_take();
  stage_profile_enable(false);
  EXPECT_EQ(t.calls[size_t(Stage::kForward)], 1);
  EXPECT_EQ(t.calls[size_t(Stage::kQkv)], 1);
  EXPECT_EQ(t.calls[size_t(Stage::kAttention)], 1);
  EXPECT_EQ(t.calls[size_t(Stage::kNorm)], 1);
  EXPECT_GE(t.ns[size_t(Stage::kQkv)], 2'000'000);
  EXPECT_GE(t.ns[size_t(Stage::kAttention)], 1'000'000);
  // The parts of a step never exceed the step.
  EXPECT_GE(
      t.ns[size_t(Stage::kForward)],
      t.ns[size_t(Stage::kQkv)] + t.ns[size_t(Stage::kAttention)] + t.ns[size_t(Stage::kNorm)]);
  const StageTotals again = stage_profile_take();
  EXPECT_EQ(again.calls[size_t(Stage::kForward)], 0);
  EXPECT_EQ(again.ns[size_t(Stage::kQkv)], 0);
}

TEST(StageProfile, EveryStageHasAName) {
  for (size_t i = 0; i < kStageCount; ++i) EXPECT_STRNE(stage_name(Stage(i)), "?") << i;
}

}  // namespace
}  // namespace herd
