// Llama 4 tokenizer: byte-level BPE with special tokens (spec §4.1, §4.2).
//
// Loads either Meta's tiktoken `tokenizer.model` (ranks; the 2048 Llama 4 special tokens are
// appended at 200000..202047) or a Hugging Face `tokenizer.json` (byte-level BPE vocab +
// merges + added_tokens, which also covers the byte-only fallback `herd synth` writes).
//
// Input text that is not valid UTF-8 is encoded as if each maximal ill-formed subsequence were
// U+FFFD (Unicode's recommended replacement, as Python's errors="replace"); valid input is never
// changed. Encoding never fails; decoding fails only on ids outside the vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "herd/base/status.h"

namespace herd {

class Tokenizer {
 public:
  // Looks in `model_dir` for tokenizer.model, then original/tokenizer.model, then
  // tokenizer.json (tiktoken ranks first: they are Meta's own definition).
  static Result<Tokenizer> load(const std::string& model_dir);
  static Result<Tokenizer> from_tiktoken_file(const std::string& path);
  static Result<Tokenizer> from_hf_json_file(const std::string& path);
  // The same from file contents; `source` names the data in error messages.
  static Result<Tokenizer> from_tiktoken(std::string_view text, const std::string& source);
  static Result<Tokenizer> from_hf_json(std::string_view json_text, const std::string& source);

  // Token ids for `text`. With allow_special, special-token names in the text become their
  // ids; otherwise they are ordinary text (how Meta encodes message content).
  std::vector<int32_t> encode(std::string_view text, bool allow_special) const;
  // Ordinary-text encoding of one piece of already valid UTF-8 (no specials, no chunking).
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;

  // Concatenated token bytes (special tokens as their names). The result may end in, or
  // contain, partial UTF-8 when the ids split a character; StreamDecoder handles streams.
  Result<std::string> decode(std::span<const int32_t> ids) const;
  // Bytes of one token; error for an id outside the vocabulary.
  Result<std::string_view> token_bytes(int32_t id) const;

  int32_t vocab_size() const;
  std::optional<int32_t> special_id(std::string_view name) const;
  bool is_special(int32_t id) const;
  int32_t bos_id() const;  // <|begin_of_text|>
  int32_t eos_id() const;  // <|end_of_text|>
  int32_t eot_id() const;  // <|eot|>
  int32_t eom_id() const;  // <|eom|>
  // Ids that end generation for the instruct models: end_of_text, eom, eot (spec §4.2).
  std::vector<int32_t> stop_ids() const;

  // Whether this came from tiktoken ranks (then id == rank) or from a tokenizer.json, and
  // the file it came from.
  bool from_ranks() const;
  const std::string& source() const;

  struct Data;  // vocabulary, merges, specials, regex (tokenizer.cc)
  const Data& data() const { return *data_; }

 private:
  explicit Tokenizer(std::shared_ptr<const Data> d) : data_(std::move(d)) {}
  std::shared_ptr<const Data> data_;  // immutable, shared: copies are cheap and thread-safe
  friend struct TokenizerBuilder;
};

// Writes a Hugging Face tokenizer.json for `tok` (which must come from tiktoken ranks) the way
// transformers' TikTokenConverter builds one: vocab spelled with GPT-2's bytes_to_unicode,
// merges recovered from the ranks, Split(regex) + ByteLevel pre-tokenizer, specials as
// added_tokens.
Status write_hf_tokenizer_json(const Tokenizer& tok, const std::string& path);
std::string hf_tokenizer_json(const Tokenizer& tok);

}  // namespace herd
