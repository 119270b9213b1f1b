// EXIF orientation (tag 0x0112): cameras store pixels as the sensor saw them and say in the
// EXIF how to turn them. Hugging Face's load_image applies it (PIL.ImageOps.exif_transpose) and
// users expect it (spec §5.1.1); Meta's preprocessing does not mention it. herd applies it.
#pragma once

#include <cstdint>
#include <span>

#include "herd/io/image.h"

namespace herd {

// The orientation (1..8) in a JPEG's APP1 Exif segment or a PNG's eXIf chunk; 1 when there is
// none or it cannot be read (malformed EXIF is ignored, as Pillow does).
int exif_orientation(std::span<const uint8_t> bytes);

// The image turned upright: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise,
// 7 transverse, 8 rotate 90° counter-clockwise (Pillow's exif_transpose table).
Image apply_exif_orientation(const Image& img, int orientation);

}  // namespace herd
