// libFuzzer target over image decoding (io/image.h: JPEG, PNG, GIF, BMP through stb_image and
// the budgeted allocator) and the Llama 4 preprocessing of whatever decodes
// (model/vision_preprocess.h), then the §5.8 token count. Built with clang by tests/fuzz/build.sh.
//
// The first byte picks the tile size and tile limit: small tiles keep most runs fast while the
// real 336 (one input in eight) is still reached; the rest are the image bytes. The pixel limit
// is lower than the default so one input costs milliseconds, not a second.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "herd/io/image.h"
#include "herd/model/vision_preprocess.h"
#include "herd/runtime/vision_splice.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr int kTileSizes[8] = {14, 28, 56, 112, 14, 28, 56, 336};
  const int tile = kTileSizes[data[0] & 7];
  herd::VisionPreprocessOptions opt;
  opt.max_tiles = 1 + (data[0] >> 3) % 16;
  herd::ImageLimits limits;
  limits.max_pixels = 1 << 18;
  limits.max_side = 4096;
  auto img = herd::decode_image(std::span(data + 1, size - 1), limits, "fuzz");
  if (!img) return 0;
  if (img->width <= 0 || img->height <= 0 ||
      img->rgb.size() != size_t(img->width) * img->height * 3)
    std::abort();  // decode_image must return a well-formed image or an error
  auto t = herd::preprocess_image(*img, tile, opt);
  if (!t || t->n_tiles() < 1 || t->n_tiles() > opt.max_tiles + 1 ||
      t->pixels.size() != size_t(t->n_tiles()) * 3 * tile * tile)
    std::abort();
  for (float v : t->pixels)
    if (!(v >= -1.0f && v <= 1.0f)) std::abort();
  if (herd::image_token_count(*t, tile >= 28 ? 14 : 7, 0.5) <= 0) std::abort();
  return 0;
}
