#include "herd/cli/token_list.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace herd::cli {
namespace {
// Splits on commas, whitespace and JSON brackets; every other character must be part of an int.
Result<std::vector<int64_t>> parse_ints(const std::string& text, const std::string& source) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '[' || c == ']') {
      ++i;
      continue;
    }
    const char* begin = text.c_str() + i;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(begin, &end, 10);
    if (end == begin || errno == ERANGE)
      return make_error("{}: expected an integer at offset {} near '{}'", source, i,
                        text.substr(i, 12));
    out.push_back(v);
    i += size_t(end - begin);
  }
  return out;
}
}  // namespace

Result<std::vector<int32_t>> parse_token_list(const std::string& text, const std::string& source) {
  HERD_ASSIGN_OR_RETURN(auto v, parse_ints(text, source));
  std::vector<int32_t> out;
  for (int64_t x : v) {
    if (x < 0 || x > INT32_MAX) return make_error("{}: token id {} out of range", source, x);
    out.push_back(int32_t(x));
  }
  return out;
}

Result<std::vector<int64_t>> parse_position_list(const std::string& text, int64_t n) {
  HERD_ASSIGN_OR_RETURN(auto v, parse_ints(text, "--positions"));
  for (int64_t& p : v) {
    const int64_t orig = p;
    if (p < 0) p += n;
    if (p < 0 || p >= n)
      return make_error("--positions: {} is outside the {} tokens given", orig, n);
  }
  return v;
}

}  // namespace herd::cli
