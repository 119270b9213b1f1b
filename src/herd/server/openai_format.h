// OpenAI response shapes (chat.completion, chat.completion.chunk, text_completion, error
// objects, models list) and SSE framing. Pure functions: the HTTP layer fills them, the unit
// tests compare them with what the official client expects.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "herd/server/logprobs.h"
#include "herd/tokenizer/tokenizer.h"
#include "herd/tokenizer/tool_calls.h"

namespace herd::server {

using ojson = nlohmann::ordered_json;

// Fields every object of one response shares (the id is the same in every chunk of a stream).
struct ResponseMeta {
  std::string id;  // "chatcmpl-…" / "cmpl-…"
  int64_t created = 0;
  std::string model;
  std::string fingerprint;
};

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};

// {"error": {"message", "type", "param", "code"}}; param is the field a "field: …" message
// names, null otherwise.
ojson error_body(int http_status, const std::string& message);
// JSON text as sent: invalid UTF-8 (a token that splits a character) becomes U+FFFD.
std::string dump(const ojson& j);
std::string sse_event(const ojson& j);  // "data: {...}\n\n"
inline const char* sse_done() {
  return "data: [DONE]\n\n";
}

ojson usage_json(const Usage& u);
// Chat logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}, ...]}.
ojson chat_logprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& lps);
// Legacy completions logprobs: {tokens, token_logprobs, top_logprobs, text_offset}.
ojson completion_logprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& lps,
                          int64_t text_offset0);

// One choice of a non-streamed chat.completion.
ojson chat_choice(int index, const ParsedAssistant& message, const char* finish_reason,
                  const ojson& logprobs);
ojson chat_completion(const ResponseMeta& m, ojson choices, const Usage& u);
// One chunk with a single choice delta (finish_reason / logprobs null when not given).
ojson chat_chunk(const ResponseMeta& m, int index, ojson delta, const char* finish_reason,
                 const ojson& logprobs = nullptr);
// The final usage chunk of include_usage: empty choices.
ojson chat_usage_chunk(const ResponseMeta& m, const Usage& u);
// Streamed tool calls: one delta per call carrying id, type, name and the whole arguments.
ojson tool_call_deltas(const std::vector<ToolCall>& calls, const std::string& id_prefix);

ojson text_choice(int index, const std::string& text, const char* finish_reason,
                  const ojson& logprobs);
ojson text_completion(const ResponseMeta& m, ojson choices, const std::optional<Usage>& u);

ojson models_list(const std::string& model, int64_t created);

// "chatcmpl-" + 24 random alphanumerics.
std::string new_id(const char* prefix);

}  // namespace herd::server
