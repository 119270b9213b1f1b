#include "herd/server/openai_format.h"

#include <random>

#include "herd/tokenizer/chat_format.h"

namespace herd::server {

namespace {

const char* error_type(int status) {
  switch (status) {
    case 400:
    case 404:
    case 413:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable";
    default:
      return "server_error";
  }
}

// "temperature: got 5, ..." -> "temperature"; "messages[1].content: ..." -> that path.
ojson param_of(const std::string& message) {
  const size_t colon = message.find(": ");
  if (colon == std::string::npos || colon == 0) return nullptr;
  const std::string head = message.substr(0, colon);
  for (char c : head)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '[' ||
          c == ']'))
      return nullptr;
  return head;
}

ojson token_entry(const Tokenizer& tok, int32_t id, float logprob) {
  auto bytes = tok.token_bytes(id);
  const std::string s = bytes ? std::string(*bytes) : std::string();
  ojson b = ojson::array();
  for (unsigned char c : s) b.push_back(int(c));
  return {{"token", s}, {"logprob", logprob}, {"bytes", b}};
}

}  // namespace

ojson error_body(int status, const std::string& message) {
  ojson code = nullptr;
  if (status == 401) code = "invalid_api_key";
  if (status == 404) code = "model_not_found";
  if (status == 429) code = "rate_limit_exceeded";
  if (status == 413) code = "request_too_large";
  return {{"error",
           {{"message", message},
            {"type", error_type(status)},
            {"param", param_of(message)},
            {"code", code}}}};
}

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sse_event(const ojson& j) {
  return "data: " + dump(j) + "\n\n";
}

ojson usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

ojson chat_logprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& lps) {
  ojson content = ojson::array();
  for (const TokenLogprob& lp : lps) {
    ojson e = token_entry(tok, lp.id, lp.logprob);
    ojson top = ojson::array();
    for (const auto& [id, l] : lp.top) top.push_back(token_entry(tok, id, l));
    e["top_logprobs"] = std::move(top);
    content.push_back(std::move(e));
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

ojson completion_logprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& lps,
                          int64_t offset) {
  ojson tokens = ojson::array(), values = ojson::array(), tops = ojson::array(),
        offsets = ojson::array();
  for (const TokenLogprob& lp : lps) {
    auto bytes = tok.token_bytes(lp.id);
    const std::string s = bytes ? std::string(*bytes) : std::string();
    tokens.push_back(s);
    values.push_back(lp.logprob);
    ojson top = ojson::object();
    for (const auto& [id, l] : lp.top) {
      auto b = tok.token_bytes(id);
      top[b ? std::string(*b) : std::string()] = l;
    }
    tops.push_back(std::move(top));
    offsets.push_back(offset);
    offset += int64_t(s.size());
  }
  return {{"tokens", tokens},
          {"token_logprobs", values},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

ojson chat_choice(int index, const ParsedAssistant& message, const char* finish_reason,
                  const ojson& logprobs) {
  // Unique per choice and request, as OpenAI's are: clients match tool results by these ids
  // across a whole conversation.
  ojson msg = to_openai_message(message, new_id("call_") + "_");
  msg["refusal"] = nullptr;
  return {{"index", index},
          {"message", std::move(msg)},
          {"logprobs", logprobs},
          {"finish_reason", finish_reason}};
}

ojson chat_completion(const ResponseMeta& m, ojson choices, const Usage& u) {
  return {{"id", m.id},
          {"object", "chat.completion"},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", m.fingerprint},
          {"choices", std::move(choices)},
          {"usage", usage_json(u)}};
}

ojson chat_chunk(const ResponseMeta& m, int index, ojson delta, const char* finish_reason,
                 const ojson& logprobs) {
  ojson choice = {{"index", index},
                  {"delta", std::move(delta)},
                  {"logprobs", logprobs},
                  {"finish_reason", finish_reason ? ojson(finish_reason) : ojson(nullptr)}};
  return {{"id", m.id},
          {"object", "chat.completion.chunk"},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", m.fingerprint},
          {"choices", ojson::array({std::move(choice)})}};
}

ojson chat_usage_chunk(const ResponseMeta& m, const Usage& u) {
  return {{"id", m.id},
          {"object", "chat.completion.chunk"},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", m.fingerprint},
          {"choices", ojson::array()},
          {"usage", usage_json(u)}};
}

ojson tool_call_deltas(const std::vector<ToolCall>& calls, const std::string& id_prefix) {
  ojson out = ojson::array();
  for (size_t i = 0; i < calls.size(); ++i)
    out.push_back(
        {{"index", i},
         {"id", id_prefix + std::to_string(i)},
         {"type", "function"},
         {"function",
          {{"name", calls[i].name}, {"arguments", python_json_dumps(calls[i].arguments)}}}});
  return out;
}

ojson text_choice(int index, const std::string& text, const char* finish_reason,
                  const ojson& logprobs) {
  return {{"text", text},
          {"index", index},
          {"logprobs", logprobs},
          {"finish_reason", finish_reason ? ojson(finish_reason) : ojson(nullptr)}};
}

ojson text_completion(const ResponseMeta& m, ojson choices, const std::optional<Usage>& u) {
  ojson j = {
      {"id", m.id},       {"object", "text_completion"},         {"created", m.created},
      {"model", m.model}, {"system_fingerprint", m.fingerprint}, {"choices", std::move(choices)}};
  if (u) j["usage"] = usage_json(*u);
  return j;
}

ojson models_list(const std::string& model, int64_t created) {
  return {
      {"object", "list"},
      {"data",
       ojson::array(
           {{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "herd"}}})}};
}

std::string new_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kChars[rng() % (sizeof(kChars) - 1)];
  return id;
}

}  // namespace herd::server
