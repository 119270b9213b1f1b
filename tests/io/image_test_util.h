// Test helper: encodes images in memory with stb_image_write (libstb-dev), an encoder apart
// from the decoder under test, plus hand-built byte streams for what it cannot write.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace herd::test {

using Bytes = std::vector<uint8_t>;

inline void append_to(void* ctx, void* data, int size) {
  auto* out = static_cast<Bytes*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

// channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
inline Bytes encode_png(int w, int h, int channels, const std::vector<uint8_t>& px) {
  Bytes out;
  stbi_write_png_to_func(append_to, &out, w, h, channels, px.data(), w * channels);
  return out;
}
inline Bytes encode_bmp(int w, int h, int channels, const std::vector<uint8_t>& px) {
  Bytes out;
  stbi_write_bmp_to_func(append_to, &out, w, h, channels, px.data());
  return out;
}
inline Bytes encode_jpeg(int w, int h, const std::vector<uint8_t>& rgb, int quality) {
  Bytes out;
  stbi_write_jpg_to_func(append_to, &out, w, h, 3, rgb.data(), quality);
  return out;
}

inline void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

// A PNG chunk with its CRC (stbiw__crc32 is the encoder's own).
inline void png_chunk(Bytes& b, const char type[4], const Bytes& data) {
  put_be32(b, uint32_t(data.size()));
  Bytes typed(type, type + 4);
  typed.insert(typed.end(), data.begin(), data.end());
  b.insert(b.end(), typed.begin(), typed.end());
  put_be32(b, stbiw__crc32(typed.data(), int(typed.size())));
}

// An 8-bit RGB PNG of w×h whose IDAT holds `raw` (filter bytes included) deflated by stb's
// encoder: the header can claim any size and the data can inflate to anything.
inline Bytes png_with_idat(uint32_t w, uint32_t h, const Bytes& raw) {
  Bytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8 bits, RGB, deflate, filter 0, no interlace
  png_chunk(b, "IHDR", ihdr);
  int len = 0;
  unsigned char* z =
      stbi_zlib_compress(const_cast<unsigned char*>(raw.data()), int(raw.size()), &len, 8);
  png_chunk(b, "IDAT", Bytes(z, z + len));
  STBIW_FREE(z);
  png_chunk(b, "IEND", {});
  return b;
}

// GIF89a, 2×1 pixels, palette {red, blue}, two frames: [red, blue] then [blue, red]. Hand-made
// (stb cannot write GIF): LZW minimum code size 2, codes clear, a, b, end in 3 bits each.
inline Bytes two_frame_gif() {
  Bytes b = {'G', 'I', 'F', '8', '9', 'a', 2, 0, 1, 0, 0x80, 0, 0,  // screen 2×1, 2-colour table
             255, 0,   0,   0,   0,   255};                         // red, blue
  const Bytes frame1 = {0x2C, 0, 0, 0, 0, 2, 0, 1, 0, 0, 2, 2, 0x44, 0x0A, 0};  // 0, 1
  const Bytes frame2 = {0x2C, 0, 0, 0, 0, 2, 0, 1, 0, 0, 2, 2, 0x0C, 0x0A, 0};  // 1, 0
  b.insert(b.end(), frame1.begin(), frame1.end());
  b.insert(b.end(), frame2.begin(), frame2.end());
  b.push_back(0x3B);
  return b;
}

}  // namespace herd::test
