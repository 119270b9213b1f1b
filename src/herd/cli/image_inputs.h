// --image FILE for `herd logits` and `herd run`: the files decoded and preprocessed for the
// model's vision encoder, and their embeddings spliced into a request at the <|patch|> tokens.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "herd/model/vision.h"
#include "herd/runtime/engine.h"
#include "herd/runtime/vision_splice.h"

namespace herd::cli {

struct CliImages {
  std::unique_ptr<VisionEncoder> encoder;
  std::vector<ImageTiles> tiles;  // one per file, in order
};

// Opens the encoder of the engine's model (a clear error when it has none) and reads the files.
Result<CliImages> load_cli_images(Engine& e, const std::vector<std::string>& files);

// The §5.8 layout of image i (tokenizer/image_tokens.h).
Result<std::vector<int32_t>> image_layout(const Engine& e, const CliImages& images, size_t i);

// req.prompt must already hold the images' layouts in order: encodes the images and sets
// req.embeddings / req.embedding_positions.
Status attach_images(Engine& e, CliImages& images, Request& req);

}  // namespace herd::cli
