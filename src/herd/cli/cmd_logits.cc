// `herd logits`: raw little-endian float32 logits, one vocab-size row per requested position.
// The interface the conformance tests compare against llama.cpp
// (tools/llama-cpp-ref/conformance.mjs).
//
//   --greedy N           after the prompt, decode N tokens greedily (argmax of the raw logits,
//                        ties to the lowest id) with the KV cache; the ids go to a JSON side
//                        file (--greedy-out, default OUTPUT.json):
//                        {"positions": [...], "vocab": V, "n_prompt": P, "greedy": [...]}
//                        (the same shape tools/llama-cpp-ref/logits.mjs writes).
//   --expert-stats FILE  how often each routed expert was chosen, per MoE layer, over every
//                        token that went through the forward pass (prompt and fed-back greedy
//                        tokens), from the decoder's "expert" trace:
//                        {"tokens": T, "experts": E, "layers": [{"layer": i, "counts": [...]}]}
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "herd/base/mapped_file.h"
#include "herd/base/thread_pool.h"
#include "herd/cli/command.h"
#include "herd/cli/flag_checks.h"
#include "herd/cli/model_session.h"
#include "herd/cli/token_list.h"
#include "herd/model/text.h"
#include "herd/runtime/sequence.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model, tokens, tokens_file, positions, precision = "f32", quant = "bf16", output;
  std::string greedy_out, expert_stats;
  int greedy = 0;
  bool all = false;
  int threads = 0;
  int64_t ubatch = 512;
};

// First index of the largest value (llama.cpp's greedy sampler and logits.mjs break ties the
// same way).
int32_t argmax(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;
  return int32_t(best);
}

Status write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return make_error("{}: cannot create file", path);
  out << j.dump() << "\n";
  if (!out.good()) return make_error("{}: write failed", path);
  return Status::ok();
}

int run_logits(const Options& o) {
  std::vector<int32_t> tokens;
  if (!o.tokens.empty() == !o.tokens_file.empty())
    return report(Status::error("give exactly one of --tokens or --tokens-file"));
  if (!o.tokens.empty()) {
    auto r = parse_token_list(o.tokens, "--tokens");
    if (!r) return report(r.status());
    tokens = std::move(r).value();
  } else {
    auto text = read_text_file(o.tokens_file);
    if (!text) return report(text.status());
    auto r = parse_token_list(*text, o.tokens_file);
    if (!r) return report(r.status());
    tokens = std::move(r).value();
  }
  if (tokens.empty()) return report(Status::error("no tokens to evaluate"));
  // f32 by default: this is the conformance interface; --precision auto checks the fast path.
  EngineFlags engine{o.precision, o.quant};
  auto precision = engine.parsed_precision();
  if (!precision) return report(precision.status());
  auto quant = engine.parsed_quant();
  if (!quant) return report(quant.status());
  const int64_t n = int64_t(tokens.size());
  std::vector<int64_t> want;
  if (o.all) {
    for (int64_t i = 0; i < n; ++i) want.push_back(i);
  } else {
    auto r = parse_position_list(o.positions.empty() ? "-1" : o.positions, n);
    if (!r) return report(r.status());
    want = std::move(r).value();
  }
  if (o.greedy < 0) return report(make_error("--greedy {}: must be >= 0", o.greedy));
  auto model = load_model(o.model);
  if (!model) return report(model.status());
  ThreadPool pool(o.threads);
  if (Status s = prepare_weights(*model, *precision, *quant, pool); !s) return report(s);
  TextDecoder decoder(*model, pool, *precision);
  Sequence seq(decoder, o.ubatch);
  // Rows are computed in ascending position order, then written in the order asked for. The
  // greedy continuation also needs the last prompt position's row.
  std::vector<int64_t> sorted(want);
  if (o.greedy > 0) sorted.push_back(n - 1);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  const int64_t V = decoder.vocab_size();
  std::vector<float> logits(sorted.size() * size_t(V));
  auto row_of = [&](int64_t p) {
    return &logits[size_t(std::lower_bound(sorted.begin(), sorted.end(), p) - sorted.begin()) *
                   size_t(V)];
  };

  // Expert counts from the "expert" trace: one column of chosen expert ids per MoE layer.
  const int64_t E = decoder.config().num_local_experts;
  std::map<int, std::vector<int64_t>> counts;
  int64_t traced_tokens = 0;
  TraceFn trace;
  if (!o.expert_stats.empty())
    trace = [&](std::string_view name, int layer, const float* data, int64_t rows, int64_t) {
      if (name != "expert") return;
      auto& c = counts[layer];
      c.resize(size_t(E));
      for (int64_t r = 0; r < rows; ++r) {
        const auto e = int64_t(data[r]);
        if (e >= 0 && e < E) ++c[size_t(e)];
      }
    };

  Status s = seq.append(tokens, sorted, logits.data(), trace);
  if (!s) return report(s);
  traced_tokens += n;

  std::vector<int32_t> greedy;
  if (o.greedy > 0) {
    std::vector<float> step(row_of(n - 1), row_of(n - 1) + V);
    for (;;) {
      greedy.push_back(argmax(step.data(), V));
      if (int(greedy.size()) == o.greedy) break;
      const int64_t last = 0;
      s = seq.append(std::span<const int32_t>(&greedy.back(), 1),
                     std::span<const int64_t>(&last, 1), step.data(), trace);
      if (!s) return report(s);
      ++traced_tokens;
    }
  }

  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  if (!out) return report(make_error("{}: cannot create output file", o.output));
  for (int64_t p : want)
    out.write(reinterpret_cast<const char*>(row_of(p)), std::streamsize(V * 4));
  if (!out.good()) return report(make_error("{}: write failed", o.output));
  out.close();

  if (o.greedy > 0) {
    nlohmann::json meta = {{"positions", want}, {"vocab", V}, {"n_prompt", n}, {"greedy", greedy}};
    s = write_json(o.greedy_out.empty() ? o.output + ".json" : o.greedy_out, meta);
    if (!s) return report(s);
  }
  if (!o.expert_stats.empty()) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& [layer, c] : counts) layers.push_back({{"layer", layer}, {"counts", c}});
    s = write_json(o.expert_stats,
                   {{"tokens", traced_tokens}, {"experts", E}, {"layers", std::move(layers)}});
    if (!s) return report(s);
  }
  std::fprintf(stderr, "herd logits: %lld tokens, %zu rows of %lld floats -> %s\n", (long long)n,
               want.size(), (long long)V, o.output.c_str());
  return 0;
}

CommandRegistrar reg("logits", "Write raw float32 logits for a token sequence",
                     [](CLI::App& app, std::function<int()>& run) {
                       auto o = std::make_shared<Options>();
                       app.add_option("-m,--model", o->model, "Model directory")->required();
                       app.add_option("--tokens", o->tokens, "Token ids, comma separated")
                           ->check(int_list_flag());
                       app.add_option("--tokens-file", o->tokens_file,
                                      "File with token ids (JSON array or separated by commas / "
                                      "whitespace)");
                       app.add_flag("--all", o->all, "Logits at every position");
                       app.add_option("--positions", o->positions,
                                      "Positions, comma separated; negative counts from the end "
                                      "(default -1)")
                           ->check(int_list_flag());
                       app.add_option("--precision", o->precision, "f32 (reference, default) or auto (fast kernels)");
                       app.add_option("--quant", o->quant, "With auto: bf16, int8, int4, int4-all");
                       app.add_option("-o,--output", o->output, "Output file")->required();
                       app.add_option("-t,--threads", o->threads, "Threads (default: cores)")
                           ->check(threads_flag());
                       app.add_option("--ubatch", o->ubatch, "Tokens per forward call")
                           ->check(int_in(1, 1 << 20));
                       app.add_option("--greedy", o->greedy,
                                      "After the prompt, decode N tokens greedily (argmax, "
                                      "ties to the lowest id) and write their ids to the "
                                      "--greedy-out JSON file")
                           ->check(int_in(0, 1 << 24, "0 = off"));
                       app.add_option("--greedy-out", o->greedy_out,
                                      "JSON side file for --greedy (default OUTPUT.json)");
                       app.add_option("--expert-stats", o->expert_stats,
                                      "Write how often each expert was chosen, per MoE layer, "
                                      "to this JSON file");
                       run = [o] { return run_logits(*o); };
                     });

}  // namespace
}  // namespace herd::cli
