// Images spliced into a prompt (spec §5.9) through the engine: logits before <|image_start|>
// do not depend on the image, logits from the first <|patch|> on do; layouts that do not match
// the images are errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "herd/convert/synth.h"
#include "herd/runtime/engine.h"
#include "herd/runtime/vision_splice.h"

namespace herd {
namespace {

// A w×h image whose content depends on `seed` (smooth pattern + per-pixel hash).
Image make_image(int w, int h, int seed) {
  Image img{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        img.rgb[(size_t(y) * size_t(w) + size_t(x)) * 3 + size_t(c)] =
            uint8_t((x * (c + 1) + y * (seed + 2) + ((x * 31 + y * 17 + seed * 7) % 13)) & 255);
  return img;
}

class VisionSplice : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (std::filesystem::temp_directory_path() /
            ("herd_test_vision_splice_" + std::to_string(::getpid())))
               .string();
    SynthOptions o;
    o.out_dir = dir_;
    ASSERT_TRUE(synth_model(o).is_ok());
    EngineOptions eo;
    eo.model_dir = dir_;
    eo.threads = 2;
    eo.precision = Precision::kF32;
    eo.progress = false;
    eo.sched.max_seqs = 1;
    auto e = Engine::open(eo);
    ASSERT_TRUE(e.is_ok()) << e.status().message();
    engine_ = std::move(e).value().release();
    auto enc = VisionEncoder::create(engine_->model(), engine_->pool(), Precision::kF32);
    ASSERT_TRUE(enc.is_ok()) << enc.status().message();
    enc_ = std::move(enc).value().release();
  }
  static void TearDownTestSuite() {
    delete enc_;
    delete engine_;
    std::filesystem::remove_all(dir_);
  }

  static ImageTiles tiles(const Image& img) {
    auto t = preprocess_image(img, 336, {});
    EXPECT_TRUE(t.is_ok()) << t.status().message();
    return std::move(t).value();
  }
  static std::vector<int32_t> layout(const ImageTiles& t) {
    std::vector<int32_t> ids;
    EXPECT_TRUE(
        append_image_layout(engine_->tokenizer(), image_token_shape(t, *enc_), ids).is_ok());
    return ids;
  }

  // Logits at every position of `prompt` with the images spliced in.
  static std::vector<std::vector<float>> logits(const std::vector<int32_t>& prompt,
                                                const std::vector<ImageTiles>& images) {
    auto s = splice_images(*enc_, engine_->tokenizer(), prompt, images);
    EXPECT_TRUE(s.is_ok()) << s.status().message();
    Request r;
    r.prompt = prompt;
    r.reuse_prefix = false;
    r.embeddings = std::move(s->embeddings);
    r.embedding_positions = std::move(s->positions);
    for (int64_t i = 0; i < int64_t(prompt.size()); ++i) r.logits_positions.push_back(i);
    const int64_t V = engine_->decoder().vocab_size();
    std::vector<std::vector<float>> rows(prompt.size());
    r.on_logits = [&](int64_t pos, const float* row) { rows[size_t(pos)].assign(row, row + V); };
    EXPECT_TRUE(engine_->run(std::move(r)).is_ok());
    return rows;
  }

  static inline std::string dir_;
  static inline Engine* engine_ = nullptr;
  static inline VisionEncoder* enc_ = nullptr;
};

TEST_F(VisionSplice, LogitsBeforeTheImageDoNotDependOnIt) {
  const ImageTiles a = tiles(make_image(640, 480, 1)), b = tiles(make_image(640, 480, 2));
  ASSERT_EQ(a.n_tiles(), 5);  // 2×2 + global (spec §5.1 example: 727 tokens)
  const std::vector<int32_t> lay = layout(a);
  ASSERT_EQ(lay.size(), 727u);
  ASSERT_EQ(layout(b), lay);
  std::vector<int32_t> prompt = engine_->tokenizer().encode("Look at this: ", false);
  const size_t start = prompt.size();
  prompt.insert(prompt.end(), lay.begin(), lay.end());
  const std::vector<int32_t> tail = engine_->tokenizer().encode(" What is it?", false);
  prompt.insert(prompt.end(), tail.begin(), tail.end());
  const auto la = logits(prompt, {a}), lb = logits(prompt, {b});
  // Up to and including <|image_start|> the inputs are the same text: bitwise equal logits.
  for (size_t p = 0; p <= start; ++p) EXPECT_EQ(la[p], lb[p]) << "position " << p;
  // From the first <|patch|> on every position sees the image, so every row differs.
  for (size_t p = start + 1; p < prompt.size(); ++p) EXPECT_NE(la[p], lb[p]) << "position " << p;
  // Same image twice: the same logits everywhere (the comparison above is not noise).
  EXPECT_EQ(logits(prompt, {a}), la);
}

TEST_F(VisionSplice, LayoutMustMatchTheImages) {
  const ImageTiles big = tiles(make_image(640, 480, 1)), one = tiles(make_image(200, 100, 3));
  ASSERT_EQ(one.n_tiles(), 1);
  const std::vector<int32_t> text = engine_->tokenizer().encode("hi", false);
  std::vector<int32_t> prompt = text;
  const std::vector<int32_t> l1 = layout(one);
  prompt.insert(prompt.end(), l1.begin(), l1.end());
  // A one-tile layout for a 2×2 image.
  auto r = splice_images(*enc_, engine_->tokenizer(), prompt, std::vector<ImageTiles>{big});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(
      r.status().message().find("image 1: the tokens from 2 are not the layout of its 2x2 tiles"),
      std::string::npos)
      << r.status().message();
  // One layout, two images; and a layout without an image.
  r = splice_images(*enc_, engine_->tokenizer(), prompt, std::vector<ImageTiles>{one, one});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(
                "the tokens hold 1 images (<|image_start|> tokens) but 2 images were given"),
            std::string::npos)
      << r.status().message();
  r = splice_images(*enc_, engine_->tokenizer(), prompt, std::vector<ImageTiles>{});
  ASSERT_FALSE(r.is_ok());
  // The matching layout works and yields 144 rows of text width.
  r = splice_images(*enc_, engine_->tokenizer(), prompt, std::vector<ImageTiles>{one});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->positions.size(), 144u);
  EXPECT_EQ(r->positions.front(), int64_t(text.size()) + 2);  // after <|image_start|><|image|>
  EXPECT_EQ(r->embeddings.size(), 144u * size_t(engine_->decoder().config().hidden_size));
}

}  // namespace
}  // namespace herd
