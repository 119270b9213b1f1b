// Writing a Hugging Face tokenizer.json from tiktoken ranks, following transformers'
// TikTokenConverter (convert_slow_tokenizer.py): every split of a token into two tokens whose
// halves are both tokens becomes a merge; merges are ordered by the rank of the token they
// form, and among one token's splits by (rank of left, rank of right).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "herd/base/mapped_file.h"
#include "herd/tokenizer/tokenizer_data.h"
#include "herd/tokenizer/utf8.h"

namespace herd {
namespace {

std::string spell(std::string_view bytes) {
  std::string out;
  for (char c : bytes) utf8::append_code_point(out, byte_to_unicode()[static_cast<uint8_t>(c)]);
  return out;
}

}  // namespace

std::string hf_tokenizer_json(const Tokenizer& tok) {
  using json = nlohmann::json;
  const Tokenizer::Data& d = tok.data();
  // vocab and merges are written by hand: a JSON object of 200 000 keys is slow to build
  // (ordered_json inserts in linear time) and we want them in rank order anyway.
  auto quote = [](const std::string& s) { return json(s).dump(); };
  std::string vocab = "{", merges = "[";
  json added = json::array();
  struct Split {
    int32_t left, right;
  };
  std::vector<Split> local;
  bool first_vocab = true, first_merge = true;
  for (size_t id = 0; id < d.tokens.size(); ++id) {
    const std::string& t = d.tokens[id];
    if (d.kinds[id] == TokenKind::kSpecial) {
      added.push_back({{"id", id},
                       {"content", t},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", true}});
      continue;
    }
    if (d.kinds[id] != TokenKind::kBase) continue;
    if (!first_vocab) vocab += ',';
    first_vocab = false;
    vocab += quote(spell(t)) + ':' + std::to_string(id);  // ids are ranks: rank order
    if (t.size() < 2) continue;
    local.clear();
    for (size_t i = 1; i < t.size(); ++i) {
      int32_t l = d.index.find(std::string_view(t).substr(0, i));
      int32_t r = d.index.find(std::string_view(t).substr(i));
      if (l >= 0 && r >= 0) local.push_back({l, r});
    }
    std::sort(local.begin(), local.end(), [](const Split& a, const Split& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
    for (const Split& s : local) {
      if (!first_merge) merges += ',';
      first_merge = false;
      merges += '[' + quote(spell(d.tokens[s.left])) + ',' + quote(spell(d.tokens[s.right])) + ']';
    }
  }
  vocab += '}';
  merges += ']';
  json pre = {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"},
                 {"pattern", {{"Regex", d.regex.pattern()}}},
                 {"behavior", "Isolated"},
                 {"invert", false}},
                {{"type", "ByteLevel"},
                 {"add_prefix_space", false},
                 {"trim_offsets", true},
                 {"use_regex", false}}}}};
  json post = {{"type", "ByteLevel"},
               {"add_prefix_space", true},
               {"trim_offsets", false},
               {"use_regex", true}};
  json decoder = {{"type", "ByteLevel"},
                  {"add_prefix_space", true},
                  {"trim_offsets", true},
                  {"use_regex", true}};
  std::string out = "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":";
  out += added.dump();
  out += ",\"normalizer\":null,\"pre_tokenizer\":" + pre.dump();
  out += ",\"post_processor\":" + post.dump() + ",\"decoder\":" + decoder.dump();
  out +=
      ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
      "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":false,"
      "\"byte_fallback\":false,\"ignore_merges\":false,\"vocab\":";
  out += vocab + ",\"merges\":" + merges + "}}";
  return out;
}

Status write_hf_tokenizer_json(const Tokenizer& tok, const std::string& path) {
  if (!tok.from_ranks())
    return make_error("writing {}: the tokenizer came from {}, not from tiktoken ranks", path,
                      tok.source());
  return write_text_file(path, hf_tokenizer_json(tok));
}

}  // namespace herd
