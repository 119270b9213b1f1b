// UTF-8 helpers for the tokenizer: validation with Unicode's "maximal subpart" replacement
// policy (the one Python's errors="replace" and WHATWG TextDecoder use), code point iteration,
// and the whitespace test Meta's tokenizer.py uses for its run splitting (Python str.isspace).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace herd::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Result of checking the sequence that starts at p[0].
struct SeqCheck {
  int len;         // length of the well-formed sequence (1..4), or 0 when ill-formed
  int bad;         // when ill-formed: bytes one U+FFFD replaces (the maximal subpart)
  bool truncated;  // when ill-formed: the input ended inside a sequence that could be valid
};
SeqCheck check_sequence(const uint8_t* p, size_t n);

bool is_valid(std::string_view s);

// Copy of `s` with each maximal ill-formed subpart replaced by U+FFFD.
std::string sanitize(std::string_view s);

// Number of trailing bytes of `s` that start a well-formed sequence the input cut short
// (0..3): what a streaming decoder must hold back until the next token arrives.
size_t incomplete_tail(std::string_view s);

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
uint32_t next_code_point(std::string_view s, size_t& i);

void append_code_point(std::string& out, uint32_t cp);

// Python's str.isspace() (Unicode White_Space minus nothing, plus U+001C..U+001F): used for
// Meta's 25 000-character run splitting, which tokenizer.py does with isspace().
bool python_isspace(uint32_t cp);

}  // namespace herd::utf8
