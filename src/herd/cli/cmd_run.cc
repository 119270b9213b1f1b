// `herd run`: generate a continuation of a prompt; the text goes to stdout, speeds to stderr.
#include <chrono>
#include <cstdio>
#include <optional>

#include "herd/base/thread_pool.h"
#include "herd/cli/chat_session.h"
#include "herd/cli/command.h"
#include "herd/cli/flag_checks.h"
#include "herd/cli/model_session.h"
#include "herd/runtime/generate.h"
#include "herd/runtime/request_check.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model, prompt;
  EngineFlags engine;
  int64_t n_predict = 128;
  int64_t ctx = 0;  // 0 = the model's max_position_embeddings
  SamplingFlags sampling;
  int threads = 0;
  bool no_bos = false, chat = false;
  std::string system;
};

void print_stats(double load_s, const GenerateStats& st);

int run_generate(const Options& o) {
  auto precision = o.engine.parsed_precision();
  if (!precision) return report(precision.status());
  auto quant = o.engine.parsed_quant();
  if (!quant) return report(quant.status());
  auto t0 = std::chrono::steady_clock::now();
  auto session = ModelSession::open(o.model, o.threads, *precision, *quant);
  if (!session) return report(session.status());
  ModelSession& s = **session;
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const int64_t context = context_limit(s.model().config.text.max_position_embeddings, o.ctx);
  GenerateOptions gen;
  gen.max_tokens = o.n_predict;
  gen.sampling = s.sampling_defaults();
  o.sampling.apply(gen.sampling);
  gen.stop_ids = s.stop_ids();
  if (o.chat) {  // the prompt is one user message in the chat format
    // The rendered prompt is only known inside the turn; at least the reply must fit.
    if (Status c = check_generation_length(0, o.n_predict, context, RequestNaming::kCliFlags); !c)
      return report(c);
    ChatSession chat(s, o.system);
    GenerateStats st;
    auto reply = chat.turn(o.prompt, gen, stdout, &st);
    std::fputc('\n', stdout);
    if (!reply) return report(reply.status());
    print_stats(load_s, st);
    return 0;
  }
  std::vector<int32_t> prompt = s.encode_prompt(o.prompt, !o.no_bos);
  if (prompt.empty()) return report(Status::error("the prompt is empty (no tokens to evaluate)"));
  if (Status c = check_generation_length(int64_t(prompt.size()), o.n_predict, context,
                                         RequestNaming::kCliFlags);
      !c)
    return report(c);

  Sequence seq(s.decoder());
  Utf8Printer printer(s.tokenizer(), stdout);
  auto st = generate(seq, prompt, gen, [&](int32_t tok) { return printer.print(tok); });
  printer.finish();
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!st) return report(st.status());
  print_stats(load_s, *st);
  return 0;
}

void print_stats(double load_s, const GenerateStats& st) {
  std::fprintf(stderr,
               "herd run: load %.2f s | prompt %lld tokens, prefill %.1f tok/s | generated %lld "
               "tokens, decode %.2f tok/s%s\n",
               load_s, (long long)st.prompt_tokens,
               st.prefill_seconds > 0 ? double(st.prompt_tokens) / st.prefill_seconds : 0.0,
               (long long)st.generated,
               st.decode_seconds > 0 ? double(st.decode_steps) / st.decode_seconds : 0.0,
               st.hit_stop ? " (stop token)" : "");
}

CommandRegistrar reg("run", "Generate text from a prompt", [](CLI::App& app,
                                                             std::function<int()>& run) {
  auto o = std::make_shared<Options>();
  app.add_option("-m,--model", o->model, "Model directory")->required();
  app.add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  app.add_option("-n,--n-predict", o->n_predict, "Tokens to generate")
      ->check(int_in(1, kMaxTokensFlag));
  app.add_option("-t,--threads", o->threads, "Threads (default: physical cores)")
      ->check(threads_flag());
  app.add_option("--ctx", o->ctx,
                 "Most tokens of prompt plus reply (default and maximum: max_position_embeddings)")
      ->check(int_in(1, kMaxTokensFlag));
  o->engine.add_to(app);
  app.add_flag("--no-bos", o->no_bos, "Do not prepend <|begin_of_text|>");
  app.add_flag("--chat", o->chat, "Send the prompt as a user message in the chat format");
  app.add_option("-s,--system", o->system, "System prompt (with --chat)");
  o->sampling.add_to(app);
  run = [o] { return run_generate(*o); };
});

}  // namespace
}  // namespace herd::cli
