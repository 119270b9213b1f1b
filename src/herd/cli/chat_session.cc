#include "herd/cli/chat_session.h"

#include "herd/tokenizer/chat_format.h"

namespace herd::cli {

ChatSession::ChatSession(Engine& engine, std::string system_prompt) : engine_(engine) {
  if (!system_prompt.empty())
    messages_.push_back({{"role", "system"}, {"content", std::move(system_prompt)}});
}

Result<std::string> ChatSession::turn(const std::string& user_text, const Request& base,
                                      std::FILE* out, Completion* stats) {
  messages_.push_back({{"role", "user"}, {"content", user_text}});
  auto rendered = render_chat(engine_.tokenizer(), messages_);
  if (!rendered) {
    messages_.erase(messages_.end() - 1);
    return rendered.status();
  }
  Request r;
  r.prompt = rendered->ids;
  r.max_tokens = base.max_tokens;
  r.sampling = base.sampling;
  r.stop_ids = base.stop_ids;
  // Never more than the context: a long conversation gets a shorter reply, then an error.
  r.max_tokens = std::min<int64_t>(
      r.max_tokens, std::max<int64_t>(1, engine_.scheduler().context() - int64_t(r.prompt.size())));
  Utf8Printer printer(engine_.tokenizer(), out);
  r.on_token = [&](int32_t tok) { return printer.print(tok); };
  auto done = engine_.run(std::move(r));
  printer.finish();
  if (!done) {
    messages_.erase(messages_.end() - 1);
    return done.status();
  }
  messages_.push_back({{"role", "assistant"}, {"content", printer.text()}});
  if (stats) *stats = *done;
  return printer.text();
}

}  // namespace herd::cli
