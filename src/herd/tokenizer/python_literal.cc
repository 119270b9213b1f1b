// A small parser for the Python literals that appear as tool-call arguments.
#include <charconv>

#include "herd/tokenizer/tool_calls.h"
#include "herd/tokenizer/utf8.h"

namespace herd {

std::string python_json_key(const nlohmann::ordered_json& key);

namespace {

using ojson = nlohmann::ordered_json;

void skip_ws(std::string_view t, size_t& p) {
  while (p < t.size() && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r')) ++p;
}

bool hex_value(std::string_view t, size_t p, int digits, uint32_t& v) {
  if (p + digits > t.size()) return false;
  v = 0;
  for (int i = 0; i < digits; ++i) {
    char c = t[p + i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return false;
    v = v * 16 + d;
  }
  return true;
}

bool parse_string(std::string_view t, size_t& p, std::string& out) {
  const char q = t[p++];
  out.clear();
  while (p < t.size()) {
    char c = t[p++];
    if (c == q) return true;
    if (c == '\n') return false;  // single-quoted Python strings do not span lines
    if (c != '\\') {
      out += c;
      continue;
    }
    if (p >= t.size()) return false;
    char e = t[p++];
    uint32_t cp;
    switch (e) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case '0':
        out += '\0';
        break;
      case '\\':
      case '\'':
      case '"':
        out += e;
        break;
      case '\n':
        break;  // line continuation
      case 'x':
      case 'u':
      case 'U': {
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (!hex_value(t, p, digits, cp) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
          return false;
        p += digits;
        utf8::append_code_point(out, cp);
        break;
      }
      default:
        out += '\\', out += e;  // Python keeps unknown escapes as written
    }
  }
  return false;
}

bool parse_number(std::string_view t, size_t& p, ojson& out) {
  size_t b = p;
  if (p < t.size() && (t[p] == '-' || t[p] == '+')) ++p;
  size_t digits = p;
  bool is_float = false;
  while (p < t.size() && (isdigit(static_cast<unsigned char>(t[p])) || t[p] == '_')) ++p;
  if (p < t.size() && t[p] == '.') {
    is_float = true;
    ++p;
    while (p < t.size() && isdigit(static_cast<unsigned char>(t[p]))) ++p;
  }
  if (p == digits || (p == digits + 1 && t[digits] == '.')) return false;
  if (p < t.size() && (t[p] == 'e' || t[p] == 'E')) {
    size_t e = p + 1;
    if (e < t.size() && (t[e] == '-' || t[e] == '+')) ++e;
    if (e < t.size() && isdigit(static_cast<unsigned char>(t[e]))) {
      is_float = true;
      p = e;
      while (p < t.size() && isdigit(static_cast<unsigned char>(t[p]))) ++p;
    }
  }
  std::string s;
  for (size_t i = b; i < p; ++i)
    if (t[i] != '_' && !(i == b && t[i] == '+')) s += t[i];
  if (!is_float) {
    int64_t v;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size()) {
      out = v;
      return true;
    }
  }
  try {
    out = std::stod(s);  // also big integers, as Python floats them in JSON
  } catch (...) {
    return false;
  }
  return true;
}

bool parse_value(std::string_view t, size_t& p, ojson& out, int depth);

// [a, b], (a, b) or {k: v}; trailing commas allowed.
bool parse_container(std::string_view t, size_t& p, ojson& out, int depth) {
  const char open = t[p++];
  const char close = open == '[' ? ']' : open == '(' ? ')' : '}';
  out = open == '{' ? ojson::object() : ojson::array();
  skip_ws(t, p);
  while (p < t.size() && t[p] != close) {
    ojson v;
    if (open == '{') {
      ojson key;
      if (!parse_value(t, p, key, depth + 1)) return false;
      skip_ws(t, p);
      if (p >= t.size() || t[p] != ':') return false;
      ++p;
      skip_ws(t, p);
      if (!parse_value(t, p, v, depth + 1)) return false;
      out[key.is_string() ? key.get<std::string>() : python_json_key(key)] = std::move(v);
    } else {
      if (!parse_value(t, p, v, depth + 1)) return false;
      out.push_back(std::move(v));
    }
    skip_ws(t, p);
    if (p < t.size() && t[p] == ',') {
      ++p;
      skip_ws(t, p);
    } else if (p < t.size() && t[p] != close) {
      return false;
    }
  }
  if (p >= t.size()) return false;
  ++p;
  return true;
}

bool parse_value(std::string_view t, size_t& p, ojson& out, int depth) {
  if (depth > 64 || p >= t.size()) return false;  // bounded: hostile nesting cannot overflow
  char c = t[p];
  if (c == '"' || c == '\'') {
    std::string s;
    if (!parse_string(t, p, s)) return false;
    out = s;
    return true;
  }
  if (c == '[' || c == '(' || c == '{') return parse_container(t, p, out, depth);
  for (auto [word, value] : {std::pair<std::string_view, ojson>{"True", true},
                             {"true", true},
                             {"False", false},
                             {"false", false},
                             {"None", nullptr},
                             {"null", nullptr}}) {
    if (t.substr(p, word.size()) == word) {
      size_t e = p + word.size();
      if (e < t.size() && (isalnum(static_cast<unsigned char>(t[e])) || t[e] == '_')) continue;
      p = e;
      out = value;
      return true;
    }
  }
  return parse_number(t, p, out);
}

}  // namespace

// Dict keys that are not strings (1: "a") become their JSON text, as json.dumps does.
std::string python_json_key(const nlohmann::ordered_json& key) {
  if (key.is_boolean()) return key.get<bool>() ? "true" : "false";
  if (key.is_null()) return "null";
  return key.dump();
}

bool parse_python_literal(std::string_view text, size_t& pos, nlohmann::ordered_json& out) {
  size_t p = pos;
  if (!parse_value(text, p, out, 0)) return false;
  pos = p;
  return true;
}

}  // namespace herd
