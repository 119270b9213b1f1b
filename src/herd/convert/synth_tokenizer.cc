#include "herd/convert/synth_tokenizer.h"

#include <map>
#include <nlohmann/json.hpp>

#include "herd/base/mapped_file.h"
#include "herd/io/model_dir.h"

namespace herd {

using ojson = nlohmann::ordered_json;

const std::vector<NamedSpecialToken>& llama4_named_special_tokens() {
  static const std::vector<NamedSpecialToken> k = {
      {"<|begin_of_text|>", 0},
      {"<|end_of_text|>", 1},
      {"<|fim_prefix|>", 2},
      {"<|fim_middle|>", 3},
      {"<|fim_suffix|>", 4},
      {"<|header_start|>", 5},
      {"<|header_end|>", 6},
      {"<|eom|>", 7},
      {"<|eot|>", 8},
      {"<|step|>", 9},
      {"<|python_start|>", 16},
      {"<|python_end|>", 17},
      {"<|finetune_right_pad|>", 18},
      {"<|image_start|>", 80},
      {"<|image_end|>", 81},
      {"<|tile_x_separator|>", 84},
      {"<|tile_y_separator|>", 85},
      {"<|image|>", 90},
      {"<|patch|>", 92},
      {"<|reasoning_thinking_start|>", 1142},
      {"<|reasoning_thinking_end|>", 1143},
  };
  return k;
}

int64_t fallback_vocab_size() {
  return kFallbackByteTokens + int64_t(llama4_named_special_tokens().size());
}

namespace {
// Meta's list has 2048 specials after the base ranks (spec §4.2).
constexpr int64_t kMetaSpecialCount = 2048;

// Fills `ids` from a name -> id lookup.
template <typename Lookup>
Status fill_ids(SpecialTokenIds* ids, const std::string& src, Lookup lookup) {
  struct Want {
    const char* name;
    int64_t* out;
    bool required;
  } wants[] = {{"<|begin_of_text|>", &ids->bos, true},
               {"<|end_of_text|>", &ids->end_of_text, true},
               {"<|eom|>", &ids->eom, true},
               {"<|eot|>", &ids->eot, true},
               {"<|finetune_right_pad|>", &ids->pad, false},
               {"<|image_start|>", &ids->image_start, true},
               {"<|image_end|>", &ids->image_end, true},
               {"<|patch|>", &ids->patch, true}};
  for (const Want& w : wants) {
    *w.out = lookup(w.name);
    if (*w.out < 0 && w.required)
      return make_error("{}: special token '{}' not found", src, w.name);
  }
  return Status::ok();
}

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100 upwards.
std::string byte_to_unicode(int b) {
  auto printable = [](int c) {
    return (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
  };
  int cp = b;
  if (!printable(b)) {
    int n = 0;
    for (int c = 0; c < b; ++c) n += !printable(c);
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}
}  // namespace

SpecialTokenIds fallback_special_ids() {
  SpecialTokenIds ids;
  std::map<std::string, int64_t> by_name;
  int64_t id = kFallbackByteTokens;
  for (const auto& t : llama4_named_special_tokens()) by_name[t.name] = id++;
  Status s = fill_ids(&ids, "fallback", [&](const char* n) { return by_name.at(n); });
  (void)s;  // every name is in the list by construction
  ids.vocab_size = fallback_vocab_size();
  return ids;
}

std::string fallback_tokenizer_json() {
  ojson vocab = ojson::object();
  for (int b = 0; b < 256; ++b) vocab[byte_to_unicode(b)] = b;
  ojson added = ojson::array();
  int64_t id = kFallbackByteTokens;
  for (const auto& t : llama4_named_special_tokens())
    added.push_back({{"id", id++},
                     {"content", t.name},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  const int64_t bos = kFallbackByteTokens;  // first entry of the list is <|begin_of_text|>
  ojson byte_level = {{"type", "ByteLevel"},
                      {"add_prefix_space", false},
                      {"trim_offsets", true},
                      {"use_regex", true}};
  ojson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = byte_level;
  // Like the released Llama tokenizers: encoding a single text prepends BOS.
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair",
       {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 1}}}},
        {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens",
       {{"<|begin_of_text|>",
         {{"id", "<|begin_of_text|>"}, {"ids", {bos}}, {"tokens", {"<|begin_of_text|>"}}}}}}};
  j["decoder"] = byte_level;
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", ojson::array()}};
  return j.dump(2) + "\n";
}

std::string fallback_tokenizer_config_json(int64_t model_max_length) {
  ojson dec = ojson::object();
  int64_t id = kFallbackByteTokens;
  for (const auto& t : llama4_named_special_tokens())
    dec[std::to_string(id++)] = {{"content", t.name}, {"lstrip", false},      {"normalized", false},
                                 {"rstrip", false},   {"single_word", false}, {"special", true}};
  ojson j = {{"added_tokens_decoder", dec},
             {"bos_token", "<|begin_of_text|>"},
             {"eos_token", "<|eot|>"},
             {"pad_token", "<|finetune_right_pad|>"},
             {"clean_up_tokenization_spaces", false},
             {"model_max_length", model_max_length},
             {"tokenizer_class", "PreTrainedTokenizerFast"}};
  return j.dump(2) + "\n";
}

std::string fallback_special_tokens_map_json() {
  ojson j = {{"bos_token", "<|begin_of_text|>"},
             {"eos_token", "<|eot|>"},
             {"pad_token", "<|finetune_right_pad|>"}};
  return j.dump(2) + "\n";
}

Result<SpecialTokenIds> special_ids_from_tokenizer_dir(const std::string& dir) {
  SpecialTokenIds ids;
  if (auto tj = find_tokenizer_json(dir)) {
    HERD_ASSIGN_OR_RETURN(std::string text, read_text_file(*tj));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error("{}: not a valid JSON object", *tj);
    std::map<std::string, int64_t> by_name;
    int64_t max_id = -1;
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (const auto& t : j["added_tokens"])
        if (t.is_object() && t.contains("id") && t["id"].is_number_integer() &&
            t.contains("content") && t["content"].is_string()) {
          by_name[t["content"].get<std::string>()] = t["id"].get<int64_t>();
          max_id = std::max(max_id, t["id"].get<int64_t>());
        }
    if (j.contains("model") && j["model"].is_object() && j["model"].contains("vocab") &&
        j["model"]["vocab"].is_object())
      for (const auto& [k, v] : j["model"]["vocab"].items())
        if (v.is_number_integer()) max_id = std::max(max_id, v.get<int64_t>());
    HERD_TRY(fill_ids(&ids, *tj, [&](const char* n) {
      auto it = by_name.find(n);
      return it == by_name.end() ? int64_t(-1) : it->second;
    }));
    ids.vocab_size = max_id + 1;
    return ids;
  }
  if (auto tm = find_tokenizer_model(dir)) {
    HERD_ASSIGN_OR_RETURN(std::string text, read_text_file(*tm));
    int64_t ranks = 0;  // one "<base64> <rank>" line per base token
    for (char c : text) ranks += c == '\n';
    if (ranks == 0) return make_error("{}: empty tokenizer.model", *tm);
    std::map<std::string, int64_t> by_name;
    for (const auto& t : llama4_named_special_tokens()) by_name[t.name] = ranks + t.meta_offset;
    HERD_TRY(fill_ids(&ids, *tm, [&](const char* n) { return by_name.at(n); }));
    ids.vocab_size = ranks + kMetaSpecialCount;
    return ids;
  }
  return make_error("{}: no tokenizer.json or tokenizer.model found", dir);
}

}  // namespace herd
