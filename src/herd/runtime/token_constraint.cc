#include "herd/runtime/token_constraint.h"

#include "herd/tokenizer/tokenizer.h"

namespace herd {

std::shared_ptr<const TokenBytes> TokenBytes::of(const Tokenizer& tok) {
  auto t = std::make_shared<TokenBytes>();
  const int32_t n = tok.vocab_size();
  t->bytes.resize(size_t(n));
  for (int32_t id = 0; id < n; ++id) {
    if (tok.is_special(id)) continue;
    Result<std::string_view> b = tok.token_bytes(id);
    if (b) t->bytes[size_t(id)] = std::string(*b);
  }
  return t;
}

}  // namespace herd
