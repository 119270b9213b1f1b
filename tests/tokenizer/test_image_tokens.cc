// The image token layout of spec §5.8 (tokenizer/image_tokens.h) with Meta's tokenizer: ids,
// counts and text agree, and <|patch|> runs sit where the vision embeddings go.
#include "herd/tokenizer/image_tokens.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace herd
