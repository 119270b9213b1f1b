// Tool calls in Llama 4 output (spec §4.4): the model's text -> OpenAI `tool_calls`.
//
// Accepted forms, each optionally preceded by prose (kept as the message content) and wrapped
// in <|python_start|>…<|python_end|>, with a trailing <|eot|>/<|eom|> ignored:
//   pythonic   [get_weather(city="Paris", days=2), ping()]   Python literals as arguments:
//              strings ('…' or "…", with escapes), ints, floats, True/False/None,
//              true/false/null, lists, tuples, dicts, nested. Inside <|python_start|> a single
//              call may also stand without brackets.
//   JSON       {"name": "f", "parameters": {…}}  ("arguments" also; a list of them too)
//   tag        <function=f>{"a": 1}</function>   (several in a row)
// The calls must run to the end of the output. Anything else is plain text: parsing never
// fails, it just finds no calls.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments;  // always an object
};

struct ParsedAssistant {
  std::string content;  // prose (the whole text when there are no calls)
  std::vector<ToolCall> tool_calls;
};

ParsedAssistant parse_tool_calls(std::string_view text);

// OpenAI chat message {"role": "assistant", "content": …, "tool_calls": [{"id", "type":
// "function", "function": {"name", "arguments": JSON text}}]}; ids are id_prefix + index.
// content is null when it is empty and there are calls, as OpenAI sends it.
nlohmann::ordered_json to_openai_message(const ParsedAssistant& parsed,
                                         const std::string& id_prefix = "call_");

// Tool definitions as the official template prints them: each one json.dumps(indent=4)
// followed by a blank line.
std::string render_tool_definitions(const nlohmann::ordered_json& tools);

// Parses one Python literal (the argument values of a pythonic call) at text[pos], advancing
// pos; false when the text there is not a literal. Exposed for tests.
bool parse_python_literal(std::string_view text, size_t& pos, nlohmann::ordered_json& out);

}  // namespace herd
