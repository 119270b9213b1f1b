// GGUF export, tokenizer part: llama.cpp's `gpt2` vocabulary (what its converter writes for
// Llama 4, _set_vocab_gpt2): tokens spelled with GPT-2's bytes_to_unicode, token types
// (NORMAL 1, CONTROL 3 for specials, UNUSED 5 for padding), merges "a b" in rank order, the
// special ids, and pre-tokenizer "llama4" (llama.cpp maps it to its GPT-4o split regex).
//
// Merges are rebuilt from the ids taken as BPE ranks, as transformers' TikTokenConverter does:
// exact for Meta's tokenizer.model and for tokenizer.json files converted from it, and empty
// for the byte-level fallback of `herd synth`. Conformance tests feed token ids, so only
// llama.cpp's own text tokenization would notice a tokenizer whose ids are not ranks.
#include <fmt/format.h>

#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "herd/base/mapped_file.h"
#include "herd/convert/gguf_export.h"
#include "herd/io/model_dir.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {
namespace {

// GPT-2 bytes_to_unicode: printable bytes stand for themselves, the rest map to U+0100 up.
std::string gpt2_spelling(std::string_view bytes) {
  static const auto table = [] {
    std::array<std::string, 256> t;
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : next++;
      t[size_t(b)] = cp < 0x80 ? std::string(1, char(cp))
                               : std::string{char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    }
    return t;
  }();
  std::string s;
  for (unsigned char c : bytes) s += table[c];
  return s;
}

// BPE of `token` using only merges of rank < `rank`; for a rank-ordered vocabulary this ends in
// exactly the two parts whose merge created the token.
std::vector<std::string_view> split_by_ranks(
    std::string_view token, int32_t rank,
    const std::unordered_map<std::string_view, int32_t>& ranks) {
  std::vector<std::string_view> parts;
  for (size_t i = 0; i < token.size(); ++i) parts.push_back(token.substr(i, 1));
  while (parts.size() > 2) {
    int32_t best = rank;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      std::string_view joined(parts[i].data(), parts[i].size() + parts[i + 1].size());
      auto it = ranks.find(joined);
      if (it != ranks.end() && it->second < best) best = it->second, at = i;
    }
    if (best == rank) break;
    parts[at] = std::string_view(parts[at].data(), parts[at].size() + parts[at + 1].size());
    parts.erase(parts.begin() + long(at) + 1);
  }
  return parts;
}

// tokenizer_config.json's eos_token ("<|eot|>" in the instruct repos), if any.
std::string configured_eos(const std::string& model_dir) {
  const ModelDirFiles files = scan_model_dir(model_dir);
  if (!files.tokenizer_config) return {};
  auto text = read_text_file(*files.tokenizer_config);
  if (!text.is_ok()) return {};
  auto j = nlohmann::json::parse(text.value(), nullptr, false);
  if (!j.is_object() || !j.contains("eos_token")) return {};
  const auto& e = j["eos_token"];
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object() && e.contains("content") && e["content"].is_string())
    return e["content"].get<std::string>();
  return {};
}

}  // namespace

Status add_tokenizer_metadata(const std::string& model_dir, const Llama4Config& cfg,
                              gguf::Writer& w) {
  using gguf::Value;
  HERD_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::load(model_dir));
  const int64_t V = cfg.text.vocab_size;
  if (tok.vocab_size() > V)
    return make_error("{}: tokenizer has {} tokens, more than vocab_size {}", model_dir,
                      tok.vocab_size(), V);
  std::vector<std::string> tokens(static_cast<size_t>(V));
  std::vector<int32_t> types(size_t(V), 5);  // UNUSED
  std::unordered_map<std::string_view, int32_t> ranks;
  std::vector<std::string_view> bytes(static_cast<size_t>(V));
  for (int32_t id = 0; id < V; ++id) {
    auto b =
        id < tok.vocab_size() ? tok.token_bytes(id) : Result<std::string_view>(Status::error(""));
    if (!b.is_ok()) {
      tokens[size_t(id)] = fmt::format("[PAD{}]", id);  // the converter's filler spelling
    } else if (tok.is_special(id)) {
      tokens[size_t(id)] = std::string(b.value());
      types[size_t(id)] = 3;  // CONTROL
    } else {
      tokens[size_t(id)] = gpt2_spelling(b.value());
      types[size_t(id)] = 1;  // NORMAL
      bytes[size_t(id)] = b.value();
      ranks.emplace(b.value(), id);
    }
  }
  std::vector<std::string> merges;
  for (int32_t id = 0; id < V; ++id) {
    if (bytes[size_t(id)].size() < 2) continue;
    std::vector<std::string_view> p = split_by_ranks(bytes[size_t(id)], id, ranks);
    if (p.size() != 2) continue;  // not reachable by merges of lower rank: no merge to list
    merges.push_back(gpt2_spelling(p[0]) + " " + gpt2_spelling(p[1]));
  }
  w.set("tokenizer.ggml.model", Value::string("gpt2"));
  w.set("tokenizer.ggml.pre", Value::string("llama4"));
  w.set("tokenizer.ggml.tokens", Value::strings(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", Value::i32s(types));
  w.set("tokenizer.ggml.merges", Value::strings(std::move(merges)));
  auto id_of = [&](std::string_view name) { return tok.special_id(name); };
  auto set_id = [&](const char* key, std::optional<int32_t> id) {
    if (id) w.set(key, Value::u32(uint32_t(*id)));
  };
  set_id("tokenizer.ggml.bos_token_id", id_of("<|begin_of_text|>"));
  const std::string eos = configured_eos(model_dir);
  set_id("tokenizer.ggml.eos_token_id", id_of(eos.empty() ? "<|end_of_text|>" : eos));
  set_id("tokenizer.ggml.eot_token_id", id_of("<|eot|>"));
  set_id("tokenizer.ggml.eom_token_id", id_of("<|eom|>"));
  set_id("tokenizer.ggml.padding_token_id", id_of("<|finetune_right_pad|>"));
  // As the HF tokenizer (its post-processor prepends <|begin_of_text|>). Tests feed ids.
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(true));
  return Status::ok();
}

}  // namespace herd
