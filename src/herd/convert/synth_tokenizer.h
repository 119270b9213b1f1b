// The tokenizer files `herd synth` writes when no real tokenizer is given: a byte-level BPE
// tokenizer.json (256 single bytes, no merges) plus the named Llama 4 special tokens renumbered
// from 256. This is the one place that lists those names; ids are always looked up by name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "herd/base/status.h"

namespace herd {

struct NamedSpecialToken {
  const char* name;     // "<|begin_of_text|>"
  int64_t meta_offset;  // id - 200000 in Meta's special-token list (spec §4.2)
};

// The 21 named Llama 4 specials, in the order of their real ids. The fallback tokenizer gives
// them ids 256, 257, ... in this order.
const std::vector<NamedSpecialToken>& llama4_named_special_tokens();

inline constexpr int64_t kFallbackByteTokens = 256;
// 256 + number of named specials (= 277).
int64_t fallback_vocab_size();

// Token ids the config files point at, found by name in a tokenizer.
struct SpecialTokenIds {
  int64_t bos = -1;          // <|begin_of_text|>
  int64_t end_of_text = -1;  // <|end_of_text|>
  int64_t eom = -1;          // <|eom|>
  int64_t eot = -1;          // <|eot|>
  int64_t pad = -1;          // <|finetune_right_pad|> (-1 if the tokenizer lacks it)
  int64_t image_start = -1;  // <|image_start|>  (boi_token_index)
  int64_t image_end = -1;    // <|image_end|>    (eoi_token_index)
  int64_t patch = -1;        // <|patch|>        (image_token_index)
  int64_t vocab_size = 0;    // smallest vocab covering every token of the tokenizer
  std::vector<int64_t> eos() const { return {end_of_text, eom, eot}; }
};

// Ids of the fallback tokenizer (bos 256, end_of_text 257, ..., vocab 277).
SpecialTokenIds fallback_special_ids();

// Contents of the fallback files.
std::string fallback_tokenizer_json();
std::string fallback_tokenizer_config_json(int64_t model_max_length);
std::string fallback_special_tokens_map_json();

// Ids in a real tokenizer directory: names are looked up in tokenizer.json's added_tokens when
// present; otherwise (tiktoken tokenizer.model only) id = number of base ranks + Meta offset.
Result<SpecialTokenIds> special_ids_from_tokenizer_dir(const std::string& dir);

}  // namespace herd
