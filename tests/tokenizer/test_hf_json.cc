// tokenizer.json support: the file herd writes from the ranks encodes exactly like the ranks,
// merges in both spellings load, and `herd synth`'s byte-level fallback works.
#include <gtest/gtest.h>

#include "herd/convert/synth_tokenizer.h"
#include "llama4_tokenizer.h"

namespace herd {
namespace {

using Ids = std::vector<int32_t>;

TEST(HfJson, ExportedFileEncodesLikeTheRanks) {
  const Tokenizer& ranks = test::llama4_tokenizer();
  auto hf = Tokenizer::from_hf_json(hf_tokenizer_json(ranks), "exported.json");
  ASSERT_TRUE(hf) << hf.status().message();
  EXPECT_FALSE(hf->from_ranks());
  EXPECT_EQ(hf->vocab_size(), ranks.vocab_size());
  EXPECT_EQ(hf->eot_id(), ranks.eot_id());
  const char* samples[] = {
      "Hello, world! I'm here.",
      "    indented\n\tcode();  // comment\n",
      "数字 12345 und Ümlaute",
      "مرحبا بالعالم — שלום עולם",
      "👨‍👩‍👧‍👦 👍🏿 🇫🇷",
      "<|begin_of_text|><|header_start|>user",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "                    \n\n\n   x",
  };
  for (const char* s : samples) {
    EXPECT_EQ(hf->encode(s, true), ranks.encode(s, true)) << s;
    EXPECT_EQ(hf->encode(s, false), ranks.encode(s, false)) << s;
  }
  EXPECT_EQ(hf->decode(ranks.encode("Ünïcödé", false)).value(), "Ünïcödé");
  EXPECT_FALSE(write_hf_tokenizer_json(*hf, "/tmp/never-written.json"));  // needs ranks
}

TEST(HfJson, SynthFallbackIsByteLevel) {
  auto tok = Tokenizer::from_hf_json(fallback_tokenizer_json(), "synth tokenizer.json");
  ASSERT_TRUE(tok) << tok.status().message();
  EXPECT_EQ(tok->vocab_size(), fallback_vocab_size());
  EXPECT_EQ(tok->bos_id(), 256);
  EXPECT_EQ(tok->special_id("<|eot|>"), fallback_special_ids().eot);
  const std::string text = "héllo 👋";
  Ids ids = tok->encode(text, false);
  ASSERT_EQ(ids.size(), text.size());  // no merges: one token per byte
  for (size_t i = 0; i < text.size(); ++i)
    EXPECT_EQ(*tok->token_bytes(ids[i]).value().data(), text[i]);
  EXPECT_EQ(tok->decode(ids).value(), text);
  Ids with_special = tok->encode("<|eot|>x", true);
  EXPECT_EQ(with_special, (Ids{static_cast<int32_t>(fallback_special_ids().eot), 'x'}));
}

TEST(HfJson, MergeSpellingsAndErrors) {
  // A tiny byte-level vocab: 256 bytes (identity spelling for printable ASCII) + "ab" + "abc".
  auto make = [](const std::string& merges) {
    std::string vocab;
    const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      // \u escapes of the bytes_to_unicode code points.
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      int n = 0;
      for (int c = 0; c < b; ++c)
        n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
      int cp = printable ? b : 256 + n;
      std::string esc = "\\u0";
      esc += hex[(cp >> 8) & 15];
      esc += hex[(cp >> 4) & 15];
      esc += hex[cp & 15];
      if (cp == '"' || cp == '\\') esc = "\\u00" + std::string(1, hex[cp >> 4]) + hex[cp & 15];
      vocab += "\"" + esc + "\":" + std::to_string(b) + ",";
    }
    vocab += "\"ab\":256,\"abc\":257";
    return "{\"model\":{\"type\":\"BPE\",\"vocab\":{" + vocab + "},\"merges\":" + merges +
           "},\"added_tokens\":[{\"id\":258,\"content\":\"<|begin_of_text|>\"},"
           "{\"id\":259,\"content\":\"<|end_of_text|>\"},{\"id\":260,\"content\":\"<|eot|>\"},"
           "{\"id\":261,\"content\":\"<|eom|>\"}]}";
  };
  for (const char* merges : {R"(["a b", "ab c"])", R"([["a","b"],["ab","c"]])"}) {
    auto tok = Tokenizer::from_hf_json(make(merges), "tiny.json");
    ASSERT_TRUE(tok) << tok.status().message();
    EXPECT_EQ(tok->encode("abcab", false), (Ids{257, 256}));  // no pre_tokenizer: one piece
  }
  auto bad = Tokenizer::from_hf_json(make(R"(["a zz"])"), "tiny.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("not in the vocab"), std::string::npos);
  bad = Tokenizer::from_hf_json(R"({"model":{"type":"Unigram","vocab":{}}})", "u.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("only BPE"), std::string::npos);
}

}  // namespace
}  // namespace herd
