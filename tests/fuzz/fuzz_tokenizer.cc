// libFuzzer target over the tokenizer loaders (tokenizer/tokenizer_load.cc, tokenizer_json.cc):
// the first byte picks tiktoken ranks (tokenizer.model) or a Hugging Face tokenizer.json; the
// rest is the file. A tokenizer that loads must then encode and decode: the tail of the input
// is encoded with specials allowed, and decoding those ids must succeed (every id it produced
// is in its vocabulary). Built with clang by tests/fuzz/build.sh.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "herd/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto tok = data[0] & 1 ? herd::Tokenizer::from_hf_json(text, "fuzz/tokenizer.json")
                         : herd::Tokenizer::from_tiktoken(text, "fuzz/tokenizer.model");
  if (!tok) return 0;
  const std::string_view sample = text.substr(text.size() - std::min<size_t>(text.size(), 64));
  const auto ids = tok->encode(sample, true);
  if (!tok->decode(ids)) __builtin_trap();
  return 0;
}
