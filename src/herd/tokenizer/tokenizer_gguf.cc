// tokenizer_from_gguf: the GGUF vocabulary rewritten as the tokenizer.json it came from (vocab,
// merges, added_tokens, the Llama 4 split regex), then loaded by from_hf_json, so GGUF and
// tokenizer.json vocabularies share every check and the same encoder.
#include "herd/tokenizer/tokenizer_gguf.h"

#include <nlohmann/json.hpp>

#include "herd/io/gguf_files.h"
#include "herd/tokenizer/split_regex.h"
#include "herd/tokenizer/tokenizer_data.h"

namespace herd {

Result<Tokenizer> tokenizer_from_gguf(const gguf::Reader& r, const std::string& source) {
  auto str = [&](const char* key) -> const std::string* {
    const gguf::Value* v = r.find(key);
    return v ? v->get_string() : nullptr;
  };
  const std::string* model = str("tokenizer.ggml.model");
  if (!model) return make_error("{}: GGUF has no tokenizer (tokenizer.ggml.model)", source);
  if (*model != "gpt2")
    return make_error("{}: tokenizer.ggml.model '{}' is not supported (Llama 4 is gpt2 BPE)",
                      source, *model);
  const std::string* pre = str("tokenizer.ggml.pre");
  if (pre && *pre != "llama4" && *pre != "default")
    return make_error("{}: tokenizer.ggml.pre '{}' is not supported (herd splits as llama4)",
                      source, *pre);
  const gguf::Value* tv = r.find("tokenizer.ggml.tokens");
  const std::vector<std::string>* tokens = tv ? tv->get_strings() : nullptr;
  if (!tokens) return make_error("{}: tokenizer.ggml.tokens is missing or not strings", source);
  std::vector<int64_t> types(tokens->size(), 1);  // NORMAL when absent
  if (const gguf::Value* ty = r.find("tokenizer.ggml.token_type")) {
    if (!ty->get_ints(&types) || types.size() != tokens->size())
      return make_error("{}: tokenizer.ggml.token_type must be {} integers, got {}", source,
                        tokens->size(), ty->describe());
  }
  using json = nlohmann::json;
  json vocab = json::object(), added = json::array();
  for (size_t id = 0; id < tokens->size(); ++id) {
    const std::string& t = (*tokens)[id];
    switch (types[id]) {
      case 1:  // NORMAL
      case 6:  // BYTE
        vocab[t] = id;
        break;
      case 3:  // CONTROL
      case 4:  // USER_DEFINED
        added.push_back({{"id", id}, {"content", t}, {"special", true}});
        break;
      default:  // UNKNOWN 2, UNUSED 5: no token at this id
        break;
    }
  }
  json merges = json::array();
  if (const gguf::Value* mv = r.find("tokenizer.ggml.merges")) {
    const std::vector<std::string>* m = mv->get_strings();
    if (!m) return make_error("{}: tokenizer.ggml.merges must be strings", source);
    for (const std::string& s : *m) merges.push_back(s);
  }
  json j = {
      {"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}}},
      {"added_tokens", std::move(added)},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Split"},
                                        {"pattern", {{"Regex", std::string(kLlama4SplitPattern)}}}},
                                       {{"type", "ByteLevel"}, {"use_regex", false}}})}}}};
  return tokenizer_from_hf_json_value(j, source);
}

Result<Tokenizer> load_tokenizer_for(const std::string& model) {
  if (!gguf::is_gguf_path(model)) return Tokenizer::load(model);
  gguf::SplitName split;
  const std::string first = gguf::parse_split_name(model, &split)
                                ? gguf::split_part_path(split.prefix, 1, split.count)
                                : model;
  HERD_ASSIGN_OR_RETURN(gguf::Reader r, gguf::Reader::open(first));
  return tokenizer_from_gguf(r, first);
}

}  // namespace herd
