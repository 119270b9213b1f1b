// `herd run`: generate a continuation of a prompt; the text goes to stdout, speeds to stderr.
#include <chrono>
#include <cstdio>
#include <optional>

#include "herd/base/thread_pool.h"
#include "herd/cli/command.h"
#include "herd/cli/model_session.h"
#include "herd/runtime/generate.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model, prompt, precision = "f32";
  int64_t n_predict = 128;
  SamplingFlags sampling;
  int threads = 0;
  bool no_bos = false;
};

int run_generate(const Options& o) {
  if (o.precision != "f32" && o.precision != "auto")
    return report(make_error("--precision {}: only f32 is available in this build", o.precision));
  auto t0 = std::chrono::steady_clock::now();
  auto session = ModelSession::open(o.model, o.threads);
  if (!session) return report(session.status());
  ModelSession& s = **session;
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::vector<int32_t> prompt = s.encode_prompt(o.prompt, !o.no_bos);
  if (prompt.empty()) return report(Status::error("the prompt is empty (no tokens to evaluate)"));
  GenerateOptions gen;
  gen.max_tokens = o.n_predict;
  gen.sampling = s.sampling_defaults();
  o.sampling.apply(gen.sampling);
  gen.stop_ids = s.stop_ids();

  Sequence seq(s.decoder());
  Utf8Printer printer(s.tokenizer(), stdout);
  auto st = generate(seq, prompt, gen, [&](int32_t tok) { return printer.print(tok); });
  printer.finish();
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!st) return report(st.status());
  std::fprintf(stderr,
               "herd run: load %.2f s | prompt %lld tokens, prefill %.1f tok/s | generated %lld "
               "tokens, decode %.2f tok/s%s\n",
               load_s, (long long)st->prompt_tokens,
               st->prefill_seconds > 0 ? double(st->prompt_tokens) / st->prefill_seconds : 0.0,
               (long long)st->generated,
               st->decode_seconds > 0 ? double(st->decode_steps) / st->decode_seconds : 0.0,
               st->hit_stop ? " (stop token)" : "");
  return 0;
}

CommandRegistrar reg("run", "Generate text from a prompt", [](CLI::App& app,
                                                             std::function<int()>& run) {
  auto o = std::make_shared<Options>();
  app.add_option("-m,--model", o->model, "Model directory")->required();
  app.add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  app.add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->check(CLI::NonNegativeNumber);
  app.add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  app.add_option("--precision", o->precision, "f32 (reference)");
  app.add_flag("--no-bos", o->no_bos, "Do not prepend <|begin_of_text|>");
  o->sampling.add_to(app);
  run = [o] { return run_generate(*o); };
});

}  // namespace
}  // namespace herd::cli
