#include "herd/tokenizer/split_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "herd/tokenizer/utf8.h"

namespace herd {

const std::string_view kLlama4SplitPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {
// Unicode White_Space, as a class body.
constexpr std::string_view kWhiteSpace =
    R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
}  // namespace

std::string with_unicode_whitespace(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += '\\';
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

struct SplitRegex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

namespace {
// Per-thread match state, so one compiled pattern serves many threads without locks.
struct MatchState {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* mc = pcre2_match_context_create(nullptr);
  // JIT stack large enough for 25 000-character runs (the default 32 KiB is not).
  pcre2_jit_stack* js = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
  MatchState() { pcre2_jit_stack_assign(mc, nullptr, js); }
  ~MatchState() {
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
  }
};
MatchState& match_state() {
  thread_local MatchState s;
  return s;
}
}  // namespace

Result<SplitRegex> SplitRegex::compile(std::string_view pattern) {
  std::string pcre = with_unicode_whitespace(pattern);
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre.data()), pcre.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return make_error("pre-tokenizer regex does not compile at offset {}: {}", off,
                      reinterpret_cast<const char*>(msg));
  }
  SplitRegex r;
  r.code_ = std::make_shared<Code>();
  r.code_->code = code;
  r.code_->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  r.pattern_ = std::string(pattern);
  return r;
}

void SplitRegex::split(std::string_view text,
                       std::vector<std::pair<uint32_t, uint32_t>>& pieces) const {
  MatchState& st = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start < text.size()) {
    int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), start, 0, st.md, st.mc)
                        : pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                                      st.md, st.mc);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {  // resource limit: keep the text rather than drop it
      pieces.emplace_back(static_cast<uint32_t>(start), static_cast<uint32_t>(text.size()));
      return;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // an empty match (possible in a foreign pattern): step one code point
      if (b >= text.size()) return;
      size_t i = b;
      utf8::next_code_point(text, i);
      start = i;
      continue;
    }
    pieces.emplace_back(static_cast<uint32_t>(b), static_cast<uint32_t>(e));
    start = e;
  }
}

std::vector<std::string_view> meta_chunks(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    // The next 400 000 code points.
    size_t end = pos, count = 0;
    while (end < text.size() && count < kMetaMaxEncodeChars) {
      utf8::next_code_point(text, end);
      ++count;
    }
    // tokenizer.py's _split_whitespaces_or_nonwhitespaces over text[pos, end).
    std::string_view s = text.substr(pos, end - pos);
    size_t i = 0, slice_start = 0, run = 0;
    bool run_is_space = false;
    bool first = true;
    while (i < s.size()) {
      size_t at = i;
      bool space = utf8::python_isspace(utf8::next_code_point(s, i));
      if (first) run_is_space = space, first = false;
      if (space != run_is_space) {
        run = 1;
        run_is_space = space;
      } else if (++run > kMetaMaxRunChars) {
        out.push_back(s.substr(slice_start, at - slice_start));
        slice_start = at;
        run = 1;
      }
    }
    out.push_back(s.substr(slice_start));
    pos = end;
  }
  return out;
}

}  // namespace herd
