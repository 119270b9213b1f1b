// The image token layout of spec §5.8 (tokenizer/image_tokens.h) with Meta's tokenizer: ids,
// counts and text agree, and <|patch|> runs sit where the vision embeddings go.
#include "herd/tokenizer/image_tokens.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "herd/tokenizer/chat_format.h"
#include "tokenizer/llama4_tokenizer.h"

namespace herd {
namespace {

// Spec §8 ids.
constexpr int32_t kStart = 200080, kEnd = 200081, kTileX = 200084, kTileY = 200085, kImage = 200090,
                  kPatch = 200092;

std::vector<int32_t> run(int n) {
  return std::vector<int32_t>(size_t(n), kPatch);
}

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(ImageTokens, SingleTile) {
  std::vector<int32_t> ids = {1, 2};  // appended after what is there
  std::vector<size_t> runs;
  ASSERT_TRUE(append_image_layout(test::llama4_tokenizer(), {1, 1, 144}, ids, &runs).is_ok());
  EXPECT_EQ(ids, cat({{1, 2, kStart, kImage}, run(144), {kEnd}}));
  EXPECT_EQ(runs, std::vector<size_t>{4});
  EXPECT_EQ(image_layout_token_count({1, 1, 144}), 147);
}

TEST(ImageTokens, TwoByThreeGrid) {
  // HF-PROC _prompt_split_image: rows of tiles separated by x, each row closed by y.
  const int n = 5;  // a short run keeps the expectation readable
  std::vector<int32_t> ids;
  std::vector<size_t> runs;
  ASSERT_TRUE(append_image_layout(test::llama4_tokenizer(), {2, 3, n}, ids, &runs).is_ok());
  const auto row = cat({run(n), {kTileX}, run(n), {kTileX}, run(n), {kTileY}});
  const auto want = cat({{kStart}, row, row, {kImage}, run(n), {kEnd}});
  EXPECT_EQ(ids, want);
  ASSERT_EQ(runs.size(), 7u);  // six tiles, the global last
  for (size_t r : runs) {
    EXPECT_EQ(ids[r], kPatch);
    EXPECT_NE(ids[r - 1], kPatch);
  }
  EXPECT_EQ(runs.back(), want.size() - 1 - n);
  EXPECT_EQ(image_layout_token_count({2, 3, n}), int64_t(want.size()));
}

TEST(ImageTokens, CountsAndText) {
  // 144·(h·w+1) + h·w + 3 (spec §5.8): 727 for 2×2, 2322 for 3×5.
  EXPECT_EQ(image_layout_token_count({2, 2, 144}), 727);
  EXPECT_EQ(image_layout_token_count({3, 5, 144}), 2322);
  for (int h = 1; h <= 4; ++h) {
    for (int w = 1; w * h <= 16; ++w) {
      if (h * w > 1) {
        EXPECT_EQ(image_layout_token_count({h, w, 144}), 144 * (h * w + 1) + h * w + 3);
      }
    }
  }
  // The text form tokenizes (specials allowed) to the same ids.
  const Tokenizer& tok = test::llama4_tokenizer();
  std::vector<int32_t> ids;
  ASSERT_TRUE(append_image_layout(tok, {2, 2, 144}, ids).is_ok());
  EXPECT_EQ(tok.encode(image_layout_text({2, 2, 144}), /*allow_special=*/true), ids);
  EXPECT_EQ(image_layout_text({1, 1, 2}),
            "<|image_start|><|image|><|patch|><|patch|><|image_end|>");
}

TEST(ImageTokens, ChatPromptWithTwoImages) {
  // HF's processor: the template renders one <|image|> per image part, then each is replaced by
  // that image's layout. herd does it on ids; the decoded text must be the same string.
  const Tokenizer& tok = test::llama4_tokenizer();
  const auto messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Compare "},
                                 {"type": "image_url", "image_url": {"url": "data:,"}},
                                 {"type": "text", "text": " with "},
                                 {"type": "image_url", "image_url": {"url": "data:,"}}]}])");
  auto chat = render_chat(tok, messages);
  ASSERT_TRUE(chat.is_ok()) << chat.status().message();
  ASSERT_EQ(chat->image_positions.size(), 2u);
  const std::vector<ImageTokenShape> shapes = {{2, 2, 144}, {1, 1, 144}};
  auto p = expand_image_placeholders(tok, chat->ids, chat->image_positions, shapes);
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  std::string want = chat->text;
  size_t from = 0;
  for (const auto& shape : shapes) {
    from = want.find("<|image|>", from);
    ASSERT_NE(from, std::string::npos);
    const std::string layout = image_layout_text(shape);
    want.replace(from, 9, layout);
    from += layout.size();
  }
  auto text = tok.decode(p->ids);
  ASSERT_TRUE(text.is_ok());
  EXPECT_EQ(*text, want);
  EXPECT_EQ(p->ids.size(), chat->ids.size() - 2 + 727 + 147);
  ASSERT_EQ(p->patch_runs.size(), 2u);
  EXPECT_EQ(p->patch_runs[0].size(), 5u);
  EXPECT_EQ(p->patch_runs[1].size(), 1u);
  size_t patches = 0;
  for (const auto& runs : p->patch_runs)
    for (size_t r : runs)
      for (size_t i = r; i < r + 144; ++i) patches += p->ids[i] == kPatch;
  EXPECT_EQ(patches, size_t(std::count(p->ids.begin(), p->ids.end(), kPatch)));
  EXPECT_EQ(patches, 6u * 144);
}

TEST(ImageTokens, LocateLayouts) {
  // The inverse of expand_image_placeholders: the same runs back, and mismatches named.
  const Tokenizer& tok = test::llama4_tokenizer();
  std::vector<int32_t> ids = {200000, 9, kImage, 7, kImage, 8};
  const std::vector<ImageTokenShape> shapes = {{1, 2, 144}, {1, 1, 144}};
  auto p = expand_image_placeholders(tok, ids, std::vector<size_t>{2, 4}, shapes);
  ASSERT_TRUE(p.is_ok());
  auto runs = locate_image_layouts(tok, p->ids, shapes);
  ASSERT_TRUE(runs.is_ok()) << runs.status().message();
  EXPECT_EQ(*runs, p->patch_runs);
  // The grid of the first image read as 2x1: after its first tile a <|tile_y_separator|> is
  // expected where <|tile_x_separator|> stands.
  const std::vector<ImageTokenShape> wrong = {{2, 1, 144}, {1, 1, 144}};
  auto bad = locate_image_layouts(tok, p->ids, wrong);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().message(),
            "image 1: the tokens from 2 are not the layout of its 2x1 tiles: token 147 is "
            "<|tile_x_separator|> where <|tile_y_separator|> belongs");
  EXPECT_EQ(
      locate_image_layouts(tok, p->ids, std::vector<ImageTokenShape>{shapes[0]}).status().message(),
      "the tokens hold 2 images (<|image_start|> tokens) but 1 images were given");
  std::vector<int32_t> stray = p->ids;
  stray.push_back(kPatch);
  EXPECT_EQ(locate_image_layouts(tok, stray, shapes).status().message(),
            fmt::format("token {} is <|patch|> outside every image layout", stray.size() - 1));
}

TEST(ImageTokens, PlaceholderErrors) {
  const Tokenizer& tok = test::llama4_tokenizer();
  const std::vector<int32_t> ids = {200000, kImage, 42};
  const std::vector<ImageTokenShape> one = {{1, 1, 144}};
  auto r = expand_image_placeholders(tok, ids, std::vector<size_t>{}, one);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "the prompt has 0 image placeholders but 1 images were given");
  r = expand_image_placeholders(tok, ids, std::vector<size_t>{2}, one);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "image 1: token 2 of the prompt is not an <|image|> placeholder");
  r = expand_image_placeholders(tok, ids, std::vector<size_t>{1}, one);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->ids.size(), 2 + 147u);
  EXPECT_EQ(r->ids.back(), 42);
}

}  // namespace
}  // namespace herd
