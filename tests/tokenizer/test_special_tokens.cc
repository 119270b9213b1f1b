// The special-token table and the base vocabulary facts of spec §4.1–4.2.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "herd/tokenizer/special_tokens.h"
#include "llama4_tokenizer.h"

namespace herd {
namespace {

TEST(SpecialTokens, MatchSharedTable) {
  std::ifstream in(test::shared_llama4("special_tokens.tsv"));
  ASSERT_TRUE(in) << "cannot open special_tokens.tsv";
  const auto& names = llama4_special_tokens();
  ASSERT_EQ(names.size(), 2048u);
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    int id = std::stoi(line.substr(0, tab));
    std::string name = line.substr(tab + 1);
    ASSERT_GE(id, 200000);
    ASSERT_LT(id, 202048);
    EXPECT_EQ(names[id - 200000], name) << "id " << id;
    ++rows;
  }
  EXPECT_EQ(rows, 2048);
}

TEST(SpecialTokens, NamedIdsAndVocabSize) {
  const Tokenizer& tok = test::llama4_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 202048);
  EXPECT_EQ(tok.bos_id(), 200000);
  EXPECT_EQ(tok.eos_id(), 200001);
  EXPECT_EQ(tok.eom_id(), 200007);
  EXPECT_EQ(tok.eot_id(), 200008);
  EXPECT_EQ(tok.special_id("<|header_start|>"), 200005);
  EXPECT_EQ(tok.special_id("<|python_start|>"), 200016);
  EXPECT_EQ(tok.special_id("<|image|>"), 200090);
  EXPECT_EQ(tok.special_id("<|patch|>"), 200092);
  EXPECT_EQ(tok.special_id("<|reasoning_thinking_end|>"), 201143);
  EXPECT_EQ(tok.special_id("<|reserved_special_token_903|>"), 202047);
  EXPECT_EQ(tok.special_id("<|python_tag|>"), std::nullopt);  // Llama 3 only
  EXPECT_TRUE(tok.is_special(200000));
  EXPECT_FALSE(tok.is_special(199999));
  EXPECT_FALSE(tok.is_special(-1));
  EXPECT_FALSE(tok.is_special(202048));
  EXPECT_EQ(tok.stop_ids(), (std::vector<int32_t>{200001, 200007, 200008}));
}

TEST(BaseVocab, ByteRanksAreNotInByteOrder) {
  const Tokenizer& tok = test::llama4_tokenizer();
  EXPECT_EQ(tok.token_bytes(0).value(), "\xC0");
  EXPECT_EQ(tok.token_bytes(1).value(), "\xC1");
  EXPECT_EQ(tok.token_bytes(2).value(), "\xF5");
  // Every single byte encodes to one token among ranks 0..255.
  for (int b = 1; b < 128; ++b) {
    std::string s(1, static_cast<char>(b));
    auto ids = tok.encode(s, false);
    ASSERT_EQ(ids.size(), 1u) << b;
    EXPECT_LT(ids[0], 256);
    EXPECT_EQ(tok.token_bytes(ids[0]).value(), s);
  }
}

TEST(Load, BadFilesGiveErrorsNamingTheProblem) {
  auto r = Tokenizer::from_tiktoken("QUJD 0\nnot-base64! 1\n", "x.model");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("x.model line 2"), std::string::npos) << r.status().message();
  r = Tokenizer::from_tiktoken("QQ== 0\nQg== 0\n", "dup.model");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("rank 0 appears twice"), std::string::npos);
  r = Tokenizer::from_tiktoken("QQ== 0\n", "bytes.model");
  ASSERT_FALSE(r);  // byte-level BPE needs all 256 single bytes
  EXPECT_NE(r.status().message().find("single byte"), std::string::npos);
  r = Tokenizer::load("/nonexistent-dir");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("/nonexistent-dir: does not exist"), std::string::npos)
      << r.status().message();
  r = Tokenizer::load(::testing::TempDir());
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("no tokenizer.model"), std::string::npos);
  r = Tokenizer::from_hf_json("{not json", "t.json");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("t.json: not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace herd
