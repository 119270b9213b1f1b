// StreamDecoder never hands out a broken UTF-8 sequence, whatever the token boundaries.
#include <gtest/gtest.h>

#include "herd/tokenizer/stream_decoder.h"
#include "herd/tokenizer/tokenizer_data.h"
#include "herd/tokenizer/utf8.h"
#include "llama4_tokenizer.h"

namespace herd {
namespace {

std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool check_each) {
  StreamDecoder dec(tok);
  std::string out;
  for (int32_t id : ids) {
    auto piece = dec.push(id);
    EXPECT_TRUE(piece) << piece.status().message();
    if (check_each) {
      EXPECT_TRUE(utf8::is_valid(*piece));
    }
    out += *piece;
  }
  return out + dec.flush();
}

TEST(StreamDecoder, EmojiSplitAcrossTokens) {
  const Tokenizer& tok = test::llama4_tokenizer();
  const std::string text = "🧑🏽‍💻 emoji 👨‍👩‍👧‍👦 and 中文";
  auto ids = tok.encode(text, false);
  // The ZWJ sequence is spread over tokens that end mid-character.
  bool split = false;
  for (int32_t id : ids) split |= !utf8::is_valid(tok.token_bytes(id).value());
  ASSERT_TRUE(split);
  EXPECT_EQ(stream(tok, ids, true), text);
}

TEST(StreamDecoder, SingleBytesOfAFourByteCharacter) {
  const Tokenizer& tok = test::llama4_tokenizer();
  const std::string emoji = "😀";
  StreamDecoder dec(tok);
  // Feed the four byte tokens one at a time.
  std::string out;
  for (size_t i = 0; i < emoji.size(); ++i) {
    int32_t id = tok.data().byte_ids[static_cast<uint8_t>(emoji[i])];
    auto piece = dec.push(id);
    ASSERT_TRUE(piece);
    if (i + 1 < emoji.size()) {
      EXPECT_EQ(*piece, "") << i;
    }
    out += *piece;
  }
  EXPECT_EQ(out, emoji);
  EXPECT_EQ(dec.pending_bytes(), 0u);
}

TEST(StreamDecoder, IncompleteAtEndAndInvalidBytes) {
  const Tokenizer& tok = test::llama4_tokenizer();
  StreamDecoder dec(tok);
  const auto& b = tok.data().byte_ids;
  EXPECT_EQ(dec.push(b[0xF0]).value(), "");
  EXPECT_EQ(dec.push(b[0x9F]).value(), "");
  EXPECT_EQ(dec.pending_bytes(), 2u);
  EXPECT_EQ(dec.flush(), "\uFFFD");                // cut short at end of stream
  EXPECT_EQ(dec.push(b[0x80]).value(), "\uFFFD");  // a continuation byte with no lead
  EXPECT_EQ(dec.push(b[0xE4]).value(), "");
  EXPECT_EQ(dec.push(b['a']).value(), "\uFFFDa");  // the lead byte can no longer complete
  EXPECT_FALSE(dec.push(-5));
  EXPECT_EQ(dec.push(tok.eot_id()).value(), "<|eot|>");
}

}  // namespace
}  // namespace herd
