#include "herd/server/data_url.h"

#include <array>

namespace herd::server {
namespace {

// Sextet of each base64 character (RFC 4648 §4), −1 for the rest.
constexpr std::array<int8_t, 256> kSextet = [] {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) t[uint8_t(alphabet[i])] = int8_t(i);
  return t;
}();

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

}  // namespace

Result<std::vector<uint8_t>> decode_data_url(std::string_view url) {
  if (url.substr(0, 5) != "data:") {
    const size_t colon = url.find(':');
    return make_error("only data: URLs are accepted, got {} (this server fetches nothing)",
                      colon == std::string_view::npos || colon > 16
                          ? std::string_view("something else")
                          : url.substr(0, colon + 1));
  }
  const size_t comma = url.find(',');
  if (comma == std::string_view::npos || comma < 12 || url.substr(comma - 7, 7) != ";base64")
    return make_error("expected a base64 data: URL (data:<media type>;base64,<data>)");
  const std::string_view payload = url.substr(comma + 1);
  std::vector<uint8_t> out;
  out.reserve(payload.size() / 4 * 3 + 3);
  uint32_t bits = 0;
  int nbits = 0;
  size_t padding = 0;
  for (size_t i = 0; i < payload.size(); ++i) {
    const char c = payload[i];
    if (is_space(c)) continue;  // some clients wrap long lines
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = kSextet[uint8_t(c)];
    if (v < 0 || padding > 0)
      return make_error("not valid base64: character {} at offset {} of the data",
                        v < 0 ? fmt::format("0x{:02x}", uint8_t(c)) : std::string("after '='"), i);
    bits = bits << 6 | uint32_t(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(uint8_t(bits >> nbits));
    }
  }
  // Leftover bits: 0 (complete), 2 or 4 (padded or not); 6 means a lone character.
  if (nbits == 6 || padding > 2) return make_error("not valid base64: the data ends mid-byte");
  if (out.empty()) return make_error("the data: URL holds no data");
  return out;
}

}  // namespace herd::server
