// Llama 4 image preprocessing (spec §5.1; Hugging Face Llama4ImageProcessorFast and Meta's
// models/llama4/preprocess.py are the references): choose the tile canvas that fits the image
// best, resize without distortion (never enlarging beyond the image unless a side is below the
// tile size), pad right and bottom with black, normalise to [-1, 1], cut row-major tiles, and
// add a global tile (the whole image squeezed to one tile) when there is more than one tile.
#pragma once

#include <cstdint>
#include <vector>

#include "herd/base/status.h"
#include "herd/io/image.h"

namespace herd {

struct VisionPreprocessOptions {
  int max_tiles = 16;                 // processor config max_patches (spec §5.1 step 2)
  bool resize_to_max_canvas = false;  // processor default; true fills the canvas (spec §5.1 3–4)
};

struct ImageTiles {
  int tile_rows = 0, tile_cols = 0;  // the canvas in tiles (spec §5.1 step 3)
  bool has_global = false;           // a global tile follows the canvas tiles (rows·cols > 1)
  int tile_size = 0;                 // vision_config.image_size (336)
  int n_tiles() const { return tile_rows * tile_cols + (has_global ? 1 : 0); }
  // [n_tiles, 3, tile_size, tile_size], (x/255 − 0.5)/0.5; tile r·tile_cols + c, global last.
  std::vector<float> pixels;
};

// The canvas chosen for an image and the size it is resized to before padding.
struct CanvasPlan {
  int tile_rows = 0, tile_cols = 0;
  int resized_width = 0, resized_height = 0;
};

// Spec §5.1 steps 2–4 in exact (rational) arithmetic. Requires width, height, tile_size ≥ 1 and
// max_tiles ≥ 1.
CanvasPlan plan_canvas(int width, int height, int tile_size, const VisionPreprocessOptions& opt);

// Pillow's Image.resize(size, Image.BILINEAR) on an 8-bit RGB image: a triangle filter widened
// by the scale factor when shrinking (antialias), half-pixel centres, 22-bit fixed-point
// weights, horizontal pass rounded to 8 bits before the vertical one — bit for bit.
Image resize_bilinear_antialias(const Image& img, int width, int height);

// Everything above plus padding, normalisation and tiling. Errors name the bad argument.
Result<ImageTiles> preprocess_image(const Image& img, int tile_size,
                                    const VisionPreprocessOptions& opt);

// <|patch|> tokens per tile: (tile_size/patch_size)² patches shuffled down by 1/ratio² (144 for
// 336, 14 and 0.5; HF-PROC num_patches_per_chunk).
int64_t image_tokens_per_tile(int tile_size, int patch_size, double pixel_shuffle_ratio);

}  // namespace herd
