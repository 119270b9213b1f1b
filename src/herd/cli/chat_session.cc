#include "herd/cli/chat_session.h"

#include <algorithm>

#include "herd/tokenizer/chat_format.h"

namespace herd::cli {

ChatSession::ChatSession(ModelSession& model, std::string system_prompt)
    : model_(model), seq_(model.decoder()) {
  if (!system_prompt.empty())
    messages_.push_back({{"role", "system"}, {"content", std::move(system_prompt)}});
}

Result<std::string> ChatSession::turn(const std::string& user_text, const GenerateOptions& opt,
                                      std::FILE* out, GenerateStats* stats) {
  messages_.push_back({{"role", "user"}, {"content", user_text}});
  auto rendered = render_chat(model_.tokenizer(), messages_);
  if (!rendered) {
    messages_.erase(messages_.end() - 1);
    return rendered.status();
  }
  const std::vector<int32_t>& ids = rendered->ids;
  // Reuse the cache when the conversation so far is a prefix of the new prompt (it is, unless
  // the template renders earlier turns differently); otherwise start over.
  const bool prefix = evaluated_.size() < ids.size() &&
                      std::equal(evaluated_.begin(), evaluated_.end(), ids.begin());
  if (!prefix) {
    seq_.reset();
    evaluated_.clear();
  }
  std::vector<int32_t> fresh(ids.begin() + std::ptrdiff_t(evaluated_.size()), ids.end());
  Utf8Printer printer(model_.tokenizer(), out);
  std::vector<int32_t> generated;
  auto st = generate(seq_, fresh, opt, [&](int32_t tok) {
    generated.push_back(tok);
    return printer.print(tok);
  });
  printer.finish();
  if (!st) {
    seq_.reset();
    evaluated_.clear();
    messages_.erase(messages_.end() - 1);
    return st.status();
  }
  evaluated_.insert(evaluated_.end(), fresh.begin(), fresh.end());
  // The cache holds every generated token but possibly the last one (never evaluated).
  const size_t held = size_t(seq_.n_past()) - evaluated_.size();
  evaluated_.insert(evaluated_.end(), generated.begin(),
                    generated.begin() + std::ptrdiff_t(std::min(held, generated.size())));
  messages_.push_back({{"role", "assistant"}, {"content", printer.text()}});
  if (stats) *stats = *st;
  return printer.text();
}

}  // namespace herd::cli
