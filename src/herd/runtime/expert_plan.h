// `herd plan --nodes N`: how a model splits over N CPU machines under expert parallelism
// (dist/cluster.h): every rank holds all replicated weights (attention, norms, routers, shared
// experts, embedding, lm_head) and a contiguous share of every MoE layer's routed experts
// (model/expert_exchange.h expert_share). Pure arithmetic from the config, plus a stated model
// of decode time: decode streams weights, so a step costs the bytes a rank reads divided by its
// memory bandwidth; each MoE layer then exchanges one f32 row per token (the routed output).
#pragma once

#include <cstdint>
#include <vector>

#include "herd/base/status.h"
#include "herd/runtime/memory_plan.h"

namespace herd {

struct ExpertPlanAssumptions {
  double memory_gbytes_per_s = 200;  // weight streaming per node (decode is bandwidth-bound)
  double link_gbits_per_s = 100;     // per node, full duplex, through one switch
  double latency_us = 10;            // one exchange's fixed cost (an MPI collective over the link)
  int64_t batch = 1;                 // tokens per decode step (sequences decoding together)
};

struct ExpertRankPlan {
  int64_t first_expert = 0, experts = 0;
  int64_t weight_bytes = 0;  // replicated + its routed share
};

struct ExpertParallelPlan {
  int64_t nodes = 1;
  WeightFormat format = WeightFormat::kBF16;
  ExpertPlanAssumptions a;
  int64_t total_bytes = 0;       // text weights on one machine
  int64_t routed_bytes = 0;      // routed experts, all MoE layers
  int64_t replicated_bytes = 0;  // everything else (every rank)
  int64_t embedding_bytes = 0;   // part of replicated; only looked-up rows become resident
  std::vector<ExpertRankPlan> ranks;
  int64_t moe_layers = 0;
  int64_t row_bytes = 0;  // one token's routed output in one layer (hidden_size f32)
  // Bytes that cross links per token: its expert's owner sends the row to the other N-1 ranks.
  int64_t exchange_bytes_per_token_layer = 0;
  int64_t exchange_bytes_per_token = 0;  // all MoE layers
  // One decode step of `batch` tokens on the busiest rank.
  double compute_seconds_per_moe_layer = 0;   // replicated layer + its touched experts
  double shared_seconds_per_moe_layer = 0;    // the shared expert alone (overlaps the exchange)
  double exchange_seconds_per_moe_layer = 0;  // latency + bytes a rank receives / link
  // Link speed at which the exchange's transfer takes as long as the layer's compute, and as
  // long as the shared expert alone (fully hidden behind it).
  double gbits_needed_layer = 0, gbits_needed_hidden = 0;
  double step_seconds = 0, tokens_per_second = 0;
  double single_node_tokens_per_second = 0;  // the same model on one node (if it fit)
};

Result<ExpertParallelPlan> plan_expert_parallel(const Llama4Config& cfg, WeightFormat format,
                                                int64_t nodes, const ExpertPlanAssumptions& a);

}  // namespace herd
