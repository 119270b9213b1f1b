// Streaming content while the output may turn into tool calls. Llama 4 writes calls as text
// ([f(x=1)], {"name": …}, <function=f>…, optionally inside <|python_start|>), so text is streamed
// as content until something that may start a call appears; from there it is held, and at the
// end parse_tool_calls decides: calls (sent as tool_call deltas) or more content.
#pragma once

#include <string>
#include <string_view>

#include "herd/tokenizer/tool_calls.h"

namespace herd::server {

class ToolStream {
 public:
  // tools_active false: everything is content, streamed as it comes.
  explicit ToolStream(bool tools_active) : active_(tools_active) {}

  // Adds generated text; returns the content that can be streamed now.
  std::string add(std::string_view text);
  // End of output: the content not streamed yet and the calls found in the whole text.
  ParsedAssistant finish();
  const std::string& text() const { return text_; }

 private:
  bool active_;
  std::string text_;
  size_t streamed_ = 0;  // bytes of text_ sent as content
  bool holding_ = false;
};

}  // namespace herd::server
