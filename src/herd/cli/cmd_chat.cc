// `herd chat`: interactive multi-turn chat in the Llama 4 chat format. One user message per
// line on stdin; "/reset" starts over; end of input (Ctrl-D) quits.
#include <unistd.h>

#include <iostream>
#include <string>

#include "herd/cli/chat_session.h"
#include "herd/cli/command.h"
#include "herd/cli/flag_checks.h"
#include "herd/runtime/request_check.h"

namespace herd::cli {
namespace {

struct Options {
  std::string model, system;
  EngineFlags engine;
  int64_t n_predict = 512;
  int64_t ctx = 0;  // 0 = the model's max_position_embeddings
  SamplingFlags sampling;
  int threads = 0;
};

int run_chat(const Options& o) {
  auto precision = o.engine.parsed_precision();
  if (!precision) return report(precision.status());
  auto quant = o.engine.parsed_quant();
  if (!quant) return report(quant.status());
  auto session = ModelSession::open(o.model, o.threads, *precision, *quant);
  if (!session) return report(session.status());
  const int64_t context =
      context_limit((*session)->model().config.text.max_position_embeddings, o.ctx);
  if (Status c = check_generation_length(0, o.n_predict, context, RequestNaming::kCliFlags); !c)
    return report(c);
  GenerateOptions gen;
  gen.max_tokens = o.n_predict;
  gen.sampling = (*session)->sampling_defaults();
  o.sampling.apply(gen.sampling);
  gen.stop_ids = (*session)->stop_ids();
  auto chat = std::make_unique<ChatSession>(**session, o.system);
  const bool tty = isatty(0);
  std::string line;
  for (;;) {
    if (tty) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/reset") {
      chat = std::make_unique<ChatSession>(**session, o.system);
      continue;
    }
    auto reply = chat->turn(line, gen, stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!reply) return report(reply.status());
  }
  return 0;
}

CommandRegistrar reg("chat", "Interactive chat (Llama 4 chat format)", [](CLI::App& app,
                                                                         std::function<int()>& run) {
  auto o = std::make_shared<Options>();
  app.add_option("-m,--model", o->model, "Model directory")->required();
  app.add_option("-s,--system", o->system, "System prompt");
  app.add_option("-n,--n-predict", o->n_predict, "Most tokens per reply")
      ->check(int_in(1, kMaxTokensFlag));
  app.add_option("-t,--threads", o->threads, "Threads (default: physical cores)")
      ->check(threads_flag());
  app.add_option("--ctx", o->ctx,
                 "Most tokens of prompt plus reply (default and maximum: max_position_embeddings)")
      ->check(int_in(1, kMaxTokensFlag));
  o->sampling.add_to(app);
  o->engine.add_to(app);
  run = [o] { return run_chat(*o); };
});

}  // namespace
}  // namespace herd::cli
