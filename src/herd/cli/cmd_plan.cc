// `herd plan`: whether a model's weights fit GPUs or a CPU machine, and the most context that fits
// beside them, for herd's KV layout and for full KV on every layer, with the arithmetic shown
// (runtime/memory_plan.h holds the model and its assumptions).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "herd/cli/command.h"
#include "herd/cli/engine_flags.h"
#include "herd/cli/flag_checks.h"
#include "herd/runtime/expert_plan.h"
#include "herd/runtime/memory_plan.h"

namespace herd::cli {
namespace {

using ojson = nlohmann::ordered_json;

struct Options {
  std::string model, quant, kv_type = "bf16", gpu, ram;
  int64_t count = 0, ctx = 0, ubatch = 512, parallel = 1;
  bool json = false;
  int64_t nodes = 0;  // expert parallelism over this many CPU machines (--ram each)
  double mem_bw = 200, link = 100, latency_us = 10;
};

std::string gib(int64_t b) {  // GiB, or MiB below one GiB (CPU plans of small models)
  if (b > -(1LL << 30) && b < (1LL << 30))
    return fmt::format("{:.2f} MiB", double(b) / double(1LL << 20));
  return fmt::format("{:.2f} GiB", double(b) / double(1LL << 30));
}
std::string count_str(int64_t n) {  // 1234567 -> "1,234,567"
  std::string s = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return n < 0 ? "-" + out : out;
}

Result<PlanInput> make_input(const Options& o, std::string* source) {
  PlanInput in;
  if (o.model == "scout" || o.model == "maverick") {
    HERD_ASSIGN_OR_RETURN(in.cfg, known_model_config(o.model));
    *source = "built-in " + o.model + " config (spec §1.1, Instruct)";
  } else {
    if (!std::filesystem::is_directory(o.model))
      return make_error("--model {}: not scout, maverick or a model directory", o.model);
    HERD_ASSIGN_OR_RETURN(in.cfg, load_config(o.model));
    *source = o.model + "/config.json";
  }
  if (!parse_weight_format(o.quant, &in.format))
    return make_error("--quant {}: expected bf16, fp8, int8 or int4", o.quant);
  const std::string kv = o.kv_type == "fp8" ? "fp8-e4m3" : o.kv_type;
  if (!parse_kv_type(kv, &in.kv_type))
    return make_error("--kv-type {}: expected bf16, fp8, int8 or f32", o.kv_type);
  if (o.gpu.empty() == o.ram.empty())
    return make_error("give either --gpu h100|h200 with --count N, or --ram SIZE");
  if (!o.gpu.empty()) {
    HERD_ASSIGN_OR_RETURN(in.target, gpu_target(o.gpu, o.count > 0 ? o.count : 1));
  } else {
    if (o.count > 0) return make_error("--count goes with --gpu, not --ram");
    HERD_ASSIGN_OR_RETURN(int64_t bytes, parse_byte_size("--ram", o.ram));
    in.target = ram_target(bytes);
    in.count_vision = false;  // herd's text path never reads the vision tower
  }
  in.ubatch = o.ubatch;
  in.sequences = o.parallel;
  return in;
}

ojson layout_json(const KvLayoutPlan& l) {
  ojson j;
  j["kv_bytes_per_token"] = l.kv_bytes_per_token;
  j["kv_fixed_bytes"] = l.kv_fixed_bytes;
  j["max_context_tokens"] = l.max_context_tokens;
  j["layers_growing"] = l.layers_growing;
  return j;
}

void print_text(const MemoryPlan& p, const Options& o, const std::string& source) {
  const PlanInput& in = p.in;
  const Llama4TextConfig& t = in.cfg.text;
  const PlanTarget& tg = in.target;
  const int64_t L = t.num_hidden_layers, g = p.herd.layers_growing;
  const std::string kv = kv_type_name(in.kv_type);
  std::printf("herd plan: %s, weights %s, KV %s, %s\n", source.c_str(),
              weight_format_name(in.format), kv.c_str(),
              tg.gpu ? fmt::format("{} x {}", tg.count, tg.name).c_str()
                     : fmt::format("CPU with {} RAM", gib(tg.device_bytes)).c_str());
  std::printf("assumptions:\n");
  if (tg.gpu) {
    std::printf(
        "  %s: %s per GPU, %.0f%% usable; %s per GPU reserved for activations and "
        "workspace;\n  weights and KV split evenly over the GPUs (tensor parallel)\n",
        tg.name.c_str(), gib(tg.device_bytes).c_str(), tg.usable_fraction * 100,
        gib(kGpuReserveBytes).c_str());
  } else {
    std::printf(
        "  all %s usable by herd; reserve = %s runtime + activations of one %lld-token "
        "slice;\n  %lld B per context token outside the KV (token lists); vision tower "
        "not resident\n",
        gib(tg.device_bytes).c_str(), gib(kCpuRuntimeBytes).c_str(), (long long)in.ubatch,
        (long long)kCpuBytesPerTokenOutsideKv);
  }
  std::printf(
      "  weights: bf16 = 2 B/param; fp8 = Meta's fp8_mixed (routed experts except first "
      "and last layer, 1 B + f32 per row);\n  int8 = every linear 1 B + f32 per 128; "
      "int4 = Meta's int4_mixed (routed + shared experts 0.5 B + f32 per 128)\n");
  std::printf(
      "  %lld sequence(s) at the same context; KV pages of %lld tokens; herd keeps "
      "chunked layers' window twice (prefix cache)\n",
      (long long)in.sequences, (long long)p.herd.page_rows);
  const std::string low =
      in.format == WeightFormat::kBF16
          ? std::string("all bf16")
          : fmt::format("{} in {}, the rest bf16", count_str(p.quantized_params),
                        weight_format_name(in.format));
  std::printf("weights    %s params (%s) -> %s (%s B)\n", count_str(p.params).c_str(), low.c_str(),
              gib(p.weights_bytes).c_str(), count_str(p.weights_bytes).c_str());
  if (tg.gpu)
    std::printf("usable     %lld x %s x %.2f = %s\n", (long long)tg.count,
                gib(tg.device_bytes).c_str(), tg.usable_fraction, gib(p.usable_bytes).c_str());
  else
    std::printf("usable     %s\n", gib(p.usable_bytes).c_str());
  std::printf("reserve    %s\n", gib(p.reserve_bytes).c_str());
  std::printf("KV budget  %s - %s - %s = %s\n", gib(p.usable_bytes).c_str(),
              gib(p.weights_bytes).c_str(), gib(p.reserve_bytes).c_str(),
              gib(p.kv_budget_bytes).c_str());
  const int64_t per_layer = 2 * t.kv_dim() * int64_t(kv_type_bytes(in.kv_type));
  std::printf(
      "herd       %lld of %lld layers grow: %lld B/token (%lld x 2 x %lld x %zu B + "
      "scales, positions);\n           fixed %s (%lld chunked layers x %lld pages of "
      "%lld tokens)\n",
      (long long)g, (long long)L, (long long)p.herd.kv_bytes_per_token, (long long)g,
      (long long)t.kv_dim(), kv_type_bytes(in.kv_type), gib(p.herd.kv_fixed_bytes).c_str(),
      (long long)(L - g), (long long)p.herd.window_pages, (long long)p.herd.page_rows);
  std::printf("           max context (%s - %s) / %lld B = %s tokens%s\n",
              gib(p.kv_budget_bytes / in.sequences).c_str(), gib(p.herd.kv_fixed_bytes).c_str(),
              (long long)(p.herd.kv_bytes_per_token + p.outside_kv_per_token),
              count_str(p.herd.max_context_tokens).c_str(),
              in.sequences > 1 ? " per sequence" : "");
  std::printf(
      "full KV    %lld layers x %lld B = %lld B/token -> %s / %lld B = %s tokens\n", (long long)L,
      (long long)(per_layer + (kv_type_scaled(in.kv_type) ? 2 * t.num_key_value_heads * 4 : 0)),
      (long long)p.full_kv.kv_bytes_per_token, gib(p.kv_budget_bytes / in.sequences).c_str(),
      (long long)(p.full_kv.kv_bytes_per_token + p.outside_kv_per_token),
      count_str(p.full_kv.max_context_tokens).c_str());
  if (p.full_kv.max_context_tokens > 0)
    std::printf("ratio      herd / full KV = %.2fx\n",
                double(p.herd.max_context_tokens) / double(p.full_kv.max_context_tokens));
  std::printf("fits       %s%s\n", p.fits ? "yes" : "NO",
              p.fits ? ""
                     : (p.kv_budget_bytes < 0 ? " (the weights and reserve exceed memory)"
                                              : " (no room for one token of context)"));
  std::printf("model limit max_position_embeddings = %s tokens\n",
              count_str(p.max_position_embeddings).c_str());
  if (o.ctx > 0)
    std::printf("at --ctx %s: %s predicted in use (%s)\n", count_str(o.ctx).c_str(),
                gib(p.bytes_at(o.ctx)).c_str(),
                p.bytes_at(o.ctx) <= p.usable_bytes ? "fits" : "does NOT fit");
}

// --nodes N: the expert-parallel split (runtime/expert_plan.h) and whether a rank fits --ram.
int run_nodes_plan(const Options& o, const PlanInput& in, const std::string& source) {
  ExpertPlanAssumptions a;
  a.memory_gbytes_per_s = o.mem_bw;
  a.link_gbits_per_s = o.link;
  a.latency_us = o.latency_us;
  a.batch = o.parallel;
  auto plan = plan_expert_parallel(in.cfg, in.format, o.nodes, a);
  if (!plan) return report(plan.status());
  const ExpertParallelPlan& p = *plan;
  const int64_t biggest = p.ranks.empty() ? 0 : p.ranks[0].weight_bytes;
  const bool fits = biggest <= in.target.device_bytes;
  if (o.json) {
    ojson j;
    j["model"] = o.model;
    j["quant"] = weight_format_name(in.format);
    j["nodes"] = p.nodes;
    j["ram_bytes"] = in.target.device_bytes;
    j["total_bytes"] = p.total_bytes;
    j["routed_bytes"] = p.routed_bytes;
    j["replicated_bytes"] = p.replicated_bytes;
    j["embedding_bytes"] = p.embedding_bytes;
    ojson ranks = ojson::array();
    for (const ExpertRankPlan& r : p.ranks)
      ranks.push_back({{"first_expert", r.first_expert},
                       {"experts", r.experts},
                       {"weight_bytes", r.weight_bytes}});
    j["ranks"] = ranks;
    j["fits"] = fits;
    j["moe_layers"] = p.moe_layers;
    j["exchange_bytes_per_token_layer"] = p.exchange_bytes_per_token_layer;
    j["exchange_bytes_per_token"] = p.exchange_bytes_per_token;
    j["assumptions"] = {{"memory_gbytes_per_s", a.memory_gbytes_per_s},
                        {"link_gbits_per_s", a.link_gbits_per_s},
                        {"latency_us", a.latency_us},
                        {"batch", a.batch}};
    j["compute_seconds_per_moe_layer"] = p.compute_seconds_per_moe_layer;
    j["shared_seconds_per_moe_layer"] = p.shared_seconds_per_moe_layer;
    j["exchange_seconds_per_moe_layer"] = p.exchange_seconds_per_moe_layer;
    j["gbits_needed_layer"] = p.gbits_needed_layer;
    j["gbits_needed_hidden"] = p.gbits_needed_hidden;
    j["step_seconds"] = p.step_seconds;
    j["tokens_per_second"] = p.tokens_per_second;
    j["single_node_tokens_per_second"] = p.single_node_tokens_per_second;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("herd plan: %s, weights %s, expert parallel over %lld nodes of %s RAM\n",
              source.c_str(), weight_format_name(in.format), (long long)p.nodes,
              gib(in.target.device_bytes).c_str());
  std::printf(
      "assumptions: every rank holds attention, norms, routers, shared experts, embedding "
      "and lm_head; routed experts split contiguously; decode streams weights at %.0f "
      "GB/s per node; links %.0f Gb/s full duplex, %.0f us per exchange; %lld tokens per "
      "step; uniform routing\n",
      a.memory_gbytes_per_s, a.link_gbits_per_s, a.latency_us, (long long)a.batch);
  std::printf(
      "weights    %s total = %s replicated + %s routed experts (embedding %s: mapped in "
      "full at start, read one row per token)\n",
      gib(p.total_bytes).c_str(), gib(p.replicated_bytes).c_str(), gib(p.routed_bytes).c_str(),
      gib(p.embedding_bytes).c_str());
  for (size_t r = 0; r < p.ranks.size(); ++r)
    std::printf("rank %-4zu  experts %lld..%lld: %s (%lld B)\n", r,
                (long long)p.ranks[r].first_expert,
                (long long)(p.ranks[r].first_expert + p.ranks[r].experts - 1),
                gib(p.ranks[r].weight_bytes).c_str(), (long long)p.ranks[r].weight_bytes);
  std::printf("fits       %s (largest rank %s of %s, before KV and activations)\n",
              fits ? "yes" : "NO", gib(biggest).c_str(), gib(in.target.device_bytes).c_str());
  std::printf(
      "exchange   %lld B per token per MoE layer (one f32 row of %lld B to %lld ranks), "
      "%lld B per token (%lld MoE layers)\n",
      (long long)p.exchange_bytes_per_token_layer, (long long)p.row_bytes, (long long)(p.nodes - 1),
      (long long)p.exchange_bytes_per_token, (long long)p.moe_layers);
  std::printf("per MoE layer: compute %.1f us (shared expert %.1f us), exchange %.1f us\n",
              p.compute_seconds_per_moe_layer * 1e6, p.shared_seconds_per_moe_layer * 1e6,
              p.exchange_seconds_per_moe_layer * 1e6);
  std::printf(
      "bandwidth  %.2f Gb/s keeps the transfer below the layer's compute, %.2f Gb/s hides "
      "it behind the shared expert\n",
      p.gbits_needed_layer, p.gbits_needed_hidden);
  std::printf("decode     %.2f ms per step, %.1f tokens/s (one node, if it fit: %.1f tokens/s)\n",
              p.step_seconds * 1e3, p.tokens_per_second, p.single_node_tokens_per_second);
  return 0;
}

int run_plan(const Options& o) {
  std::string source;
  auto in = make_input(o, &source);
  if (!in) return report(in.status());
  if (o.nodes > 0) {
    if (in->target.gpu) return report(make_error("--nodes goes with --ram (CPU machines)"));
    return run_nodes_plan(o, *in, source);
  }
  auto plan = plan_memory(*in);
  if (!plan) return report(plan.status());
  const MemoryPlan& p = *plan;
  if (!o.json) {
    print_text(p, o, source);
    return 0;
  }
  ojson j;
  j["model"] = o.model;
  j["quant"] = weight_format_name(in->format);
  j["kv_type"] = kv_type_name(in->kv_type);
  ojson target;
  target["kind"] = in->target.gpu ? "gpu" : "ram";
  target["name"] = in->target.name;
  target["count"] = in->target.count;
  target["device_bytes"] = in->target.device_bytes;
  target["usable_fraction"] = in->target.usable_fraction;
  j["target"] = target;
  j["params"] = p.params;
  j["quantized_params"] = p.quantized_params;
  j["weights_bytes"] = p.weights_bytes;
  j["usable_bytes"] = p.usable_bytes;
  j["reserve_bytes"] = p.reserve_bytes;
  j["kv_budget_bytes"] = p.kv_budget_bytes;
  j["fits"] = p.fits;
  j["herd"] = layout_json(p.herd);
  j["full_kv"] = layout_json(p.full_kv);
  j["sequences"] = in->sequences;
  j["max_position_embeddings"] = p.max_position_embeddings;
  if (o.ctx > 0) {
    j["ctx"] = o.ctx;
    j["predicted_bytes"] = p.bytes_at(o.ctx);
  }
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

CommandRegistrar reg(
    "plan", "Whether a model fits GPUs or RAM, and the most context beside it",
    [](CLI::App& app, std::function<int()>& run) {
      auto o = std::make_shared<Options>();
      app.add_option("-m,--model", o->model, "scout, maverick, or a model directory")->required();
      app.add_option("--quant", o->quant, "Weight format: bf16, fp8, int8, int4")->required();
      app.add_option("--kv-type", o->kv_type, "KV type: bf16 (default), fp8, int8, f32");
      app.add_option("--gpu", o->gpu, "GPU kind: h100 (80 GiB) or h200 (141 GiB)");
      app.add_option("--count", o->count, "GPUs (with --gpu)")->check(int_in(1, 4096));
      app.add_option("--ram", o->ram, "Plan for a CPU machine with this much memory (e.g. 24G)");
      app.add_option("--ctx", o->ctx, "Also predict the memory in use at this context")
          ->check(int_in(1, int64_t(1) << 40));
      app.add_option("--ubatch", o->ubatch, "Prompt tokens per forward step (as run/bench)")
          ->check(int_in(1, 1 << 20));
      app.add_option("--parallel", o->parallel, "Sequences, each at the full context")
          ->check(int_in(1, 4096));
      app.add_flag("--json", o->json, "Print one JSON object");
      app.add_option("--nodes", o->nodes,
                     "Expert parallelism (--mpi) over N CPU machines of --ram each: bytes per "
                     "rank, exchange bytes, bandwidth needed")
          ->check(int_in(1, 4096));
      app.add_option("--mem-bw", o->mem_bw, "With --nodes: GB/s a node streams weights at")
          ->check(CLI::Range(0.1, 1e5));
      app.add_option("--link", o->link, "With --nodes: Gb/s of each node's link")
          ->check(CLI::Range(0.1, 1e5));
      app.add_option("--latency-us", o->latency_us, "With --nodes: microseconds per exchange")
          ->check(CLI::Range(0.0, 1e6));
      run = [o] { return run_plan(*o); };
    });

}  // namespace
}  // namespace herd::cli
