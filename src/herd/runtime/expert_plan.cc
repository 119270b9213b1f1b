#include "herd/runtime/expert_plan.h"

#include <algorithm>
#include <cmath>

#include "herd/model/expert_exchange.h"

namespace herd {

Result<ExpertParallelPlan> plan_expert_parallel(const Llama4Config& cfg, WeightFormat format,
                                                int64_t nodes, const ExpertPlanAssumptions& a) {
  const Llama4TextConfig& t = cfg.text;
  const int64_t E = t.num_local_experts;
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < t.num_hidden_layers; ++l) moe_layers += t.layer_kind(l).moe;
  if (moe_layers == 0) return make_error("--nodes: the model has no MoE layer to split");
  if (nodes < 1 || nodes > E)
    return make_error("--nodes {}: must be in 1..{} (one routed expert per node at least)", nodes,
                      E);
  if (a.batch < 1) return make_error("--parallel {}: must be >= 1", a.batch);
  ExpertParallelPlan p;
  p.nodes = nodes;
  p.format = format;
  p.a = a;
  p.moe_layers = moe_layers;
  // Per layer: bytes every rank reads for a token (attention, norms, router, shared or dense
  // FFN), the shared expert alone, and the routed experts (all of them).
  std::vector<int64_t> layer_bytes(size_t(t.num_hidden_layers), 0), shared(layer_bytes),
      routed(layer_bytes);
  int64_t global_read = 0;  // final norm, lm_head (rank 0 only computes logits)
  for (const TensorSpec& s : text_tensor_table(cfg)) {
    const int64_t b = plan_tensor_bytes(s, format, t.num_hidden_layers);
    p.total_bytes += b;
    if (plan_is_routed(s.role)) {
      p.routed_bytes += b;
      routed[size_t(s.layer)] += b;
      continue;
    }
    if (s.role == TensorRole::kEmbedding) {
      p.embedding_bytes = b;
      continue;  // one row per token
    }
    if (s.layer < 0) {
      global_read += b;
      continue;
    }
    layer_bytes[size_t(s.layer)] += b;
    if (s.role == TensorRole::kSharedGate || s.role == TensorRole::kSharedUp ||
        s.role == TensorRole::kSharedDown)
      shared[size_t(s.layer)] += b;
  }
  p.replicated_bytes = p.total_bytes - p.routed_bytes;
  for (int64_t r = 0; r < nodes; ++r) {
    const ExpertShare s = expert_share(E, int(nodes), int(r));
    p.ranks.push_back({s.first, s.count, p.replicated_bytes + p.routed_bytes * s.count / E});
  }
  p.row_bytes = t.hidden_size * int64_t(sizeof(float));
  p.exchange_bytes_per_token_layer = (nodes - 1) * p.row_bytes;
  p.exchange_bytes_per_token = p.exchange_bytes_per_token_layer * p.moe_layers;

  // Decode step of B tokens. Distinct experts a step touches: E·(1 − (1 − 1/E)^B) (uniform
  // routing); the busiest rank holds ceil(E/N) of them in proportion.
  const double B = double(a.batch), bw = a.memory_gbytes_per_s * 1e9;
  const double touched = double(E) * (1 - std::pow(1 - 1.0 / double(E), B));
  const double share = double((E + nodes - 1) / nodes) / double(E);
  const double link = a.link_gbits_per_s * 1e9 / 8;
  auto step = [&](int64_t n, double* moe_compute, double* moe_shared, double* moe_exchange) {
    double total = double(global_read) / bw;
    const double recv = B * double(n - 1) / double(n) * double(p.row_bytes);
    for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
      const bool moe = routed[size_t(l)] > 0;
      double c = double(layer_bytes[size_t(l)]) / bw;
      if (moe) c += touched * share * double(routed[size_t(l)]) / double(E) / bw;
      if (moe && n == 1)
        c = double(layer_bytes[size_t(l)]) / bw +
            touched * double(routed[size_t(l)]) / double(E) / bw;
      total += c;
      if (!moe || n == 1) continue;
      const double ex = a.latency_us * 1e-6 + recv / link;
      const double sh = double(shared[size_t(l)]) / bw;
      total += std::max(0.0, ex - sh);  // only what the shared expert does not hide
      if (moe_compute) {
        *moe_compute = c;
        *moe_shared = sh;
        *moe_exchange = ex;
      }
    }
    return total;
  };
  p.step_seconds = step(nodes, &p.compute_seconds_per_moe_layer, &p.shared_seconds_per_moe_layer,
                        &p.exchange_seconds_per_moe_layer);
  p.tokens_per_second = B / p.step_seconds;
  p.single_node_tokens_per_second = B / step(1, nullptr, nullptr, nullptr);
  const double recv = B * double(nodes - 1) / double(nodes) * double(p.row_bytes);
  if (nodes > 1) {
    p.gbits_needed_layer = recv * 8 / p.compute_seconds_per_moe_layer / 1e9;
    p.gbits_needed_hidden = recv * 8 / p.shared_seconds_per_moe_layer / 1e9;
  }
  return p;
}

}  // namespace herd
