// Where image embeddings go in a prompt (spec §5.8, §5.9): the token layout of one image and the
// check that a given token sequence holds exactly the layouts of the given images, in order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "herd/base/status.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {

struct ImageTokenIds {
  int32_t image_start = -1, image = -1, patch = -1, tile_x_sep = -1, tile_y_sep = -1,
          image_end = -1;
};
// Looks the six tokens up by name; an error names the first one the tokenizer lacks.
Result<ImageTokenIds> image_token_ids(const Tokenizer& tok);

// Tile grid of one preprocessed image: rows × cols tiles, plus a global tile when rows·cols > 1.
struct TileGrid {
  int rows = 1, cols = 1;
  int n_tiles() const { return rows * cols + (rows * cols > 1 ? 1 : 0); }
};

// The §5.8 layout: <|image_start|>, per tile row the row's tiles (patches_per_tile <|patch|>
// each) separated by <|tile_x_separator|> and followed by <|tile_y_separator|>, then
// <|image|> + the global tile's patches, <|image_end|>; a single tile is <|image_start|>
// <|image|> patches <|image_end|>. 144·(h·w+1) + h·w + 3 tokens (147 for one tile).
std::vector<int32_t> image_layout_tokens(const ImageTokenIds& ids, const TileGrid& grid,
                                         int64_t patches_per_tile);

// Checks that `tokens` contain one layout per grid, in order, each starting at an
// <|image_start|>, and no <|patch|> or <|image_start|> outside them. Returns the positions of
// all <|patch|> tokens in order (Σ n_tiles · patches_per_tile of them): the rows the images'
// embeddings replace, image by image, tile by tile (global tile last).
Result<std::vector<int64_t>> match_image_layouts(std::span<const int32_t> tokens,
                                                 const ImageTokenIds& ids,
                                                 std::span<const TileGrid> grids,
                                                 int64_t patches_per_tile);

}  // namespace herd
