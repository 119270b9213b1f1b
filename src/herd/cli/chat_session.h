// A multi-turn conversation: each turn renders the whole conversation with the Llama 4 chat
// format and submits it to the engine's scheduler, whose prefix cache finds the earlier turns'
// pages, so only the new tokens are evaluated.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "herd/cli/engine_flags.h"

namespace herd::cli {

class ChatSession {
 public:
  ChatSession(Engine& engine, std::string system_prompt);

  // Adds a user message, generates the assistant reply with the settings of `base`
  // (max_tokens, sampling, stop ids), printed to `out` as it comes (may be null), adds it to the
  // conversation and returns it.
  Result<std::string> turn(const std::string& user_text, const Request& base, std::FILE* out,
                           Completion* stats = nullptr);

 private:
  Engine& engine_;
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
};

}  // namespace herd::cli
