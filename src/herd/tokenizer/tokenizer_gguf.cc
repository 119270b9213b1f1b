// tokenizer_from_gguf: the GGUF vocabulary placed straight into Tokenizer::Data (tokens in the
// tokenizer.json spelling, specials, the Llama 4 split regex) and finished by the same
// finish_bpe_data as a tokenizer.json: one set of checks, one encoder.
#include "herd/tokenizer/tokenizer_gguf.h"

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
  auto d = std::make_shared<Tokenizer::Data>();
  d->source = source;
  d->ranks = false;
  d->tokens.resize(tokens->size());
  d->kinds.assign(tokens->size(), TokenKind::kHole);
  for (size_t id = 0; id < tokens->size(); ++id) {
    const std::string& t = (*tokens)[id];
    switch (types[id]) {
      case 1:  // NORMAL
      case 6:  // BYTE
        if (!unspell_gpt2(t, d->tokens[id]))
          return make_error("{}: token {} ({}) is not in byte-level (bytes_to_unicode) spelling",
                            source, id, t);
        d->kinds[id] = TokenKind::kBase;
        break;
      case 3:  // CONTROL
      case 4:  // USER_DEFINED
        d->tokens[id] = t;
        d->kinds[id] = TokenKind::kSpecial;
        break;
      default:  // UNKNOWN 2, UNUSED 5: no token at this id
        break;
    }
  }
  const std::vector<std::string>* merges = nullptr;
  if (const gguf::Value* mv = r.find("tokenizer.ggml.merges")) {
    merges = mv->get_strings();
    if (!merges) return make_error("{}: tokenizer.ggml.merges must be strings", source);
  }
  HERD_TRY(finish_bpe_data(*d, std::string(kLlama4SplitPattern), merges ? merges->size() : 0,
                           [&](size_t i, std::string& left, std::string& right) -> Status {
                             const std::string& s = (*merges)[i];
                             const size_t sp = s.find(' ');
                             if (sp == std::string::npos ||
                                 s.find(' ', sp + 1) != std::string::npos)
                               return make_error(
                                   "{}: tokenizer.ggml.merges[{}] \"{}\" is not "
                                   "\"left right\"",
                                   source, i, s);
                             left.assign(s, 0, sp);
                             right.assign(s, sp + 1);
                             return Status::ok();
                           }));
  return TokenizerBuilder::make(std::move(d));
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
