// Image decoding for the vision path (spec §5.1 step 1): JPEG, PNG, GIF (first frame) and BMP
// bytes -> RGB8, alpha composited over white as Meta's preprocessing does (spec §5.1.1).
//
// The bytes come from clients (base64 data URLs) and files, so decoding is bounded: the size in
// the header is checked against ImageLimits before any pixel memory exists, and every
// allocation the decoder makes is charged to a budget derived from that size, so a small image
// whose compressed data expands without end (a zlib bomb) fails instead of eating memory.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "herd/base/status.h"

namespace herd {

struct ImageLimits {
  int64_t max_pixels = 64LL << 20;  // width · height
  int max_side = 16384;             // width and height each
};

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // RGB8, row-major, [height][width][3]; alpha composited over white
};

// Decodes one image, turned upright by its EXIF orientation (io/exif_orientation.h). `what` names
// it in errors ("image 2: truncated PNG (...)"). Errors: not one
// of the four formats, a header over the limits, truncated or corrupt data.
Result<Image> decode_image(std::span<const uint8_t> bytes, const ImageLimits& limits,
                           std::string_view what);

// The format the leading bytes announce ("PNG", "JPEG", "GIF", "BMP"), or "" when none.
std::string_view image_format_name(std::span<const uint8_t> bytes);

// round((c·a + 255·(255 − a)) / 255): Pillow's paste of an RGBA image on a white RGB background
// with the alpha as mask (its DIV255 rounds exactly), which Meta's convert-to-RGB does.
inline uint8_t composite_over_white(uint8_t c, uint8_t a) {
  const uint32_t v = uint32_t(c) * a + 255u * (255u - a) + 128u;
  return uint8_t((v + (v >> 8)) >> 8);
}

}  // namespace herd
