// decode_image (io/image.h): the four formats against an independent encoder (stb_image_write)
// and hand-built bytes, alpha over white, and the errors for bad input: truncated, oversized
// headers, decompression bombs, non-images. Pixel-exact comparison with Pillow's decoder is in
// tests/integration/image/preprocess_test.py.
#include "herd/io/image.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "io/image_test_util.h"

namespace herd {
namespace {

using test::Bytes;

std::vector<uint8_t> pattern(int w, int h, int channels) {
  std::vector<uint8_t> px(size_t(w) * h * channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        px[(size_t(y) * w + x) * channels + c] = uint8_t((x * 7 + y * 13 + c * 71) % 256);
  return px;
}

Image decode_ok(const Bytes& b) {
  auto r = decode_image(b, {}, "image 1");
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? std::move(r).value() : Image{};
}

std::string decode_error(const Bytes& b, const ImageLimits& limits = {}) {
  auto r = decode_image(b, limits, "image 2");
  EXPECT_FALSE(r.is_ok());
  return r.is_ok() ? "" : r.status().message();
}

TEST(DecodeImage, PngRgbIsExact) {
  const auto px = pattern(37, 23, 3);
  const Image img = decode_ok(test::encode_png(37, 23, 3, px));
  EXPECT_EQ(img.width, 37);
  EXPECT_EQ(img.height, 23);
  EXPECT_EQ(img.rgb, px);
}

TEST(DecodeImage, GreyPngBecomesRgb) {
  const auto px = pattern(5, 4, 1);
  const Image img = decode_ok(test::encode_png(5, 4, 1, px));
  ASSERT_EQ(img.rgb.size(), 5u * 4 * 3);
  for (size_t i = 0; i < px.size(); ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(img.rgb[i * 3 + c], px[i]);
}

TEST(DecodeImage, RgbaIsCompositedOverWhite) {
  // (c, a) pairs: transparent black -> white; half-transparent; opaque keeps its colour.
  const std::vector<uint8_t> rgba = {0, 0, 0, 0, 200, 0, 100, 128, 10, 20, 30, 255, 0, 255, 0, 1};
  const Image img = decode_ok(test::encode_png(4, 1, 4, rgba));
  // round((c·a + 255·(255 − a)) / 255): 200,128 -> 227.39; 0,128 -> 127; 100,128 -> 177.39.
  const std::vector<uint8_t> want = {255, 255, 255, 227, 127, 177, 10, 20, 30, 254, 255, 254};
  EXPECT_EQ(img.rgb, want);
  for (int c = 0; c < 256; c += 5)
    for (int a = 0; a < 256; a += 3)
      ASSERT_EQ(composite_over_white(uint8_t(c), uint8_t(a)),
                int(std::lround((c * a + 255.0 * (255 - a)) / 255.0)))
          << c << " " << a;
}

TEST(DecodeImage, GreyAlphaPngOverWhite) {
  const Image img = decode_ok(test::encode_png(2, 1, 2, {0, 0, 100, 255}));
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{255, 255, 255, 100, 100, 100}));
}

TEST(DecodeImage, BmpIsExact) {
  const auto px = pattern(19, 7, 3);
  const Image img = decode_ok(test::encode_bmp(19, 7, 3, px));  // rows padded to 4 bytes
  EXPECT_EQ(img.width, 19);
  EXPECT_EQ(img.rgb, px);
}

TEST(DecodeImage, GifGivesTheFirstFrame) {
  const Image img = decode_ok(test::two_frame_gif());
  EXPECT_EQ(img.width, 2);
  EXPECT_EQ(img.height, 1);
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{255, 0, 0, 0, 0, 255}));
}

TEST(DecodeImage, JpegIsClose) {
  // A smooth image survives quality-95 JPEG within a few grey levels.
  std::vector<uint8_t> px(64 * 48 * 3);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) px[(y * 64 + x) * 3 + c] = uint8_t(x * 2 + y * 2 + c * 20);
  const Image img = decode_ok(test::encode_jpeg(64, 48, px, 95));
  ASSERT_EQ(img.rgb.size(), px.size());
  double sum = 0;
  for (size_t i = 0; i < px.size(); ++i) sum += std::abs(int(img.rgb[i]) - int(px[i]));
  EXPECT_LT(sum / px.size(), 2.0);
}

TEST(DecodeImage, TruncatedPng) {
  Bytes b = test::encode_png(64, 64, 3, pattern(64, 64, 3));
  b.resize(b.size() / 2);
  const std::string msg = decode_error(b);
  EXPECT_EQ(msg.rfind("image 2: truncated PNG", 0), 0u) << msg;
  // Cut inside the header: still named as PNG.
  b.resize(20);
  EXPECT_NE(decode_error(b).find("image 2: "), std::string::npos);
}

TEST(DecodeImage, TruncatedJpegAndBmp) {
  Bytes j = test::encode_jpeg(32, 32, pattern(32, 32, 3), 90);
  j.resize(j.size() - 10);
  EXPECT_EQ(decode_error(j).rfind("image 2: truncated JPEG", 0), 0u) << decode_error(j);
  // An APP1 segment holding a complete thumbnail JPEG (scan and end marker) before the image
  // does not hide the truncation of the image itself.
  const Bytes thumb = test::encode_jpeg(8, 8, pattern(8, 8, 3), 90);
  Bytes with_thumb = {
      0xFF, 0xD8, 0xFF, 0xE1, uint8_t((thumb.size() + 8) >> 8), uint8_t(thumb.size() + 8), 'E', 'x',
      'i',  'f',  0,    0};
  with_thumb.insert(with_thumb.end(), thumb.begin(), thumb.end());
  with_thumb.insert(with_thumb.end(), j.begin() + 2, j.end());
  EXPECT_EQ(decode_error(with_thumb).rfind("image 2: truncated JPEG", 0), 0u);
  Bytes b = test::encode_bmp(32, 32, 3, pattern(32, 32, 3));
  b.resize(b.size() - 1);
  EXPECT_EQ(decode_error(b).rfind("image 2: truncated BMP", 0), 0u) << decode_error(b);
}

TEST(DecodeImage, HugeHeaderIsRejectedBeforeDecoding) {
  // 20000×20000 claims 1.2 GB of RGB; the IDAT holds one row. Rejected from the header alone.
  const Bytes b = test::png_with_idat(20000, 20000, Bytes(60001, 0));
  EXPECT_EQ(decode_error(b), "image 2: 20000x20000 pixels, more than the limit of 16384 per side");
  ImageLimits small;
  small.max_pixels = 1000;
  EXPECT_EQ(decode_error(test::png_with_idat(40, 30, Bytes(30 * 121, 0)), small),
            "image 2: 40x30 = 1200 pixels, more than the limit of 1000");
  ImageLimits narrow;
  narrow.max_side = 39;
  EXPECT_NE(decode_error(test::png_with_idat(40, 3, Bytes(3 * 121, 0)), narrow)
                .find("more than the limit of 39 per side"),
            std::string::npos);
}

TEST(DecodeImage, DecompressionBombFails) {
  // 64×64 pixels need 12 KB, but the IDAT inflates to 24 MB: the decoder's allocations are
  // capped by what the header's size can need.
  const Bytes raw(24u << 20, 0);
  const Bytes b = test::png_with_idat(64, 64, raw);
  ASSERT_LT(b.size(), 1u << 20);
  const std::string msg = decode_error(b);
  EXPECT_NE(msg.find("image 2: decoding the 64x64 PNG needs more memory"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("decompression bomb"), std::string::npos) << msg;
  // The same construction with the right amount of data decodes.
  const Image ok = decode_ok(test::png_with_idat(64, 64, Bytes(64 * (64 * 3 + 1), 0)));
  EXPECT_EQ(ok.rgb, std::vector<uint8_t>(64 * 64 * 3, 0));
}

TEST(DecodeImage, NotAnImage) {
  const std::string text = "this is not an image";
  const std::string msg = decode_error(Bytes(text.begin(), text.end()));
  EXPECT_EQ(msg.rfind("image 2: not a JPEG, PNG, GIF or BMP image", 0), 0u) << msg;
  EXPECT_EQ(decode_error({}).rfind("image 2: not a JPEG, PNG, GIF or BMP image (0 bytes)", 0), 0u);
}

TEST(DecodeImage, OversizedJpegHuffmanTable) {
  // A DHT segment claiming 16·255 codes: stb 2.27 would write them past its 256-entry table.
  Bytes b = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00};
  b.insert(b.end(), 16, 0xFF);
  b.insert(b.end(), {0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0xFF, 0xD9});
  EXPECT_EQ(decode_error(b), "image 2: corrupt JPEG (a Huffman table with more than 255 codes)");
  // The same table with a legal count (one code of length 1) is not refused for it.
  b[7] = 1;
  std::fill(b.begin() + 8, b.begin() + 23, 0);
  EXPECT_EQ(decode_error(b).find("Huffman table with more"), std::string::npos);
}

TEST(DecodeImage, CorruptDataIsNamed) {
  // A complete PNG structure whose IDAT is not zlib data.
  Bytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  test::put_be32(ihdr, 4);
  test::put_be32(ihdr, 4);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  test::png_chunk(b, "IHDR", ihdr);
  test::png_chunk(b, "IDAT", Bytes(40, 0xAB));
  test::png_chunk(b, "IEND", {});
  const std::string msg = decode_error(b);
  EXPECT_EQ(msg.rfind("image 2: corrupt PNG (", 0), 0u) << msg;
}

}  // namespace
}  // namespace herd
