#include "herd/cli/token_list.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace herd::cli {
Result<std::vector<int64_t>> parse_int_list(const std::string& text, const std::string& source) {
  // Splits on commas, whitespace and JSON brackets; every other character must be part of an
  // int. Two commas with nothing between them ("1,,2"), or a comma with nothing before or after
  // it, are an empty element: refused rather than silently dropped.
  std::vector<int64_t> out;
  bool value_since_comma = false;
  size_t last_comma = std::string::npos;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ',') {
      if (!value_since_comma)
        return make_error("{}: empty element at offset {} (in '{}')", source, i,
                          text.substr(0, 40));
      value_since_comma = false;
      last_comma = i++;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) || c == '[' || c == ']') {
      ++i;
      continue;
    }
    const char* begin = text.c_str() + i;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(begin, &end, 10);
    if (end == begin)
      return make_error("{}: expected an integer at offset {} near '{}'", source, i,
                        text.substr(i, 12));
    if (errno == ERANGE)
      return make_error("{}: {} at offset {} is out of range", source,
                        text.substr(i, size_t(end - begin)), i);
    out.push_back(v);
    value_since_comma = true;
    i += size_t(end - begin);
  }
  if (last_comma != std::string::npos && !value_since_comma)
    return make_error("{}: empty element after the comma at offset {}", source, last_comma);
  return out;
}


Result<std::vector<int32_t>> parse_token_list(const std::string& text, const std::string& source) {
  HERD_ASSIGN_OR_RETURN(auto v, parse_int_list(text, source));
  std::vector<int32_t> out;
  for (int64_t x : v) {
    if (x < 0 || x > INT32_MAX) return make_error("{}: token id {} out of range", source, x);
    out.push_back(int32_t(x));
  }
  return out;
}

Result<std::vector<int64_t>> parse_position_list(const std::string& text, int64_t n) {
  HERD_ASSIGN_OR_RETURN(auto v, parse_int_list(text, "--positions"));
  for (int64_t& p : v) {
    const int64_t orig = p;
    if (p < 0) p += n;
    if (p < 0 || p >= n)
      return make_error("--positions: {} is outside the {} tokens given", orig, n);
  }
  return v;
}

}  // namespace herd::cli
