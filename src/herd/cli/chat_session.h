// A multi-turn conversation over one KV cache: each turn renders the whole conversation with the
// Llama 4 chat format and evaluates only the tokens the cache does not hold yet.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "herd/cli/model_session.h"
#include "herd/runtime/generate.h"

namespace herd::cli {

class ChatSession {
 public:
  ChatSession(ModelSession& model, std::string system_prompt);

  // Adds a user message, generates the assistant reply (printed to `out` as it comes, may be
  // null), adds it to the conversation and returns it.
  Result<std::string> turn(const std::string& user_text, const GenerateOptions& opt,
                           std::FILE* out, GenerateStats* stats = nullptr);

 private:
  ModelSession& model_;
  Sequence seq_;
  std::vector<int32_t> evaluated_;  // tokens the cache holds, in order
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
};

}  // namespace herd::cli
