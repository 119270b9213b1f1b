// Encoding and decoding with Meta's Llama 4 tokenizer.model. Expected ids come from js-tiktoken
// (tools/tokenizer-ref/encode.mjs); the conformance test compares a whole corpus.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "herd/tokenizer/bpe.h"
#include "herd/tokenizer/split_regex.h"
#include "herd/tokenizer/tokenizer_data.h"
#include "llama4_tokenizer.h"

namespace herd {
namespace {

using Ids = std::vector<int32_t>;

std::string decode(const Tokenizer& tok, const Ids& ids) {
  auto r = tok.decode(ids);
  EXPECT_TRUE(r) << r.status().message();
  return r ? *r : std::string();
}

TEST(Encode, KnownAnswers) {
  const Tokenizer& tok = test::llama4_tokenizer();
  EXPECT_EQ(tok.encode("Hello, world! I'm here.", false),
            (Ids{19873, 24, 3817, 13, 8542, 2863, 26}));
  EXPECT_EQ(tok.encode("  leading spaces and\n\n\nnewlines", false),
            (Ids{220, 10855, 15174, 341, 2946, 1590, 12073}));
  EXPECT_EQ(tok.encode("数字 12345 und Ümlaute ſ'S", false),
            (Ids{22588, 220, 7235, 2127, 1244, 11563, 134333, 1545, 5763, 136, 36812}));
  EXPECT_EQ(tok.encode("🧑🏽‍💻 emoji", false),
            (Ids{188853, 239, 73601, 134, 12817, 68733, 132, 88230}));
}

TEST(Encode, SpecialTokensOnlyWhenAllowed) {
  const Tokenizer& tok = test::llama4_tokenizer();
  EXPECT_EQ(tok.encode("<|eot|> text", true), (Ids{200008, 2032}));
  Ids plain = tok.encode("<|eot|> text", false);
  EXPECT_EQ(plain, (Ids{40, 104, 81, 359, 159276, 2032}));
  for (int32_t id : plain) EXPECT_FALSE(tok.is_special(id));
  EXPECT_EQ(decode(tok, plain), "<|eot|> text");
  // Adjacent specials, a special at the very end, and near misses.
  Ids ids = tok.encode("<|begin_of_text|><|header_start|>user<|header_end|>", true);
  EXPECT_EQ(ids, (Ids{200000, 200005, *tok.encode("user", false).begin(), 200006}));
  Ids miss = tok.encode("<|eot|<|eot|><|nope|>", true);
  EXPECT_EQ(decode(tok, miss), "<|eot|<|eot|><|nope|>");
  EXPECT_EQ(std::count(miss.begin(), miss.end(), 200008), 1);
}

TEST(Encode, EmptyInput) {
  const Tokenizer& tok = test::llama4_tokenizer();
  EXPECT_TRUE(tok.encode("", false).empty());
  EXPECT_TRUE(tok.encode("", true).empty());
  EXPECT_EQ(decode(tok, {}), "");
}

TEST(Encode, InvalidUtf8BecomesReplacementCharacter) {
  const Tokenizer& tok = test::llama4_tokenizer();
  // A stray continuation byte, a truncated 3-byte sequence, an overlong and a surrogate.
  const std::string bad =
      "a\x80"
      "b\xE2\x82"
      "c\xC0\xAF"
      "d\xED\xA0\x80"
      "e";
  const std::string fixed = "a\uFFFDb\uFFFDc\uFFFD\uFFFDd\uFFFD\uFFFD\uFFFDe";
  EXPECT_EQ(tok.encode(bad, false), tok.encode(fixed, false));
  EXPECT_EQ(decode(tok, tok.encode(bad, false)), fixed);
}

TEST(Encode, RoundTripsVariedText) {
  const Tokenizer& tok = test::llama4_tokenizer();
  const char* samples[] = {
      "The quick brown fox jumps over the lazy dog.",
      "int main(int argc, char** argv) {\n\treturn 0;\n}\n",
      "日本語のテキストと中文混合，还有한국어도 있습니다。",
      "مرحبا بالعالم — שלום עולם",
      "e\u0301 n\u0303 a\u0308\u0304 Z\u0351\u0352\u0353",
      "👨‍👩‍👧‍👦 👍🏿 🏳️‍🌈 🇫🇷",
      "3.14159 1,000,000 0x1F 1e-9 ١٢٣",
      "\t \n\r\n \u00A0\u3000\u2028 \u0085 \uFEFF end   ",
      "Don't WON'T we'LL they'Re it's",
  };
  for (const char* s : samples) {
    Ids ids = tok.encode(s, false);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(decode(tok, ids), s);
  }
}

TEST(Encode, LongWhitespaceRunsFollowMetaChunking) {
  const Tokenizer& tok = test::llama4_tokenizer();
  // Runs longer than 25 000 are cut before the regex (tokenizer.py); check the cut points.
  std::string spaces(60000, ' ');
  const std::string text = "x" + spaces + "y";
  auto chunks = meta_chunks(text);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].size(), 1u + 25000u);
  EXPECT_EQ(chunks[1].size(), 25000u);
  EXPECT_EQ(chunks[2].size(), 10000u + 1u);
  Ids ids = tok.encode(text, false);
  Ids expected = tok.encode(std::string(chunks[0]), false);
  for (int k = 1; k < 3; ++k) {
    Ids part = tok.encode(std::string(chunks[k]), false);
    expected.insert(expected.end(), part.begin(), part.end());
  }
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(decode(tok, ids), text);
  std::string mixed;
  for (int i = 0; i < 3000; ++i) mixed += "\n \t\r\n   ";
  EXPECT_EQ(decode(tok, tok.encode(mixed, false)), mixed);
}

TEST(Encode, TenMegabytesIsFast) {
  const Tokenizer& tok = test::llama4_tokenizer();
  std::string text;
  std::mt19937 rng(42);
  const char* words[] = {"the ",   "tokenizer ", "会話 ",         "模型 ",  "émigré ",
                         "12345 ", "\n",         "{x: [1, 2]}; ", "مرحبا ", "😀 "};
  while (text.size() < 10 * 1000 * 1000) text += words[rng() % 10];
  auto t0 = std::chrono::steady_clock::now();
  Ids ids = tok.encode(text, false);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(decode(tok, ids), text);
  // Release builds run at > 10 MB/s; the bound leaves room for ASan.
  EXPECT_LT(secs, 30.0);
  std::printf("10 MB encoded in %.2f s (%zu tokens)\n", secs, ids.size());
}

TEST(Decode, UnknownIdsAreErrors) {
  const Tokenizer& tok = test::llama4_tokenizer();
  for (int32_t id : {-1, 202048, 1 << 30}) {
    auto r = tok.decode(Ids{1, id});
    ASSERT_FALSE(r);
    EXPECT_NE(r.status().message().find(std::to_string(id)), std::string::npos);
  }
  EXPECT_EQ(tok.decode(Ids{200008}).value(), "<|eot|>");
}

// The heap merge used for long pieces must agree with the linear one for short pieces.
TEST(Bpe, HeapAndLinearMergesAgree) {
  const Tokenizer& tok = test::llama4_tokenizer();
  const Tokenizer::Data& d = tok.data();
  auto pair = [&](int32_t, int32_t, std::string_view joined) -> bpe::Merge {
    int32_t id = d.index.find(joined);
    return id < 0 ? bpe::Merge{} : bpe::Merge{static_cast<uint32_t>(id), id};
  };
  std::mt19937 rng(7);
  const std::string alphabet = "aeiou rstln  --==..,,\xC3\xA9\xE4\xB8\xAD";
  for (int iter = 0; iter < 2000; ++iter) {
    std::string piece;
    size_t len = 2 + rng() % 200;
    for (size_t i = 0; i < len; ++i) piece += alphabet[rng() % alphabet.size()];
    Ids a, b;
    bpe::merge_linear(piece, d.byte_ids.data(), pair, a);
    bpe::merge_heap(piece, d.byte_ids.data(), pair, b);
    ASSERT_EQ(a, b) << piece;
  }
}

}  // namespace
}  // namespace herd
