// Stop strings for streamed text: a stop string can span token boundaries, so text that could
// be the start of one is held back until the next piece shows whether it is; text handed out is
// never part of a stop string. Works on bytes (stop strings are compared byte for byte, as
// OpenAI's are), fed with the StreamDecoder's well-formed UTF-8 pieces.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace herd::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds a piece; returns the text that is now safe to emit. After a stop string is found,
  // stopped() is true, the returned text ends just before it and later pieces are ignored.
  std::string push(std::string_view piece);
  // End of output: whatever is held back (it did not turn into a stop string).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace herd::server
