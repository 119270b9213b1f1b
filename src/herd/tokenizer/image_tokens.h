// The token layout of one image in the prompt (spec §5.8; META-CHAT `_encode_image`, HF-PROC
// `_prompt_split_image`): <|image_start|>, each canvas tile as a run of <|patch|> tokens with
// <|tile_x_separator|> between the tiles of a row and <|tile_y_separator|> after every row,
// then <|image|> and the global tile's run, then <|image_end|>. A single-tile image has no
// separators and its one tile follows <|image|>. The vision encoder's output replaces the
// <|patch|> tokens in order (spec §5.9); every other token keeps its text embedding.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "herd/base/status.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {

// The tile grid of one image (ImageTiles in model/vision_preprocess.h) and its patch-run length.
struct ImageTokenShape {
  int tile_rows = 1, tile_cols = 1;
  int tokens_per_tile = 144;
};

// Number of tokens of the layout: 144·(h·w+1) + h·w + 3 for h·w > 1, 147 for one tile.
int64_t image_layout_token_count(const ImageTokenShape& shape);

// The layout as text, as HF's processor writes it into the prompt in place of <|image|>.
std::string image_layout_text(const ImageTokenShape& shape);

// Appends the layout's ids to `out`. When `patch_runs` is given, appends for each tile (global
// last) the index in `out` of its first <|patch|> token. Fails if the tokenizer lacks one of
// the vision special tokens.
Status append_image_layout(const Tokenizer& tok, const ImageTokenShape& shape,
                           std::vector<int32_t>& out, std::vector<size_t>* patch_runs = nullptr);

// A prompt with each image's layout in place of its <|image|> placeholder.
struct ImagePrompt {
  std::vector<int32_t> ids;
  // Per image, the index in `ids` of the first <|patch|> of each tile (global tile last): where
  // the vision embeddings of that tile go (spec §5.9).
  std::vector<std::vector<size_t>> patch_runs;
};

// Replaces the <|image|> tokens at `placeholders` (RenderedChat::image_positions: one per image
// content part, in order) by the layouts of `shapes`, as HF's processor expands the template's
// placeholders. The counts must match and each position must hold <|image|>.
Result<ImagePrompt> expand_image_placeholders(const Tokenizer& tok, std::span<const int32_t> ids,
                                              std::span<const size_t> placeholders,
                                              std::span<const ImageTokenShape> shapes);

// The reverse, for prompts given as ids (herd logits --image): finds each image's layout, in
// order, and checks it token by token against `shapes`. Returns the <|patch|> runs as
// ImagePrompt::patch_runs does. Errors: a different number of <|image_start|> tokens than
// images, a layout that does not match its image's tile grid (naming the first wrong token), a
// <|patch|> outside every layout.
Result<std::vector<std::vector<size_t>>> locate_image_layouts(
    const Tokenizer& tok, std::span<const int32_t> ids, std::span<const ImageTokenShape> shapes);

}  // namespace herd
