// Loading a Hugging Face tokenizer.json (byte-level BPE). Supported: model.type BPE with vocab,
// merges ("a b" strings or ["a", "b"] pairs, possibly none) and ignore_merges; pre_tokenizer
// Split(Regex) and/or ByteLevel(use_regex), alone or in a Sequence; added_tokens. Normalizers,
// and added-token flags (lstrip, rstrip, single_word) are not used by Llama 4 and are ignored.
#include <nlohmann/json.hpp>

#include "herd/tokenizer/tokenizer_data.h"
#include "herd/tokenizer/utf8.h"

namespace herd {

namespace {

using json = nlohmann::json;

// GPT-2's pre-tokenizer pattern, used by ByteLevel with use_regex = true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Vocabulary spelling (bytes_to_unicode) back to bytes; false if a character is not one of
// the 256 spellings.
bool unspell(std::string_view s, std::string& out) {
  static const std::vector<int16_t> inverse = [] {
    std::vector<int16_t> inv(512, -1);
    for (int b = 0; b < 256; ++b) inv[byte_to_unicode()[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  out.clear();
  if (!utf8::is_valid(s)) return false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = utf8::next_code_point(s, i);
    if (cp >= inverse.size() || inverse[cp] < 0) return false;
    out.push_back(static_cast<char>(inverse[cp]));
  }
  return true;
}

// The split pattern of a pre_tokenizer tree: the first Split regex, else GPT-2's pattern for
// a ByteLevel with use_regex, else none (the whole text is one piece).
std::optional<std::string> find_pattern(const json& pt, bool* found_bytelevel_regex) {
  if (!pt.is_object()) return std::nullopt;
  std::string type = pt.value("type", "");
  if (type == "Split" && pt.contains("pattern") && pt["pattern"].is_object()) {
    const json& p = pt["pattern"];
    if (p.contains("Regex") && p["Regex"].is_string()) return p["Regex"].get<std::string>();
    if (p.contains("String") && p["String"].is_string()) {
      std::string lit = "\\Q" + p["String"].get<std::string>() + "\\E";
      return lit;
    }
  }
  if (type == "ByteLevel" && pt.value("use_regex", true)) *found_bytelevel_regex = true;
  if (type == "Sequence" && pt.contains("pretokenizers") && pt["pretokenizers"].is_array())
    for (const json& sub : pt["pretokenizers"])
      if (auto p = find_pattern(sub, found_bytelevel_regex)) return p;
  return std::nullopt;
}

Status parse(const json& j, Tokenizer::Data& d) {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    return make_error("{}: no \"model\" object", d.source);
  const json& m = j["model"];
  if (m.contains("type") && m["type"] != "BPE")
    return make_error("{}: model.type is {}, only BPE is supported", d.source, m["type"].dump());
  if (!m.contains("vocab") || !m["vocab"].is_object())
    return make_error("{}: model.vocab is missing or not an object", d.source);
  d.ignore_merges = m.value("ignore_merges", false);
  std::string bytes;
  auto place = [&](int64_t id, std::string value, TokenKind kind, const std::string& what) {
    if (id < 0 || id >= kMaxVocab)
      return make_error("{}: {} has id {} out of range", d.source, what, id);
    if (static_cast<size_t>(id) >= d.tokens.size()) {
      d.tokens.resize(id + 1);
      d.kinds.resize(id + 1, TokenKind::kHole);
    }
    if (d.kinds[id] != TokenKind::kHole && !(kind == TokenKind::kSpecial && d.tokens[id] == value))
      return make_error("{}: id {} is used twice ({})", d.source, id, what);
    d.tokens[id] = std::move(value);
    d.kinds[id] = kind;
    return Status::ok();
  };
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer())
      return make_error("{}: model.vocab[{}] is not an integer id", d.source,
                        json(it.key()).dump());
    if (!unspell(it.key(), bytes))
      return make_error("{}: vocab token {} is not in byte-level (bytes_to_unicode) spelling",
                        d.source, json(it.key()).dump());
    HERD_TRY(place(it.value().get<int64_t>(), bytes, TokenKind::kBase, "vocab token " + it.key()));
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const json& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
          !t.contains("content") || !t["content"].is_string())
        return make_error("{}: an added_tokens entry lacks an integer id or string content",
                          d.source);
      std::string content = t["content"].get<std::string>();
      // An added token that is also a vocab entry keeps its vocab bytes but is matched as a
      // special in text, like HF's added-vocabulary.
      HERD_TRY(
          place(t["id"].get<int64_t>(), content, TokenKind::kSpecial, "added token " + content));
    }
  }
  return Status::ok();
}

}  // namespace

bool unspell_gpt2(std::string_view s, std::string& out) {
  return unspell(s, out);
}

Status finish_bpe_data(Tokenizer::Data& d, const std::string& pattern, size_t n_merges,
                       const std::function<Status(size_t, std::string&, std::string&)>& merge_at) {
  HERD_ASSIGN_OR_RETURN(d.regex, SplitRegex::compile(pattern));
  HERD_TRY(finish_tokenizer_data(d));
  for (int b = 0; b < 256; ++b) {
    int32_t id = d.index.find(std::string(1, static_cast<char>(b)));
    if (id < 0)
      return make_error(
          "{}: no vocab entry for the single byte 0x{:02X} (byte-level BPE needs all "
          "256)",
          d.source, b);
    d.byte_ids[b] = id;
  }
  std::string l, r, lb, rb;
  for (size_t i = 0; i < n_merges; ++i) {
    HERD_TRY(merge_at(i, l, r));
    int32_t li = -1, ri = -1, mi = -1;
    if (unspell(l, lb) && unspell(r, rb)) {
      li = d.index.find(lb), ri = d.index.find(rb), mi = d.index.find(lb + rb);
    }
    if (li < 0 || ri < 0 || mi < 0)
      return make_error("{}: merge \"{} {}\" uses a token that is not in the vocab", d.source, l,
                        r);
    uint64_t key = (static_cast<uint64_t>(li) << 32) | static_cast<uint32_t>(ri);
    d.merges.emplace(key, bpe::Merge{uint32_t(i), mi});  // the first listing of a pair wins
  }
  return Status::ok();
}

Result<Tokenizer> Tokenizer::from_hf_json(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return make_error("{}: not valid JSON: {}", source, e.what());
  }
  return tokenizer_from_hf_json_value(j, source);
}

Result<Tokenizer> tokenizer_from_hf_json_value(const nlohmann::json& j, const std::string& source) {
  auto d = std::make_shared<Tokenizer::Data>();
  d->source = source;
  d->ranks = false;
  HERD_TRY(parse(j, *d));
  bool bytelevel_regex = false;
  std::optional<std::string> pattern = j.contains("pre_tokenizer")
                                           ? find_pattern(j["pre_tokenizer"], &bytelevel_regex)
                                           : std::nullopt;
  if (!pattern && bytelevel_regex) pattern = std::string(kGpt2Pattern);
  // No pattern: one piece per text (".+" with DOTALL semantics via [\s\S]).
  const json& m = j["model"];
  const json* merges = m.contains("merges") && m["merges"].is_array() ? &m["merges"] : nullptr;
  HERD_TRY(finish_bpe_data(
      *d, pattern ? *pattern : "[\\s\\S]+", merges ? merges->size() : 0,
      [&](size_t i, std::string& l, std::string& r) -> Status {
        const json& e = (*merges)[i];
        if (e.is_string()) {
          const std::string& s = e.get_ref<const std::string&>();
          size_t sp = s.find(' ');
          if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
            return make_error("{}: merge {} is not \"left right\"", source, e.dump());
          l = s.substr(0, sp), r = s.substr(sp + 1);
        } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
          l = e[0].get<std::string>(), r = e[1].get<std::string>();
        } else {
          return make_error("{}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", source, e.dump());
        }
        return Status::ok();
      }));
  return TokenizerBuilder::make(std::move(d));
}

}  // namespace herd
