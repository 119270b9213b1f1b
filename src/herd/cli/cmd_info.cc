// `herd info -m DIR`: architecture, dimensions, per-layer kinds, parameter counts and bytes.
// Needs only config.json; when weights are present they are opened (and validated) too.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "herd/cli/command.h"
#include "herd/io/gguf_files.h"
#include "herd/io/model_dir.h"
#include "herd/io/safetensors.h"
#include "herd/model/config.h"
#include "herd/model/gguf_load.h"
#include "herd/model/param_count.h"
#include "herd/model/tensor_table.h"
#include "herd/model/weights.h"

namespace herd::cli {
namespace {

using ojson = nlohmann::ordered_json;

std::string human(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f} B", double(n) / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f} M", double(n) / 1e6);
  if (n >= 1'000) return fmt::format("{:.2f} K", double(n) / 1e3);
  return fmt::format("{}", n);
}
std::string gib(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", double(b) / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", double(b) / (1ull << 20));
  return fmt::format("{:.1f} KiB", double(b) / 1024);
}

struct WeightsInfo {
  bool present = false;
  std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;  // dtype -> (tensors, bytes)
  std::vector<std::string> missing;                              // table tensors not in files
};

Result<WeightsInfo> weights_info(const std::string& dir, const Llama4Config& cfg) {
  WeightsInfo w;
  if (!scan_model_dir(dir).has_weights()) return w;
  HERD_ASSIGN_OR_RETURN(auto store, TensorStore::open_dir(dir));
  w.present = true;
  for (const std::string& n : store->names()) {
    const TensorView* v = store->find(n);
    auto& e = w.by_dtype[std::string(dtype_name(v->dtype))];
    e.first += 1;
    e.second += v->nbytes;
  }
  for (const TensorSpec& s : tensor_table(cfg))
    if (!store->find(s.name)) w.missing.push_back(s.name);
  return w;
}

// A GGUF file: bytes per ggml type and what herd does with each tensor (model/gguf_load.h).
WeightsInfo gguf_weights_info(const GgufSummary& s) {
  WeightsInfo w;
  w.present = true;
  for (const GgufTensorUse& t : s.tensors) {
    auto& e = w.by_dtype[t.type];
    e.first += 1;
    e.second += t.bytes;
  }
  return w;
}

ojson gguf_uses_json(const GgufSummary& s) {
  ojson a = ojson::array();
  for (const GgufTensorUse& t : s.tensors)
    a.push_back({{"name", t.name}, {"type", t.type}, {"bytes", t.bytes}, {"use", t.use}});
  return a;
}

// One line per distinct (type, use), with a tensor count: a 48-layer file stays readable.
void print_gguf_uses(const GgufSummary& s) {
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, uint64_t>> groups;
  for (const GgufTensorUse& t : s.tensors) {
    auto& g = groups[{t.type, t.use}];
    g.first += 1;
    g.second += t.bytes;
  }
  for (const auto& [k, v] : groups)
    fmt::print("gguf:         {:>5} {} tensors, {}: {}\n", v.first, k.first, gib(v.second),
               k.second);
}

ojson to_json(const Llama4Config& cfg, const ParamCounts& pc, const WeightsInfo& w) {
  const Llama4TextConfig& t = cfg.text;
  ojson j;
  j["architecture"] = cfg.architecture;
  j["multimodal"] = cfg.multimodal;
  j["vision"] = cfg.vision.has_value();
  j["text"] = {{"hidden_size", t.hidden_size},
               {"num_hidden_layers", t.num_hidden_layers},
               {"num_attention_heads", t.num_attention_heads},
               {"num_key_value_heads", t.num_key_value_heads},
               {"head_dim", t.head_dim},
               {"vocab_size", t.vocab_size},
               {"num_local_experts", t.num_local_experts},
               {"intermediate_size", t.intermediate_size},
               {"intermediate_size_mlp", t.intermediate_size_mlp},
               {"attention_chunk_size", t.attention_chunk_size},
               {"rope_scaling", t.rope_scaling.has_value()}};
  ojson layers = ojson::array();
  for (const LayerKind& k : t.layers)
    layers.push_back({{"moe", k.moe},
                      {"rope", k.rope},
                      {"chunked", k.chunked},
                      {"qk_norm", k.qk_norm},
                      {"temp_tuning", k.temp_tuning}});
  j["layers"] = layers;
  j["params"] = {{"total", pc.total},
                 {"text", pc.text_total},
                 {"vision", pc.vision_total},
                 {"embedding", pc.embedding},
                 {"lm_head", pc.lm_head},
                 {"active_per_token", pc.active_per_token},
                 {"active_counts_embedding", false}};
  ojson wj = {{"present", w.present}};
  if (w.present) {
    ojson bd = ojson::object();
    for (const auto& [dt, e] : w.by_dtype) bd[dt] = {{"tensors", e.first}, {"bytes", e.second}};
    wj["by_dtype"] = bd;
    wj["missing"] = w.missing;
  }
  j["weights"] = wj;
  return j;
}

void print_text(const std::string& dir, const Llama4Config& cfg, const ParamCounts& pc,
                const WeightsInfo& w) {
  const Llama4TextConfig& t = cfg.text;
  fmt::print("model:        {}\n", dir);
  fmt::print("architecture: {}{}\n", cfg.architecture,
             cfg.vision ? " (text + vision)" : " (text only)");
  fmt::print("text:         hidden {}, {} layers, {} heads / {} kv heads x {}, vocab {}\n",
             t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads,
             t.head_dim, t.vocab_size);
  fmt::print("ffn:          {} experts (top-{}) of width {}, shared expert {}, dense width {}\n",
             t.num_local_experts, t.num_experts_per_tok, t.intermediate_size, t.intermediate_size,
             t.intermediate_size_mlp);
  std::string rope =
      t.rope_scaling
          ? fmt::format("llama3 factor {} low {} high {} orig {}", t.rope_scaling->factor,
                        t.rope_scaling->low_freq_factor, t.rope_scaling->high_freq_factor,
                        t.rope_scaling->original_max_position_embeddings)
          : "no scaling";
  fmt::print("rope:         theta {}, {}; chunk {}; temperature floor {} scale {}\n", t.rope_theta,
             rope, t.attention_chunk_size, t.floor_scale, t.attn_scale);
  fmt::print("layers:\n  {:>5}  {:<5}  {:<13}  {:<7}  {}\n", "layer", "ffn", "attention", "qk-norm",
             "temp-tuning");
  for (size_t i = 0; i < t.layers.size(); ++i) {
    const LayerKind& k = t.layers[i];
    fmt::print("  {:>5}  {:<5}  {:<13}  {:<7}  {}\n", i, k.moe ? "moe" : "dense",
               k.rope ? (k.chunked ? "rope+chunked" : "rope") : "nope (global)",
               k.qk_norm ? "yes" : "no", k.temp_tuning ? "yes" : "no");
  }
  fmt::print("parameters:   total {} (text {}, vision+projector {})\n", human(pc.total),
             human(pc.text_total), human(pc.vision_total));
  fmt::print("              embedding {}, lm_head {}{}\n", human(pc.embedding), human(pc.lm_head),
             t.tie_word_embeddings ? " (tied)" : "");
  fmt::print("              active per token {} (embedding lookup not counted)\n",
             human(pc.active_per_token));
  if (!w.present) {
    fmt::print("weights:      none in the directory; {} if stored as BF16\n", gib(pc.total * 2));
    return;
  }
  uint64_t all = 0;
  for (const auto& [dt, e] : w.by_dtype) {
    fmt::print("weights:      {}: {} tensors, {}\n", dt, e.first, gib(e.second));
    all += e.second;
  }
  fmt::print("              total {}\n", gib(all));
  if (!w.missing.empty())
    fmt::print("warning:      {} tensors of the table are missing (first: '{}')\n",
               w.missing.size(), w.missing.front());
}

CommandRegistrar reg("info", "Describe a model directory (config, layers, parameters, bytes)",
                     [](CLI::App& app, std::function<int()>& run) {
                       auto dir = std::make_shared<std::string>();
                       auto as_json = std::make_shared<bool>(false);
                       app.add_option("-m,--model", *dir, "Model directory")->required();
                       app.add_flag("--json", *as_json, "Print JSON instead of text");
                       run = [dir, as_json] {
                         if (gguf::is_gguf_path(*dir)) {
                           auto files = gguf::Files::open(*dir);
                           if (!files) return report(files.status());
                           auto cfg = gguf_llama4_config(*files);
                           if (!cfg) return report(cfg.status());
                           const GgufSummary s = summarize_gguf(*files);
                           const WeightsInfo w = gguf_weights_info(s);
                           const ParamCounts pc = count_params(*cfg);
                           if (*as_json) {
                             ojson j = to_json(*cfg, pc, w);
                             j["gguf_tensors"] = gguf_uses_json(s);
                             fmt::print("{}\n", j.dump(2));
                           } else {
                             print_text(*dir, *cfg, pc, w);
                             print_gguf_uses(s);
                           }
                           std::fflush(stdout);
                           if (auto m = load_model(*dir); !m) return report(m.status());
                           return 0;
                         }
                         auto cfg = load_config(*dir);
                         if (!cfg) return report(cfg.status());
                         auto w = weights_info(*dir, *cfg);
                         if (!w) return report(w.status());
                         const ParamCounts pc = count_params(*cfg);
                         if (*as_json)
                           fmt::print("{}\n", to_json(*cfg, pc, *w).dump(2));
                         else
                           print_text(*dir, *cfg, pc, *w);
                         // The checks `run` makes (every table tensor present with its shape
                         // and dtype), so info never describes a checkpoint run refuses
                         // without saying so. Views only: nothing is converted.
                         if (w->present) {
                           std::fflush(stdout);
                           if (auto m = load_model(*dir); !m) return report(m.status());
                         }
                         return 0;
                       };
                     });

}  // namespace
}  // namespace herd::cli
