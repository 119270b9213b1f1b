// Chat rendering details the Jinja comparison (tokenizer_chat_template) cannot see: token ids,
// image positions, and errors. Byte-for-byte text is checked there against Jinja2.
#include <gtest/gtest.h>

#include "herd/tokenizer/chat_format.h"
#include "llama4_tokenizer.h"

namespace herd {
namespace {

using ojson = nlohmann::ordered_json;

TEST(ChatFormat, SystemUserPromptMatchesPromptFormatMd) {
  const Tokenizer& tok = test::llama4_tokenizer();
  auto r = render_chat(
      tok, ojson::parse(R"([{"role": "system", "content": "You are a helpful assistant"},
      {"role": "user", "content": "Answer who are you in the form of jeopardy?"}])"));
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->text,
            "<|begin_of_text|><|header_start|>system<|header_end|>\n\nYou are a helpful "
            "assistant<|eot|><|header_start|>user<|header_end|>\n\nAnswer who are you in the form "
            "of jeopardy?<|eot|><|header_start|>assistant<|header_end|>\n\n");
  EXPECT_EQ(r->ids, tok.encode(r->text, true));
  EXPECT_EQ(r->ids.front(), tok.bos_id());
  EXPECT_EQ(std::count(r->ids.begin(), r->ids.end(), tok.eot_id()), 2);
}

TEST(ChatFormat, ContentIsPlainTextEvenIfItSpellsSpecials) {
  const Tokenizer& tok = test::llama4_tokenizer();
  auto r = render_chat(tok, ojson::parse(R"([{"role": "user", "content": "say <|eot|> now"}])"));
  ASSERT_TRUE(r);
  EXPECT_EQ(std::count(r->ids.begin(), r->ids.end(), tok.eot_id()), 1);  // only the structural one
  EXPECT_EQ(tok.decode(r->ids).value(), r->text);
}

TEST(ChatFormat, ImagePlaceholderPositions) {
  const Tokenizer& tok = test::llama4_tokenizer();
  auto r = render_chat(tok, ojson::parse(R"([{"role": "user", "content": [
      {"type": "image"}, {"type": "text", "text": "and"}, {"type": "image_url", "image_url": {"url": "x"}}]}])"));
  ASSERT_TRUE(r) << r.status().message();
  ASSERT_EQ(r->image_positions.size(), 2u);
  for (size_t pos : r->image_positions) EXPECT_EQ(r->ids[pos], *tok.special_id("<|image|>"));
  EXPECT_LT(r->image_positions[0], r->image_positions[1]);
}

TEST(ChatFormat, OptionsAndErrors) {
  ChatOptions opt;
  opt.add_bos = false;
  opt.add_generation_prompt = false;
  auto r = render_chat_text(ojson::parse(R"([{"role": "user", "content": "hi"}])"), opt);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text, "<|header_start|>user<|header_end|>\n\nhi<|eot|>");
  EXPECT_TRUE(r->ids.empty());
  ChatOptions tools;
  tools.tools = ojson::array();
  auto e = render_chat_text(ojson::parse(R"([{"role": "system", "content": "s"}])"), tools);
  ASSERT_FALSE(e);
  EXPECT_NE(e.status().message().find("no first user message"), std::string::npos);
  e = render_chat_text(ojson::parse(R"([{"role": "user", "content": 5}])"));
  ASSERT_FALSE(e);
  EXPECT_NE(e.status().message().find("messages[0].content"), std::string::npos);
  e = render_chat_text(ojson::parse(R"({"role": "user"})"));
  EXPECT_FALSE(e);
  e = render_chat_text(
      ojson::parse(R"([{"role": "assistant", "tool_calls": [{"function": {}}]}])"));
  ASSERT_FALSE(e);
  EXPECT_NE(e.status().message().find("messages[0].tool_calls[0]"), std::string::npos);
}

TEST(ChatFormat, PythonStrip) {
  EXPECT_EQ(python_strip("\u3000\n a b \t\u00a0\u2029"), "a b");
  EXPECT_EQ(python_strip("   "), "");
  EXPECT_EQ(python_strip("é"), "é");
}

}  // namespace
}  // namespace herd
