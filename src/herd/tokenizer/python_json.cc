// Python-compatible JSON text and string helpers for the chat template (chat_format.h).
#include "herd/tokenizer/chat_format.h"
#include "herd/tokenizer/utf8.h"

namespace herd {
namespace {

void dump(const nlohmann::ordered_json& v, int indent, int depth, std::string& out) {
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * d, ' ');
  };
  if (v.is_object() || v.is_array()) {
    const bool obj = v.is_object();
    if (v.empty()) {
      out += obj ? "{}" : "[]";
      return;
    }
    out += obj ? '{' : '[';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!first) out += indent >= 0 ? "," : ", ";
      first = false;
      if (indent >= 0) newline(depth + 1);
      if (obj) {
        out += nlohmann::ordered_json(it.key()).dump();
        out += ": ";
      }
      dump(*it, indent, depth + 1, out);
    }
    if (indent >= 0) newline(depth);
    out += obj ? '}' : ']';
    return;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (d != d) {
      out += "NaN";  // Python writes NaN/Infinity, not null
      return;
    }
    if (d == std::numeric_limits<double>::infinity() ||
        d == -std::numeric_limits<double>::infinity()) {
      out += d > 0 ? "Infinity" : "-Infinity";
      return;
    }
  }
  // Scalars: nlohmann writes strings (ensure_ascii off, \uXXXX lowercase for controls),
  // integers and shortest round-trip floats ("1.0", "1e-05", "1e+16") as Python does.
  out += v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

std::string python_json_dumps(const nlohmann::ordered_json& value, int indent) {
  std::string out;
  dump(value, indent, 0, out);
  return out;
}

std::string python_strip(std::string_view s) {
  size_t b = 0, e = s.size();
  // Leading: decode forward.
  while (b < e) {
    size_t i = b;
    if (!utf8::python_isspace(utf8::next_code_point(s, i))) break;
    b = i;
  }
  // Trailing: step back to each code point's lead byte.
  while (e > b) {
    size_t lead = e - 1;
    while (lead > b && (static_cast<uint8_t>(s[lead]) & 0xC0) == 0x80) --lead;
    size_t i = lead;
    if (!utf8::python_isspace(utf8::next_code_point(s, i))) break;
    e = lead;
  }
  return std::string(s.substr(b, e - b));
}

}  // namespace herd
