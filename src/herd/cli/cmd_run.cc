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
#include "herd/cli/image_inputs.h"
#include "herd/runtime/request_check.h"
#include "herd/tokenizer/chat_format.h"

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
  std::vector<std::string> images;
};

// The prompt with --image files: without --chat, BOS + the images' layouts + the text (Meta's
// order: image items before the text, nothing between); with --chat, one user message whose
// content is the images then the text, each <|image|> placeholder of the rendered chat replaced
// by the image's layout (as Hugging Face's processor does, spec §5.8).
Result<std::vector<int32_t>> image_prompt(const Options& o, Engine& e, const CliImages& images) {
  std::vector<std::vector<int32_t>> layouts;
  for (size_t i = 0; i < images.tiles.size(); ++i) {
    HERD_ASSIGN_OR_RETURN(auto l, image_layout(e, images, i));
    layouts.push_back(std::move(l));
  }
  std::vector<int32_t> out;
  if (!o.chat) {
    out = e.encode_prompt("", !o.no_bos);
    for (const auto& l : layouts) out.insert(out.end(), l.begin(), l.end());
    const std::vector<int32_t> text = e.encode_prompt(o.prompt, false);
    out.insert(out.end(), text.begin(), text.end());
    return out;
  }
  nlohmann::ordered_json content = nlohmann::ordered_json::array();
  for (size_t i = 0; i < layouts.size(); ++i) content.push_back({{"type", "image"}});
  content.push_back({{"type", "text"}, {"text", o.prompt}});
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  messages.push_back({{"role", "user"}, {"content", std::move(content)}});
  HERD_ASSIGN_OR_RETURN(RenderedChat chat, render_chat(e.tokenizer(), messages));
  if (chat.image_positions.size() != layouts.size())
    return make_error("chat format: {} image placeholders for {} images",
                      chat.image_positions.size(), layouts.size());
  size_t from = 0;
  for (size_t i = 0; i < layouts.size(); ++i) {
    out.insert(out.end(), chat.ids.begin() + ptrdiff_t(from),
               chat.ids.begin() + ptrdiff_t(chat.image_positions[i]));
    out.insert(out.end(), layouts[i].begin(), layouts[i].end());
    from = chat.image_positions[i] + 1;  // the <|image|> placeholder itself is replaced
  }
  out.insert(out.end(), chat.ids.begin() + ptrdiff_t(from), chat.ids.end());
  return out;
}

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
  CliImages images;
  if (!o.images.empty()) {
    auto r = load_cli_images(e, o.images);
    if (!r) return report(r.status());
    images = std::move(r).value();
  }
  if (o.chat && images.tiles.empty()) {  // the prompt is one user message in the chat format
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
  if (images.tiles.empty()) {
    req.prompt = e.encode_prompt(o.prompt, !o.no_bos);
  } else {
    auto p = image_prompt(o, e, images);
    if (!p) return report(p.status());
    req.prompt = std::move(p).value();
  }
  if (req.prompt.empty())
    return report(Status::error("the prompt is empty (no tokens to evaluate)"));
  if (Status c = check_generation_length(int64_t(req.prompt.size()), o.n_predict,
                                         e.scheduler().context(), RequestNaming::kCliFlags);
      !c)
    return report(c);
  if (!images.tiles.empty())
    if (Status st = attach_images(e, images, req); !st) return report(st);
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
      app.add_option("--image", o->images, "Image file placed before the prompt text (repeatable)");
      o->sampling.add_to(app);
      run = [o, &app] {
        o->have_prompt = app.count("--prompt") > 0;
        o->have_file = app.count("--file") > 0;
        return run_generate(*o);
      };
    });

}  // namespace
}  // namespace herd::cli
