// `herd run`: generate a continuation of a prompt (-p TEXT or -f FILE); the text goes to stdout,
// speeds to stderr, and a long prefill shows a progress bar with tokens/s and ETA.
#include <chrono>
#include <cstdio>
#include <optional>

#include "herd/base/mapped_file.h"
#include "herd/base/progress.h"
#include "herd/base/thread_pool.h"
#include "herd/cli/chat_session.h"
#include "herd/cli/command.h"
#include "herd/cli/engine_flags.h"
#include "herd/cli/flag_checks.h"
#include "herd/runtime/request_check.h"

namespace herd::cli {
namespace {

struct Options {
  std::string prompt, prompt_file;
  bool have_prompt = false, have_file = false;
  EngineFlags engine;
  int64_t n_predict = 128;
  SamplingFlags sampling;
  bool no_bos = false, chat = false;
  std::string system;
};

void print_stats(double load_s, const Completion& c);

// Prefills of at least this many tokens show a progress bar.
constexpr int64_t kProgressTokens = 8192;

int run_generate(Options o) {
  if (o.have_prompt == o.have_file)
    return report(Status::error(o.have_prompt ? "give the prompt with -p or -f, not both"
                                              : "a prompt is required: -p TEXT or -f FILE"));
  if (o.have_file) {
    auto text = read_text_file(o.prompt_file);
    if (!text) return report(text.status());
    o.prompt = std::move(*text);
  }
  auto opt = o.engine.options();
  if (!opt) return report(opt.status());
  auto engine = Engine::open(*opt);
  if (!engine) return report(engine.status());
  Engine& e = **engine;

  Request req;
  req.max_tokens = o.n_predict;
  req.sampling = e.sampling_defaults();
  o.sampling.apply(req.sampling);
  req.stop_ids = e.stop_ids();
  if (o.chat) {  // the prompt is one user message in the chat format
    // The rendered prompt is only known inside the turn; at least the reply must fit.
    if (Status c = check_generation_length(0, o.n_predict, e.scheduler().context(),
                                           RequestNaming::kCliFlags);
        !c)
      return report(c);
    ChatSession chat(e, o.system);
    Completion c;
    auto reply = chat.turn(o.prompt, req, stdout, &c);
    std::fputc('\n', stdout);
    if (!reply) return report(reply.status());
    print_stats(e.load_seconds(), c);
    return 0;
  }
  req.prompt = e.encode_prompt(o.prompt, !o.no_bos);
  if (req.prompt.empty())
    return report(Status::error("the prompt is empty (no tokens to evaluate)"));
  if (Status c = check_generation_length(int64_t(req.prompt.size()), o.n_predict,
                                         e.scheduler().context(), RequestNaming::kCliFlags);
      !c)
    return report(c);
  Utf8Printer printer(e.tokenizer(), stdout);
  req.on_token = [&](int32_t tok) { return printer.print(tok); };
  const int64_t n_prompt = int64_t(req.prompt.size());
  Progress bar("prefill", uint64_t(n_prompt), n_prompt >= kProgressTokens);
  bar.show_rate("tok");
  int64_t shown = -1;
  req.on_prefill = [&](int64_t done, int64_t total) {
    if (shown < 0) shown = 0;  // the first call also counts reused tokens, as done
    bar.add(uint64_t(done - shown));
    shown = done;
    if (done == total) bar.finish();
  };
  auto c = e.run(std::move(req));
  printer.finish();
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!c) return report(c.status());
  print_stats(e.load_seconds(), *c);
  return 0;
}

void print_stats(double load_s, const Completion& c) {
  const int64_t evaluated = c.prompt_tokens - c.reused_tokens;
  std::fprintf(stderr,
               "herd run: load %.2f s | prompt %lld tokens (%lld reused), prefill %.1f tok/s | "
               "generated %lld tokens, decode %.2f tok/s%s\n",
               load_s, (long long)c.prompt_tokens, (long long)c.reused_tokens,
               c.prefill_seconds > 0 ? double(evaluated) / c.prefill_seconds : 0.0,
               (long long)c.generated,
               c.decode_seconds > 0 ? double(c.decode_steps) / c.decode_seconds : 0.0,
               c.reason == FinishReason::kStop ? " (stop)" : "");
}

CommandRegistrar reg(
    "run", "Generate text from a prompt", [](CLI::App& app, std::function<int()>& run) {
      auto o = std::make_shared<Options>();
      app.add_option("-p,--prompt", o->prompt, "Prompt text");
      app.add_option("-f,--file", o->prompt_file, "Read the prompt from this file (instead of -p)");
      app.add_option("-n,--n-predict", o->n_predict, "Tokens to generate")
          ->check(int_in(1, kMaxTokensFlag));
      o->engine.add_to(app);
      app.add_flag("--no-bos", o->no_bos, "Do not prepend <|begin_of_text|>");
      app.add_flag("--chat", o->chat, "Send the prompt as a user message in the chat format");
      app.add_option("-s,--system", o->system, "System prompt (with --chat)");
      o->sampling.add_to(app);
      run = [o, &app] {
        o->have_prompt = app.count("--prompt") > 0;
        o->have_file = app.count("--file") > 0;
        return run_generate(*o);
      };
    });

}  // namespace
}  // namespace herd::cli
