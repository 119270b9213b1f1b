// herd plan (runtime/memory_plan.h): the seeds' claims, recomputed from the spec's shapes.
// Expected values are derived here from spec §1.1 / §2.3 / §6 independently of the planner's
// tensor-table walk, so a wrong role, shape or format rule in the planner shows up.
#include "herd/runtime/memory_plan.h"

#include <gtest/gtest.h>

namespace herd {
namespace {

constexpr int64_t kGiB = int64_t(1) << 30;

MemoryPlan plan(const std::string& model, WeightFormat f, KvType kv, const PlanTarget& t) {
  PlanInput in;
  auto cfg = known_model_config(model);
  EXPECT_TRUE(cfg.is_ok()) << cfg.status().message();
  in.cfg = *cfg;
  in.format = f;
  in.kv_type = kv;
  in.target = t;
  in.count_vision = t.gpu;
  auto p = plan_memory(in);
  EXPECT_TRUE(p.is_ok()) << p.status().message();
  return *p;
}

PlanTarget gpus(const std::string& kind, int64_t n) {
  auto t = gpu_target(kind, n);
  EXPECT_TRUE(t.is_ok());
  return *t;
}

// Spec §1.1 shapes: H 5120, 48 layers, experts of I 8192, 8 KV heads of 128.
constexpr int64_t H = 5120, I = 8192, L = 48;
constexpr int64_t kExpertParams = 3 * H * I;  // gate, up, down of one expert (or shared expert)

TEST(MemoryPlan, ParameterCountsMatchSpec) {
  const MemoryPlan s = plan("scout", WeightFormat::kBF16, KvType::kBF16, gpus("h100", 8));
  EXPECT_NEAR(double(s.params), 108.64e9, 0.01e9);  // spec §1.1 (vision included)
  EXPECT_EQ(s.weights_bytes, 2 * s.params);
  EXPECT_NEAR(double(s.weights_bytes) / double(kGiB), 202.0, 1.0);  // "BF16 sizes: Scout 202 GiB"
  const MemoryPlan m = plan("maverick", WeightFormat::kBF16, KvType::kBF16, gpus("h100", 8));
  EXPECT_NEAR(double(m.params), 401.58e9, 0.01e9);
}

TEST(MemoryPlan, ScoutInt4FitsOneH100) {
  const MemoryPlan p = plan("scout", WeightFormat::kInt4, KvType::kBF16, gpus("h100", 1));
  // int4_mixed: routed (16 per layer) and shared experts at 4 bits + an f32 per 128 inputs.
  const int64_t q = L * 17 * kExpertParams;
  EXPECT_EQ(p.quantized_params, q);
  const int64_t groups = L * 17 * (2 * I * (H / 128) + H * (I / 128));  // gate+up: K=H; down: K=I
  EXPECT_EQ(p.weights_bytes, q / 2 + groups * 4 + 2 * (p.params - q));
  EXPECT_EQ(p.usable_bytes, int64_t(80 * kGiB * 0.9));
  EXPECT_TRUE(p.fits);
  EXPECT_LT(p.weights_bytes + p.reserve_bytes, p.usable_bytes);
  EXPECT_GT(p.herd.max_context_tokens, 32768);  // and some context beside it
}

TEST(MemoryPlan, MaverickFp8FitsOne8xH100Host) {
  const MemoryPlan p = plan("maverick", WeightFormat::kFP8, KvType::kBF16, gpus("h100", 8));
  // fp8_mixed: routed experts of MoE layers (odd, 24 of them) except the last layer (47).
  const int64_t q = 23 * 128 * kExpertParams;
  EXPECT_EQ(p.quantized_params, q);
  const int64_t rows = 23 * 128 * (2 * I + H);  // one f32 scale per output row
  EXPECT_EQ(p.weights_bytes, q + rows * 4 + 2 * (p.params - q));
  EXPECT_TRUE(p.fits);
  EXPECT_FALSE(plan("maverick", WeightFormat::kFP8, KvType::kBF16, gpus("h100", 4)).fits);
}

// Cookbook: "on 8xH100, in bf16 you can get up to 1.4M tokens" (full KV on every layer). With
// 90% of 80 GiB usable and 4 GiB per GPU reserved, the arithmetic gives ~1.87M; the cookbook's
// lower figure fits a larger reserve (~9 GiB per GPU), inside the 1.0M-2.5M band.
TEST(MemoryPlan, ScoutBf16FullKvOn8xH100) {
  const MemoryPlan p = plan("scout", WeightFormat::kBF16, KvType::kBF16, gpus("h100", 8));
  EXPECT_EQ(p.full_kv.kv_bytes_per_token, L * 4096);  // spec §6: 4096 B per token per layer
  const int64_t budget = int64_t(8 * 80 * kGiB * 0.9) - p.weights_bytes - 8 * kGpuReserveBytes;
  EXPECT_EQ(p.kv_budget_bytes, budget);
  EXPECT_EQ(p.full_kv.max_context_tokens, budget / (L * 4096));
  EXPECT_GE(p.full_kv.max_context_tokens, 1'000'000);
  EXPECT_LE(p.full_kv.max_context_tokens, 2'500'000);
  // herd: only the 12 NoPE layers grow (plus each slot's int64 position).
  EXPECT_EQ(p.herd.layers_growing, 12);
  EXPECT_EQ(p.herd.kv_bytes_per_token, 12 * 4096 + 8);
  // The chunked layers' window: 36 layers × (8192 + one 512-token slice, in pages), twice.
  const double window = 36.0 * 4096 * 8192;  // spec §6: "capped at 1.125 GiB"
  EXPECT_GE(double(p.herd.kv_fixed_bytes), 2 * window);
  EXPECT_LE(double(p.herd.kv_fixed_bytes), 2 * window * (1 + 600.0 / 8192));
  EXPECT_GE(double(p.herd.max_context_tokens), 3.5 * double(p.full_kv.max_context_tokens));
  EXPECT_EQ(p.herd.max_context_tokens,
            (budget - p.herd.kv_fixed_bytes) / p.herd.kv_bytes_per_token / 32 * 32);
}

// The seeds' "10M" for Scout: with fp8 KV on 8×H200 herd's layout holds it (about 33M tokens),
// full KV on every layer does not (about 8.3M).
TEST(MemoryPlan, ScoutFp8KvOn8xH200AgainstTenMillion) {
  const MemoryPlan p = plan("scout", WeightFormat::kBF16, KvType::kFp8E4M3, gpus("h200", 8));
  // fp8: 1 byte per element plus one f32 scale per (token, kv head) for K and for V.
  EXPECT_EQ(p.full_kv.kv_bytes_per_token, L * (2 * 1024 + 2 * 8 * 4));
  EXPECT_EQ(p.herd.kv_bytes_per_token, 12 * (2 * 1024 + 2 * 8 * 4) + 8);
  EXPECT_TRUE(p.fits);
  EXPECT_GE(p.herd.max_context_tokens, 10 * 1024 * 1024);
  EXPECT_GE(p.herd.max_context_tokens, p.max_position_embeddings);
  EXPECT_LT(p.full_kv.max_context_tokens, 10'000'000);
}

TEST(MemoryPlan, DoesNotFit) {
  const MemoryPlan p = plan("maverick", WeightFormat::kBF16, KvType::kBF16, gpus("h100", 1));
  EXPECT_FALSE(p.fits);
  EXPECT_LT(p.kv_budget_bytes, 0);
  EXPECT_EQ(p.herd.max_context_tokens, 0);
  EXPECT_EQ(p.full_kv.max_context_tokens, 0);
}

// RAM sized to the planner's own prediction at N tokens: exactly N fit; one byte less, N - 1.
MemoryPlan must_plan(const PlanInput& in) {
  auto p = plan_memory(in);
  EXPECT_TRUE(p.is_ok()) << p.status().message();
  return std::move(p).value();
}

TEST(MemoryPlan, ExactlyFits) {
  PlanInput in;
  in.cfg = known_model_config("scout").value();
  in.format = WeightFormat::kInt4;
  in.kv_type = KvType::kBF16;
  in.target = ram_target(int64_t(1) << 40);
  in.count_vision = false;
  const MemoryPlan big = must_plan(in);
  for (int64_t n : {int64_t(1), int64_t(31), int64_t(32), int64_t(33), int64_t(8192 + 512),
                    int64_t(1'000'003)}) {
    in.target = ram_target(big.bytes_at(n));
    MemoryPlan p = must_plan(in);
    EXPECT_TRUE(p.fits) << n;
    EXPECT_EQ(p.herd.max_context_tokens, n);
    in.target = ram_target(big.bytes_at(n) - 1);
    p = must_plan(in);
    EXPECT_EQ(p.herd.max_context_tokens, n - 1);
    EXPECT_EQ(p.fits, n > 1);
  }
  // Exactly the weights and the reserve: the weights fit but no token does, so not "fits".
  in.target = ram_target(big.weights_bytes + big.reserve_bytes);
  const MemoryPlan edge = must_plan(in);
  EXPECT_EQ(edge.kv_budget_bytes, 0);
  EXPECT_EQ(edge.herd.max_context_tokens, 0);
  EXPECT_FALSE(edge.fits);
}

// herd's KV at n tokens: the NoPE pages grow, the chunked window stops at its pool.
TEST(MemoryPlan, HerdKvGrowsOnlyOnNoPeLayers) {
  const MemoryPlan p = plan("scout", WeightFormat::kBF16, KvType::kBF16, gpus("h100", 8));
  const int64_t a = p.herd.kv_bytes(1 << 20), b = p.herd.kv_bytes(2 << 20);
  EXPECT_EQ(b - a, int64_t(1 << 20) * p.herd.kv_bytes_per_token);
  EXPECT_EQ(p.full_kv.kv_bytes(2 << 20) - p.full_kv.kv_bytes(1 << 20), int64_t(1 << 20) * L * 4096);
  // Below the window every layer grows (herd = full KV plus page overhead, per token).
  EXPECT_EQ(p.herd.kv_bytes(32), 32 * (12 * 4096 + 8) + (36 * 32 * 4096 + 256));
}

TEST(MemoryPlan, Errors) {
  EXPECT_FALSE(known_model_config("llama").is_ok());
  EXPECT_FALSE(gpu_target("a100", 1).is_ok());
  EXPECT_FALSE(gpu_target("h100", 0).is_ok());
  WeightFormat f;
  EXPECT_FALSE(parse_weight_format("int3", &f));
  EXPECT_TRUE(parse_weight_format("fp8", &f) && f == WeightFormat::kFP8);
}

}  // namespace
}  // namespace herd
