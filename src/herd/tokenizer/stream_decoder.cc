#include "herd/tokenizer/stream_decoder.h"

#include "herd/tokenizer/utf8.h"

namespace herd {

Result<std::string> StreamDecoder::push(int32_t id) {
  HERD_ASSIGN_OR_RETURN(std::string_view bytes, tok_->token_bytes(id));
  pending_.append(bytes);
  size_t hold = utf8::incomplete_tail(pending_);
  std::string ready = utf8::sanitize(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace herd
