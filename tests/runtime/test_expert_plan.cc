// plan_expert_parallel (herd plan --nodes): the split and the exchange arithmetic, checked
// against the single-machine plan and hand-computed figures for Maverick and Scout.
#include <gtest/gtest.h>

#include "herd/model/expert_exchange.h"
#include "herd/runtime/expert_plan.h"
#include "herd/runtime/memory_plan.h"

namespace herd {
namespace {

TEST(ExpertShare, ContiguousAndComplete) {
  for (int64_t E : {16, 128, 7})
    for (int n = 1; n <= 8 && n <= E; ++n) {
      int64_t next = 0;
      for (int r = 0; r < n; ++r) {
        const ExpertShare s = expert_share(E, n, r);
        EXPECT_EQ(s.first, next);
        EXPECT_GE(s.count, E / n);
        EXPECT_LE(s.count, E / n + 1);
        next += s.count;
      }
      EXPECT_EQ(next, E);
    }
}

TEST(ExpertPlan, MaverickInt4SplitsOnlyTheRoutedExperts) {
  const Llama4Config cfg = known_model_config("maverick").value();
  const ExpertParallelPlan p4 = plan_expert_parallel(cfg, WeightFormat::kInt4, 4, {}).value();
  const ExpertParallelPlan p1 = plan_expert_parallel(cfg, WeightFormat::kInt4, 1, {}).value();
  // One node holds what the single-machine planner counts for the text weights.
  PlanInput in;
  in.cfg = cfg;
  in.format = WeightFormat::kInt4;
  in.target = ram_target(int64_t(1) << 40);
  in.count_vision = false;
  EXPECT_EQ(p1.ranks[0].weight_bytes, plan_memory(in).value().weights_bytes);
  ASSERT_EQ(p4.ranks.size(), 4u);
  int64_t routed = 0;
  for (const ExpertRankPlan& r : p4.ranks) {
    EXPECT_EQ(r.experts, 32);
    EXPECT_EQ(r.weight_bytes, p4.replicated_bytes + p4.routed_bytes / 4);
    routed += r.weight_bytes - p4.replicated_bytes;
  }
  EXPECT_EQ(routed, p4.routed_bytes);
  EXPECT_GT(p4.routed_bytes, 8 * p4.replicated_bytes);  // Maverick is mostly routed experts
  // 24 MoE layers (every other one of 48), hidden 5120: one f32 row to 3 other ranks.
  EXPECT_EQ(p4.moe_layers, 24);
  EXPECT_EQ(p4.exchange_bytes_per_token_layer, 3 * 5120 * 4);
  EXPECT_EQ(p4.exchange_bytes_per_token, 24 * 3 * 5120 * 4);
  EXPECT_EQ(p1.exchange_bytes_per_token, 0);
}

TEST(ExpertPlan, BandwidthNeededScalesWithTheBatch) {
  const Llama4Config cfg = known_model_config("scout").value();
  ExpertPlanAssumptions a;
  a.batch = 1;
  const ExpertParallelPlan b1 = plan_expert_parallel(cfg, WeightFormat::kBF16, 4, a).value();
  a.batch = 64;
  const ExpertParallelPlan b64 = plan_expert_parallel(cfg, WeightFormat::kBF16, 4, a).value();
  EXPECT_GT(b1.gbits_needed_layer, 0);
  EXPECT_GT(b64.gbits_needed_layer, b1.gbits_needed_layer);
  // The transfer needed per layer, in bits over the compute time, is what gbits_needed states.
  const double recv = 1 * 3.0 / 4 * 5120 * 4;
  EXPECT_NEAR(b1.gbits_needed_layer, recv * 8 / b1.compute_seconds_per_moe_layer / 1e9, 1e-9);
  EXPECT_FALSE(plan_expert_parallel(cfg, WeightFormat::kBF16, 17, a).is_ok());  // 16 experts
}

}  // namespace
}  // namespace herd
