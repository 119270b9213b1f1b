// Llama 4 chat prompt (spec §4.3): renders OpenAI-style messages exactly as Hugging Face's
// default Llama 4 chat template (shared/llama4/chat_template.jinja, rendered by transformers
// with trim_blocks, lstrip_blocks and tojson = json.dumps(ensure_ascii=False)) and tokenizes
// it the way Meta does: structural special tokens by id, message content as plain text, so a
// user who types "<|eot|>" gets the characters, not the token.
//
// Messages are nlohmann::ordered_json so tool definitions keep their key order, which the
// template prints (json.dumps keeps insertion order). Intentional differences from Jinja, where
// Jinja would raise an error instead: null content renders as empty, and list content in the
// first user message with tools renders its text/image parts (Jinja prints a Python repr).
// Content items of type "image_url" (what OpenAI clients send) count as "image"; the template
// itself knows only "image".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "herd/base/status.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {

struct ChatOptions {
  bool add_generation_prompt = true;            // end with the assistant header
  bool tools_in_user_message = true;            // template default: tools go in the first user turn
  bool add_bos = true;                          // <|begin_of_text|> first
  std::optional<nlohmann::ordered_json> tools;  // OpenAI "tools" array; nullopt = no tools
};

struct RenderedChat {
  std::string text;          // the prompt, byte for byte what the Jinja template renders
  std::vector<int32_t> ids;  // its tokens (empty when rendered without a tokenizer)
  // Index in `ids` of each <|image|> placeholder, one per image content item in order. The
  // vision encoder replaces each with <|image_start|> … <|image_end|> (spec §5.8).
  std::vector<size_t> image_positions;
};

// Renders and tokenizes. Errors name the offending message ("messages[2].content: ...").
Result<RenderedChat> render_chat(const Tokenizer& tok, const nlohmann::ordered_json& messages,
                                 const ChatOptions& options = {});
// Text only (ids and image_positions stay empty).
Result<RenderedChat> render_chat_text(const nlohmann::ordered_json& messages,
                                      const ChatOptions& options = {});

// json.dumps(value, ensure_ascii=False, indent=indent) as Python writes it: ", " and ": "
// separators without indent, "," and ": " with one; indent < 0 means none.
std::string python_json_dumps(const nlohmann::ordered_json& value, int indent = -1);

// Python's str.strip() (Unicode whitespace), which Jinja's trim filter uses.
std::string python_strip(std::string_view s);

}  // namespace herd
