// Images into a prompt (spec §5.8, §5.9): encode the images' tiles and pair each <|patch|>
// position of the prompt with its embedding row. The layout and the check that a prompt holds
// exactly the images' layouts are tokenizer/image_tokens.h's (locate_image_layouts).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "herd/base/status.h"
#include "herd/io/image.h"
#include "herd/model/vision.h"
#include "herd/model/vision_preprocess.h"
#include "herd/tokenizer/image_tokens.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {

// Prompt tokens of one image in the layout of spec §5.8, <|image_start|> … <|image_end|>
// included: 147 for one tile, 727 for 2×2. (Here, not in model/vision_preprocess.h: the layout
// is the tokenizer's, and model/ does not include tokenizer/.)
int64_t image_token_count(const ImageTiles& t, int patch_size, double pixel_shuffle_ratio);

// The shape of a preprocessed image's layout for this encoder.
ImageTokenShape image_token_shape(const ImageTiles& tiles, const VisionEncoder& enc);

// Embedding rows for a request: `embeddings` [positions.size(), text hidden], row i at prompt
// index positions[i] (runtime/scheduler.h Request::embeddings / embedding_positions).
struct SplicedImages {
  std::vector<float> embeddings;
  std::vector<int64_t> positions;
};

// Encodes the images (all tiles of all images, in order, global tile last in each) and matches
// them to the <|patch|> tokens of `tokens`, which must hold their layouts in order; a layout that
// does not fit its image's tile grid, or a count that differs, is an error.
Result<SplicedImages> splice_images(VisionEncoder& enc, const Tokenizer& tok,
                                    std::span<const int32_t> tokens,
                                    std::span<const ImageTiles> images);

// Decodes and preprocesses an image file's bytes for this encoder; `what` names it in errors.
Result<ImageTiles> image_tiles_from_bytes(std::span<const uint8_t> bytes, const VisionEncoder& enc,
                                          const ImageLimits& limits,
                                          const VisionPreprocessOptions& opt,
                                          std::string_view what);

}  // namespace herd
