// Llama 4 image preprocessing (model/vision_preprocess.h): the worked examples of spec §5.1 and
// §5.1.1, hand-computed Pillow resize values, tile order, padding and normalisation. The sweep
// over many sizes against an independent Python implementation and Pillow itself is
// tests/integration/image/preprocess_test.py.
#include "herd/model/vision_preprocess.h"
#include "herd/runtime/vision_splice.h"

#include <gtest/gtest.h>

namespace herd {
namespace {

constexpr int kTile = 336;

struct Example {
  int height, width;  // spec §5.1 writes H×W
  int rows, cols, resized_w, resized_h;
  int64_t tokens;
};

TEST(VisionPreprocess, SpecExamples) {
  const Example examples[] = {
      {336, 336, 1, 1, 336, 336, 147},
      {100, 100, 1, 1, 336, 336, 147},
      {480, 640, 2, 2, 640, 480, 727},
      {768, 1024, 3, 4, 1024, 768, 1887},
      {1080, 1920, 3, 5, 1680, 945, 2322},
      {300, 800, 1, 3, 800, 300, 582},
      // spec §5.1.1: exact arithmetic gives 1584 where HF's float32 gives 1583.
      {2420, 1540, 5, 3, 1008, 1584, 144 * 16 + 15 + 3},
  };
  for (const Example& e : examples) {
    SCOPED_TRACE(testing::Message() << e.height << "x" << e.width);
    const CanvasPlan p = plan_canvas(e.width, e.height, kTile, {});
    EXPECT_EQ(p.tile_rows, e.rows);
    EXPECT_EQ(p.tile_cols, e.cols);
    EXPECT_EQ(p.resized_width, e.resized_w);
    EXPECT_EQ(p.resized_height, e.resized_h);
    ImageTiles t;
    t.tile_rows = p.tile_rows;
    t.tile_cols = p.tile_cols;
    t.tile_size = kTile;
    EXPECT_EQ(image_token_count(t, 14, 0.5), e.tokens);
  }
  EXPECT_EQ(image_tokens_per_tile(336, 14, 0.5), 144);
}

TEST(VisionPreprocess, ResizeToMaxCanvasFillsIt) {
  VisionPreprocessOptions opt;
  opt.resize_to_max_canvas = true;
  // 100×100 with the largest upscale: 4×4 canvas, resized to fill it.
  const CanvasPlan p = plan_canvas(100, 100, kTile, opt);
  EXPECT_EQ(p.tile_rows, 4);
  EXPECT_EQ(p.tile_cols, 4);
  EXPECT_EQ(p.resized_width, 1344);
  EXPECT_EQ(p.resized_height, 1344);
}

Image make(int w, int h, std::vector<uint8_t> rgb) {
  return Image{w, h, std::move(rgb)};
}

TEST(VisionPreprocess, PillowBilinearByHand) {
  // 4 -> 2 horizontally: scale 2 widens the triangle to support 2; output 0 takes inputs 0..2
  // with weights 3/7, 3/7, 1/7 and output 1 inputs 1..3 with 1/7, 3/7, 3/7 (Resample.c).
  Image in = make(4, 1, {0, 0, 0, 64, 64, 64, 128, 128, 128, 255, 255, 255});
  Image out = resize_bilinear_antialias(in, 2, 1);
  EXPECT_EQ(out.rgb, (std::vector<uint8_t>{46, 46, 46, 173, 173, 173}));  // 45.71, 173.29
  // The same vertically (a 1×4 column).
  Image col = resize_bilinear_antialias(make(1, 4, in.rgb), 1, 2);
  EXPECT_EQ(col.rgb, out.rgb);
  // 2 -> 4 (upscale, plain bilinear with half-pixel centres): 0, 0.25, 0.75, 1 of the way.
  Image up = resize_bilinear_antialias(make(2, 1, {0, 0, 0, 200, 200, 200}), 4, 1);
  EXPECT_EQ(up.rgb, (std::vector<uint8_t>{0, 0, 0, 50, 50, 50, 150, 150, 150, 200, 200, 200}));
}

TEST(VisionPreprocess, ConstantImageStaysConstant) {
  for (auto [w, h, ow, oh] : {std::array{97, 41, 336, 336}, std::array{1000, 3, 7, 300}}) {
    Image in = make(w, h, std::vector<uint8_t>(size_t(w) * h * 3, 77));
    Image out = resize_bilinear_antialias(in, ow, oh);
    EXPECT_EQ(out.rgb, std::vector<uint8_t>(size_t(ow) * oh * 3, 77));
  }
}

float norm(int v) {
  return (v / 255.0f - 0.5f) / 0.5f;
}

TEST(VisionPreprocess, TilesAreRowMajorPaddedAndNormalised) {
  // 640×480 fits a 2×2 canvas without resizing: tiles 0..3 row-major, black (−1) padding right
  // of x = 640 and below y = 480, then the global tile.
  const int w = 640, h = 480;
  Image img = make(w, h, std::vector<uint8_t>(size_t(w) * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[(size_t(y) * w + x) * 3];
      p[0] = uint8_t(x % 256);
      p[1] = uint8_t(y % 256);
      p[2] = uint8_t((x >= 336) + 2 * (y >= 336));  // which tile the pixel lands in
    }
  auto r = preprocess_image(img, kTile, {});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ImageTiles& t = *r;
  ASSERT_EQ(t.tile_rows, 2);
  ASSERT_EQ(t.tile_cols, 2);
  ASSERT_TRUE(t.has_global);
  ASSERT_EQ(t.n_tiles(), 5);
  ASSERT_EQ(t.pixels.size(), size_t(5) * 3 * kTile * kTile);
  auto at = [&](int tile, int c, int y, int x) {
    return t.pixels[((size_t(tile) * 3 + c) * kTile + y) * kTile + x];
  };
  for (int tile = 0; tile < 4; ++tile) {
    const int ty = tile / 2, tx = tile % 2;
    for (int y = 0; y < kTile; y += 7)
      for (int x = 0; x < kTile; x += 5) {
        const int gx = tx * kTile + x, gy = ty * kTile + y;
        const bool inside = gx < w && gy < h;
        ASSERT_EQ(at(tile, 0, y, x), inside ? norm(gx % 256) : -1.0f) << tile << " " << y;
        ASSERT_EQ(at(tile, 1, y, x), inside ? norm(gy % 256) : -1.0f);
        ASSERT_EQ(at(tile, 2, y, x), inside ? norm(tile) : -1.0f);
      }
  }
  EXPECT_EQ(norm(0), -1.0f);
  EXPECT_EQ(norm(255), 1.0f);
}

TEST(VisionPreprocess, SingleTileHasNoGlobal) {
  Image img = make(200, 100, std::vector<uint8_t>(200 * 100 * 3, 255));
  auto r = preprocess_image(img, kTile, {});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->n_tiles(), 1);
  EXPECT_FALSE(r->has_global);
  // 200×100 is enlarged to 336 wide, 168 high (aspect kept), the rest padded.
  EXPECT_EQ(r->pixels[size_t(167) * kTile + 335], 1.0f);
  EXPECT_EQ(r->pixels[size_t(168) * kTile + 0], -1.0f);
}

TEST(VisionPreprocess, GlobalTileIsTheSqueezedImage) {
  // 672×336: two tiles side by side, left half 0, right half 255. The global tile squeezes the
  // image to 336×336, so its left half is dark and its right half bright.
  Image img = make(672, 336, std::vector<uint8_t>(672 * 336 * 3));
  for (int y = 0; y < 336; ++y)
    for (int x = 336; x < 672; ++x)
      for (int c = 0; c < 3; ++c) img.rgb[(size_t(y) * 672 + x) * 3 + c] = 255;
  auto r = preprocess_image(img, kTile, {});
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->tile_rows, 1);
  ASSERT_EQ(r->tile_cols, 2);
  ASSERT_EQ(r->n_tiles(), 3);
  const size_t tile = size_t(3) * kTile * kTile;
  EXPECT_EQ(r->pixels[0], -1.0f);
  EXPECT_EQ(r->pixels[tile], 1.0f);
  const float* g = &r->pixels[2 * tile];
  EXPECT_EQ(g[100 * kTile + 10], -1.0f);
  EXPECT_EQ(g[100 * kTile + 300], 1.0f);
  EXPECT_GT(g[100 * kTile + 168], -1.0f);  // the blurred seam
  EXPECT_LT(g[100 * kTile + 167], 1.0f);
}

TEST(VisionPreprocess, BadArguments) {
  Image img = make(2, 2, std::vector<uint8_t>(12, 0));
  EXPECT_FALSE(preprocess_image(img, 0, {}).is_ok());
  VisionPreprocessOptions opt;
  opt.max_tiles = 0;
  EXPECT_FALSE(preprocess_image(img, kTile, opt).is_ok());
  Image wrong = make(2, 2, std::vector<uint8_t>(11, 0));
  auto r = preprocess_image(wrong, kTile, {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "preprocess_image: image of 2x2 pixels with 11 bytes of RGB");
}

}  // namespace
}  // namespace herd
