// Images into a prompt (spec §5.8, §5.9): check that a token sequence holds exactly the token
// layouts of the given images, in order, encode the images' tiles, and pair each <|patch|>
// position with its embedding row. The layout itself is tokenizer/image_tokens.h's.
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

// Checks that `tokens` contain one layout per image shape, in order, each starting at an
// <|image_start|>, and no <|image_start|> or <|patch|> outside them. Returns the positions of
// all <|patch|> tokens in order: Σ n_tiles · tokens_per_tile of them, the rows the images'
// embeddings replace, image by image, tile by tile (global tile last). Errors name the image,
// its tile grid and the first token that differs from the layout.
Result<std::vector<int64_t>> match_image_layouts(std::span<const int32_t> tokens,
                                                 const Tokenizer& tok,
                                                 std::span<const ImageTokenShape> images);

// The shape of a preprocessed image's layout for this encoder.
ImageTokenShape image_token_shape(const ImageTiles& tiles, const VisionEncoder& enc);

// Embedding rows for a request: `embeddings` [positions.size(), text hidden], row i at prompt
// index positions[i] (runtime/scheduler.h Request::embeddings / embedding_positions).
struct SplicedImages {
  std::vector<float> embeddings;
  std::vector<int64_t> positions;
};

// Encodes the images (all tiles of all images, in order) and matches them to the <|patch|>
// tokens of `tokens`, which must already hold their layouts (match_image_layouts).
Result<SplicedImages> splice_images(VisionEncoder& enc, const Tokenizer& tok,
                                    std::span<const int32_t> tokens,
                                    std::span<const ImageTiles> images);

// Decodes and preprocesses an image file's bytes for this encoder; `what` names it in errors.
Result<ImageTiles> image_tiles_from_bytes(std::span<const uint8_t> bytes, const VisionEncoder& enc,
                                          const ImageLimits& limits,
                                          const VisionPreprocessOptions& opt,
                                          std::string_view what);

}  // namespace herd
