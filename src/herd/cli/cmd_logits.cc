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
//   --image FILE         (repeatable) the token ids already hold each image's layout of spec §5.8
//                        (<|image_start|> … <|image_end|>), in order; the images' embeddings
//                        replace the <|patch|> tokens. A layout that does not match the image's
//                        tile grid is an error.
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
#include "herd/cli/engine_flags.h"
#include "herd/cli/flag_checks.h"
#include "herd/cli/image_inputs.h"
#include "herd/cli/token_list.h"
#include "herd/model/text.h"

namespace herd::cli {
namespace {

struct Options {
  std::string tokens, tokens_file, positions, output;
  std::string greedy_out, expert_stats;
  std::vector<std::string> images;
  EngineFlags engine;
  int greedy = 0;
  bool all = false;
};

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
  auto opt = o.engine.options();
  if (!opt) return report(opt.status());
  opt->tokenizer = !o.images.empty();  // image token ids are looked up by name
  opt->sched.max_seqs = 1;
  opt->sched.context = 0;
  auto engine = Engine::open(*opt);
  if (!engine) return report(engine.status());
  Engine& e = **engine;
  CliImages images;
  if (!o.images.empty()) {
    auto r = load_cli_images(e, o.images);
    if (!r) return report(r.status());
    images = std::move(r).value();
  }
  // Rows are computed in ascending position order, then written in the order asked for.
  std::vector<int64_t> sorted(want);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  const int64_t V = e.decoder().vocab_size();
  std::vector<float> logits(sorted.size() * size_t(V));
  auto index_of = [&](int64_t p) {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), p);
    return it != sorted.end() && *it == p ? it - sorted.begin() : -1;
  };
  auto row_of = [&](int64_t p) { return &logits[size_t(index_of(p)) * size_t(V)]; };

  // Expert counts from the "expert" trace: one column of chosen expert ids per MoE layer.
  const int64_t E = e.decoder().config().num_local_experts;
  std::map<int, std::vector<int64_t>> counts;
  int64_t traced_tokens = 0;
  if (!o.expert_stats.empty())
    e.scheduler().set_trace(
        [&](std::string_view name, int layer, const float* data, int64_t rows, int64_t) {
          if (name != "expert") return;
          auto& c = counts[layer];
          c.resize(size_t(E));
          for (int64_t r = 0; r < rows; ++r) {
            const auto x = int64_t(data[r]);
            if (x >= 0 && x < E) ++c[size_t(x)];
          }
        });

  // Greedy: argmax of the raw logits, ties to the lowest id (the sampler at temperature 0).
  std::vector<int32_t> greedy;
  Request req;
  req.prompt = tokens;
  req.logits_positions = sorted;
  req.max_tokens = o.greedy;
  req.reuse_prefix = false;
  if (!o.images.empty())
    if (Status st = attach_images(e, images, req); !st) return report(st);
  req.on_logits = [&](int64_t pos, const float* row) {
    if (pos < n && index_of(pos) >= 0) std::copy_n(row, V, row_of(pos));
  };
  req.on_token = [&](int32_t tok) {
    greedy.push_back(tok);
    return true;
  };
  auto done = e.run(std::move(req));
  if (!done) return report(done.status());
  traced_tokens = n + done->decode_steps;
  Status s;

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

CommandRegistrar reg(
    "logits", "Write raw float32 logits for a token sequence",
    [](CLI::App& app, std::function<int()>& run) {
      auto o = std::make_shared<Options>();
      // f32 by default: this is the conformance interface; --precision
      // auto checks the fast path.
      o->engine.precision = "f32";
      o->engine.add_to(app);
      app.add_option("--tokens", o->tokens, "Token ids, comma separated")->check(int_list_flag());
      app.add_option("--tokens-file", o->tokens_file,
                     "File with token ids (JSON array or separated by commas / "
                     "whitespace)");
      app.add_flag("--all", o->all, "Logits at every position");
      app.add_option("--positions", o->positions,
                     "Positions, comma separated; negative counts from the end "
                     "(default -1)")
          ->check(int_list_flag());
      app.add_option("-o,--output", o->output, "Output file")->required();
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
      app.add_option("--image", o->images,
                     "Image file whose embeddings replace the <|patch|> tokens "
                     "of its layout in the tokens (repeatable, in order)");
      run = [o] { return run_logits(*o); };
    });

}  // namespace
}  // namespace herd::cli
