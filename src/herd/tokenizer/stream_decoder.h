// Incremental detokenization for streaming output: tokens can end in the middle of a UTF-8
// character (byte-level BPE splits emoji and CJK freely), so bytes that start a character the
// next token may finish are held back; text handed out is always well-formed UTF-8.
#pragma once

#include <cstdint>
#include <string>

#include "herd/base/status.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {

class StreamDecoder {
 public:
  // `tok` must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}

  // Adds one token; returns the text that is now complete (possibly empty). Ill-formed bytes
  // that no later token can repair come out as U+FFFD. Error only for an unknown id (the
  // decoder is unchanged then).
  Result<std::string> push(int32_t id);
  // End of stream: whatever is held back becomes U+FFFD.
  std::string flush();
  void reset() { pending_.clear(); }
  // Bytes held back waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tok_;
  std::string pending_;
};

}  // namespace herd
