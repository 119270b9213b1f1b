// `herd logits`: raw little-endian float32 logits, one vocab-size row per requested position.
// The interface the conformance tests compare against llama.cpp.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "herd/base/mapped_file.h"
#include "herd/base/thread_pool.h"
#include "herd/cli/command.h"
#include "herd/cli/token_list.h"
#include "herd/model/text.h"
#include "herd/runtime/sequence.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model, tokens, tokens_file, positions, precision = "f32", output;
  bool all = false;
  int threads = 0;
  int64_t ubatch = 512;
};

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
  if (o.precision != "f32" && o.precision != "auto")
    return report(make_error("--precision {}: only f32 is available in this build", o.precision));
  const int64_t n = int64_t(tokens.size());
  std::vector<int64_t> want;
  if (o.all) {
    for (int64_t i = 0; i < n; ++i) want.push_back(i);
  } else {
    auto r = parse_position_list(o.positions.empty() ? "-1" : o.positions, n);
    if (!r) return report(r.status());
    want = std::move(r).value();
  }
  auto model = load_model(o.model);
  if (!model) return report(model.status());
  ThreadPool pool(o.threads);
  TextDecoder decoder(*model, pool);
  Sequence seq(decoder, o.ubatch);
  // Rows are computed in ascending position order, then written in the order asked for.
  std::vector<int64_t> sorted(want);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  const int64_t V = decoder.vocab_size();
  std::vector<float> logits(sorted.size() * size_t(V));
  Status s = seq.append(tokens, sorted, logits.data());
  if (!s) return report(s);
  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  if (!out) return report(make_error("{}: cannot create output file", o.output));
  for (int64_t p : want) {
    const size_t row = size_t(std::lower_bound(sorted.begin(), sorted.end(), p) - sorted.begin());
    out.write(reinterpret_cast<const char*>(&logits[row * size_t(V)]), std::streamsize(V * 4));
  }
  if (!out.good()) return report(make_error("{}: write failed", o.output));
  std::fprintf(stderr, "herd logits: %lld tokens, %zu rows of %lld floats -> %s\n",
               (long long)n, want.size(), (long long)V, o.output.c_str());
  return 0;
}

CommandRegistrar reg("logits", "Write raw float32 logits for a token sequence",
                     [](CLI::App& app, std::function<int()>& run) {
                       auto o = std::make_shared<Options>();
                       app.add_option("-m,--model", o->model, "Model directory")->required();
                       app.add_option("--tokens", o->tokens, "Token ids, comma separated");
                       app.add_option("--tokens-file", o->tokens_file,
                                      "File with token ids (JSON array or separated by commas / "
                                      "whitespace)");
                       app.add_flag("--all", o->all, "Logits at every position");
                       app.add_option("--positions", o->positions,
                                      "Positions, comma separated; negative counts from the end "
                                      "(default -1)");
                       app.add_option("--precision", o->precision, "f32 (reference)");
                       app.add_option("-o,--output", o->output, "Output file")->required();
                       app.add_option("-t,--threads", o->threads, "Threads (default: cores)");
                       app.add_option("--ubatch", o->ubatch, "Tokens per forward call");
                       run = [o] { return run_logits(*o); };
                     });

}  // namespace
}  // namespace herd::cli
