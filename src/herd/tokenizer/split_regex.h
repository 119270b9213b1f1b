// Pre-tokenization: the regex that cuts text into pieces before BPE (PCRE2 with UTF + UCP and
// JIT), and Meta's chunking of long inputs (spec §4.1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "herd/base/status.h"

namespace herd {

// O200K_PATTERN as Meta's tokenizer.py and HF's converter spell it (spec §4.1).
extern const std::string_view kLlama4SplitPattern;

// Rewrites `\s` / `\S` into explicit classes of the Unicode White_Space property, which is
// what tiktoken's Rust regex (and HF's Oniguruma) mean by \s. PCRE2's UCP \s differs: it
// leaves out U+0085 (NEL).
std::string with_unicode_whitespace(std::string_view pattern);

class SplitRegex {
 public:
  // `pattern` is compiled as given after with_unicode_whitespace().
  static Result<SplitRegex> compile(std::string_view pattern);

  // Appends [begin, end) byte ranges of every match in `text` (valid UTF-8), left to right,
  // exactly like tiktoken's find_iter: text between matches is skipped. If PCRE2 itself fails
  // (a resource limit), the rest of the text becomes one piece so nothing is lost.
  void split(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& pieces) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<Code> code_;  // compiled code is immutable and shared by copies
  std::string pattern_;
};

// Meta's tokenizer.py: cut text into 400 000-code-point pieces, then cut any run of more than
// 25 000 consecutive whitespace (Python isspace) or non-whitespace code points. Returns the
// substrings in order (none for empty text). `text` must be valid UTF-8.
inline constexpr size_t kMetaMaxEncodeChars = 400000;
inline constexpr size_t kMetaMaxRunChars = 25000;
std::vector<std::string_view> meta_chunks(std::string_view text);

}  // namespace herd
