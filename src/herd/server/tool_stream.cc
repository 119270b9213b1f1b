#include "herd/server/tool_stream.h"

#include <algorithm>

namespace herd::server {
namespace {

constexpr std::string_view kMarkers[] = {"[", "{", "<|python_start|>", "<function="};

// Where a call may start in s (npos: nowhere), counting a trailing partial marker ("<|py").
size_t call_start(std::string_view s) {
  size_t at = std::string_view::npos;
  for (std::string_view m : kMarkers) at = std::min(at, s.find(m));
  for (std::string_view m : kMarkers)
    for (size_t k = std::min(m.size() - 1, s.size()); k > 0; --k)
      if (s.substr(s.size() - k) == m.substr(0, k)) {
        at = std::min(at, s.size() - k);
        break;
      }
  return at;
}

}  // namespace

std::string ToolStream::add(std::string_view text) {
  text_.append(text);
  if (!active_) {
    std::string out = text_.substr(streamed_);
    streamed_ = text_.size();
    return out;
  }
  if (holding_) return {};
  const std::string_view rest = std::string_view(text_).substr(streamed_);
  const size_t at = call_start(rest);
  const size_t n = at == std::string_view::npos ? rest.size() : at;
  std::string out(rest.substr(0, n));
  streamed_ += n;
  // A full marker (not just a partial one at the end) starts holding for good.
  if (at != std::string_view::npos) {
    for (std::string_view m : kMarkers)
      if (rest.substr(at).starts_with(m)) holding_ = true;
  }
  return out;
}

ParsedAssistant ToolStream::finish() {
  ParsedAssistant p;
  if (active_) p = parse_tool_calls(text_);
  if (p.tool_calls.empty()) {
    p.tool_calls.clear();
    p.content = text_.substr(streamed_);
    streamed_ = text_.size();
    return p;
  }
  // The prose before the calls: what of it was not streamed yet.
  const std::string_view sent = std::string_view(text_).substr(0, streamed_);
  p.content = p.content.starts_with(sent) ? p.content.substr(sent.size()) : std::string();
  streamed_ = text_.size();
  return p;
}

}  // namespace herd::server
