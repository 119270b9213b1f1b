// A chat request's prompt with its images: the rendered chat's <|image|> placeholders replaced
// by each image's token layout (spec §5.8), so usage.prompt_tokens counts every image token and
// the engine knows where each tile's vision embeddings go (spec §5.9).
#pragma once

#include <span>

#include "herd/server/api_request.h"
#include "herd/tokenizer/chat_format.h"
#include "herd/tokenizer/image_tokens.h"

namespace herd::server {

Result<ImagePrompt> chat_prompt_with_images(const Tokenizer& tok, const RenderedChat& chat,
                                            std::span<const ImageTiles> images,
                                            const ImageSettings& settings);

}  // namespace herd::server
