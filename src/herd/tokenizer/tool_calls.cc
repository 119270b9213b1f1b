#include "herd/tokenizer/tool_calls.h"

#include "herd/tokenizer/chat_format.h"
#include "herd/tokenizer/special_tokens.h"

namespace herd {
namespace {

using ojson = nlohmann::ordered_json;

void skip_ws(std::string_view t, size_t& p) {
  while (p < t.size() && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r')) ++p;
}

bool is_ident_start(char c) {
  return isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_ident(char c) {
  return isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// name(k=v, ...) with a dotted name allowed (module.func).
bool parse_py_call(std::string_view t, size_t& p, ToolCall& call) {
  size_t b = p;
  if (p >= t.size() || !is_ident_start(t[p])) return false;
  while (p < t.size() &&
         (is_ident(t[p]) || (t[p] == '.' && p + 1 < t.size() && is_ident_start(t[p + 1]))))
    ++p;
  call.name = std::string(t.substr(b, p - b));
  skip_ws(t, p);
  if (p >= t.size() || t[p] != '(') return false;
  ++p;
  call.arguments = ojson::object();
  skip_ws(t, p);
  while (p < t.size() && t[p] != ')') {
    size_t kb = p;
    while (p < t.size() && is_ident(t[p])) ++p;
    if (p == kb || !is_ident_start(t[kb])) return false;  // positional arguments: not a tool call
    std::string key(t.substr(kb, p - kb));
    skip_ws(t, p);
    if (p >= t.size() || t[p] != '=') return false;
    ++p;
    skip_ws(t, p);
    ojson v;
    if (!parse_python_literal(t, p, v)) return false;
    call.arguments[key] = std::move(v);
    skip_ws(t, p);
    if (p < t.size() && t[p] == ',') {
      ++p;
      skip_ws(t, p);
    } else if (p < t.size() && t[p] != ')') {
      return false;
    }
  }
  if (p >= t.size()) return false;
  ++p;
  return true;
}

// [f(...), g(...)] filling the whole of t (bare `f(...)` too when allow_bare).
bool parse_pythonic(std::string_view t, bool allow_bare, std::vector<ToolCall>& calls) {
  size_t p = 0;
  skip_ws(t, p);
  const bool bracketed = p < t.size() && t[p] == '[';
  if (!bracketed && !allow_bare) return false;
  if (bracketed) ++p;
  do {
    skip_ws(t, p);
    if (bracketed && p < t.size() && t[p] == ']' && !calls.empty()) break;  // trailing comma
    ToolCall c;
    if (!parse_py_call(t, p, c)) return false;
    calls.push_back(std::move(c));
    skip_ws(t, p);
  } while (p < t.size() && t[p] == ',' && ++p);
  if (bracketed) {
    if (p >= t.size() || t[p] != ']') return false;
    ++p;
  }
  skip_ws(t, p);
  return p == t.size() && !calls.empty();
}

// {"name": ..., "parameters"|"arguments": {...}}; arguments may also be a JSON string.
bool json_call(const ojson& j, ToolCall& call) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  call.name = j["name"].get<std::string>();
  const char* key = j.contains("parameters")  ? "parameters"
                    : j.contains("arguments") ? "arguments"
                                              : nullptr;
  if (!key) return false;
  ojson args = j[key];
  if (args.is_string()) args = ojson::parse(args.get<std::string>(), nullptr, false);
  if (!args.is_object()) return false;
  call.arguments = std::move(args);
  return true;
}

bool parse_json_calls(std::string_view t, std::vector<ToolCall>& calls) {
  ojson j = ojson::parse(t, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return false;
  for (const ojson& item : j.is_array() ? j : ojson::array({j})) {
    ToolCall c;
    if (!json_call(item, c)) return false;
    calls.push_back(std::move(c));
  }
  return !calls.empty();
}

// <function=name>{...}</function> repeated.
bool parse_function_tags(std::string_view t, std::vector<ToolCall>& calls) {
  size_t p = 0;
  skip_ws(t, p);
  while (p < t.size()) {
    if (t.substr(p, 10) != "<function=") return false;
    size_t name_end = t.find('>', p);
    size_t close = t.find("</function>", p);
    if (name_end == std::string_view::npos || close == std::string_view::npos || close < name_end)
      return false;
    ToolCall c;
    c.name = std::string(t.substr(p + 10, name_end - p - 10));
    c.arguments = ojson::parse(t.substr(name_end + 1, close - name_end - 1), nullptr, false);
    if (c.name.empty() || !c.arguments.is_object()) return false;
    calls.push_back(std::move(c));
    p = close + 11;
    skip_ws(t, p);
  }
  return !calls.empty();
}

bool parse_calls(std::string_view t, bool allow_bare, std::vector<ToolCall>& calls) {
  calls.clear();
  if (parse_pythonic(t, allow_bare, calls)) return true;
  calls.clear();
  if (parse_json_calls(t, calls)) return true;
  calls.clear();
  if (parse_function_tags(t, calls)) return true;
  calls.clear();
  return false;
}

// Cheap test of whether a call list could start at t[i], before trying the parsers.
bool plausible_start(std::string_view t, size_t i) {
  if (t[i] == '<') return t.substr(i, 10) == "<function=";
  size_t p = i + 1;
  skip_ws(t, p);
  if (p >= t.size()) return false;
  const bool json_like = t[i] == '{' || t[p] == '{';
  if (json_like) return t.find("\"name\"", i) != std::string_view::npos;
  return t[i] == '[' && is_ident_start(t[p]);
}

std::string_view trim_end(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

ParsedAssistant parse_tool_calls(std::string_view text) {
  std::string_view t = trim_end(text);
  for (std::string_view stop : {special::kEot, special::kEom, special::kEndOfText})
    if (t.size() >= stop.size() && t.substr(t.size() - stop.size()) == stop)
      t = trim_end(t.substr(0, t.size() - stop.size()));
  ParsedAssistant out;
  // <|python_start|> marks the call explicitly; what precedes it is prose.
  size_t ps = t.find(special::kPythonStart);
  if (ps != std::string_view::npos) {
    std::string_view inner = t.substr(ps + special::kPythonStart.size());
    size_t pe = inner.find(special::kPythonEnd);
    if (pe != std::string_view::npos &&
        trim_end(inner.substr(pe + special::kPythonEnd.size())).empty())
      inner = inner.substr(0, pe);
    if (pe == std::string_view::npos || inner.size() == pe) {
      if (parse_calls(inner, /*allow_bare=*/true, out.tool_calls)) {
        out.content = std::string(trim_end(t.substr(0, ps)));
        return out;
      }
    }
  }
  // Otherwise the calls are the tail of the text starting at some '[', '{' or '<'.
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c != '[' && c != '{' && c != '<') continue;
    if (i > 0 && c == '[' && is_ident(t[i - 1])) continue;  // x[0] inside prose
    if (!plausible_start(t, i)) continue;  // keeps long outputs from costing O(n^2) parses
    if (parse_calls(t.substr(i), /*allow_bare=*/false, out.tool_calls)) {
      out.content = std::string(trim_end(t.substr(0, i)));
      return out;
    }
  }
  out.content = std::string(text);
  return out;
}

nlohmann::ordered_json to_openai_message(const ParsedAssistant& parsed,
                                         const std::string& id_prefix) {
  ojson m = {{"role", "assistant"}};
  m["content"] =
      parsed.content.empty() && !parsed.tool_calls.empty() ? ojson() : ojson(parsed.content);
  if (parsed.tool_calls.empty()) return m;
  ojson calls = ojson::array();
  for (size_t i = 0; i < parsed.tool_calls.size(); ++i) {
    const ToolCall& c = parsed.tool_calls[i];
    calls.push_back(
        {{"id", id_prefix + std::to_string(i)},
         {"type", "function"},
         {"function", {{"name", c.name}, {"arguments", python_json_dumps(c.arguments)}}}});
  }
  m["tool_calls"] = std::move(calls);
  return m;
}

std::string render_tool_definitions(const nlohmann::ordered_json& tools) {
  std::string out;
  if (!tools.is_array()) return out;
  for (const auto& t : tools) out += python_json_dumps(t, 4) + "\n\n";
  return out;
}

}  // namespace herd
