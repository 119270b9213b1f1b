// Internal state of a Tokenizer, shared by tokenizer.cc (encode/decode), tokenizer_load.cc and
// hf_export.cc. Not part of the public API.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "herd/tokenizer/bpe.h"
#include "herd/tokenizer/split_regex.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {

// bytes -> id for the base vocabulary: open addressing over ids, keys stay in Data::tokens.
// (std::unordered_map<std::string, ...> costs a node and a string per entry and hashes slowly.)
class TokenIndex {
 public:
  void build(const std::vector<std::string>& tokens, const std::vector<uint8_t>& is_base);
  int32_t find(std::string_view key) const;  // -1 when absent

 private:
  static uint64_t hash(std::string_view s);
  std::vector<uint64_t> slots_;  // (hash high 32 bits << 32) | (id + 1); 0 = empty
  uint64_t mask_ = 0;
  const std::vector<std::string>* tokens_ = nullptr;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

enum class TokenKind : uint8_t { kHole = 0, kBase = 1, kSpecial = 2 };

struct Tokenizer::Data {
  std::string source;                   // file the tokenizer came from, for messages
  bool ranks = true;                    // tiktoken ranks (true) or tokenizer.json merges (false)
  bool ignore_merges = false;           // tokenizer.json: whole pieces found in vocab skip merging
  std::vector<std::string> tokens;      // id -> bytes (specials: their names)
  std::vector<TokenKind> kinds;         // id -> kind
  TokenIndex index;                     // base token bytes -> id
  std::array<int32_t, 256> byte_ids{};  // id of each single byte
  std::unordered_map<uint64_t, bpe::Merge> merges;  // (left << 32 | right) -> merge (json)
  SplitRegex regex;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> special_by_name;
  std::vector<uint32_t> special_lengths;  // distinct name lengths, longest first
  std::bitset<256> special_first;         // first bytes of special names
  int32_t bos = -1, eos = -1, eot = -1, eom = -1;
  uint64_t serial = 0;  // distinguishes tokenizers in the per-thread piece cache
};

inline constexpr int64_t kMaxVocab = 16 * 1024 * 1024;  // far above any real vocabulary

// The one place that may construct a Tokenizer from its Data (the loaders use it).
struct TokenizerBuilder {
  static Tokenizer make(std::shared_ptr<Tokenizer::Data> d) { return Tokenizer(std::move(d)); }
};

// Finishes a Data whose tokens/kinds/byte_ids/merges/regex are set: builds the index and the
// special-token lookup, checks the named tokens herd needs, assigns the serial.
Status finish_tokenizer_data(Tokenizer::Data& d);

// Tokenizer::from_hf_json on an already parsed tokenizer.json.
Result<Tokenizer> tokenizer_from_hf_json_value(const nlohmann::json& j, const std::string& source);

// tokenizer.json's vocabulary spelling (bytes_to_unicode) back to bytes; false if a character
// is not one of the 256 spellings or the text is not UTF-8.
bool unspell_gpt2(std::string_view s, std::string& out);

// Finishes a byte-level BPE Data whose tokens and kinds are placed (tokenizer.json and GGUF
// vocabularies): compiles `pattern`, builds the index and specials, the single-byte ids, and
// the merges, merge_at(i, left, right) giving the i-th in rank order as spelled strings.
Status finish_bpe_data(Tokenizer::Data& d, const std::string& pattern, size_t n_merges,
                       const std::function<Status(size_t, std::string&, std::string&)>& merge_at);

// GPT-2's bytes_to_unicode: the printable code point that spells each byte in tokenizer.json.
const std::array<uint32_t, 256>& byte_to_unicode();

}  // namespace herd
