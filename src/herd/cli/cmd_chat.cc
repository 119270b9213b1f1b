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
  std::string system;
  EngineFlags engine;
  int64_t n_predict = 512;
  SamplingFlags sampling;
};

int run_chat(const Options& o) {
  auto opt = o.engine.options();
  if (!opt) return report(opt.status());
  auto engine = Engine::open(*opt);
  if (!engine) return report(engine.status());
  Engine& e = **engine;
  if (Status c = check_generation_length(0, o.n_predict, e.scheduler().context(),
                                         RequestNaming::kCliFlags);
      !c)
    return report(c);
  Request base;
  base.max_tokens = o.n_predict;
  base.sampling = e.sampling_defaults();
  o.sampling.apply(base.sampling);
  base.stop_ids = e.stop_ids();
  auto chat = std::make_unique<ChatSession>(e, o.system);
  const bool tty = isatty(0);
  std::string line;
  for (;;) {
    if (tty) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/reset") {
      chat = std::make_unique<ChatSession>(e, o.system);
      continue;
    }
    auto reply = chat->turn(line, base, stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!reply) return report(reply.status());
  }
  return 0;
}

CommandRegistrar reg("chat", "Interactive chat (Llama 4 chat format)",
                     [](CLI::App& app, std::function<int()>& run) {
                       auto o = std::make_shared<Options>();
                       app.add_option("-s,--system", o->system, "System prompt");
                       app.add_option("-n,--n-predict", o->n_predict, "Most tokens per reply")
                           ->check(int_in(1, kMaxTokensFlag));
                       o->sampling.add_to(app);
                       o->engine.add_to(app);
                       run = [o] { return run_chat(*o); };
                     });

}  // namespace
}  // namespace herd::cli
