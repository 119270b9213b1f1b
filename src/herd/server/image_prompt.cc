#include "herd/server/image_prompt.h"

namespace herd::server {

Result<ImagePrompt> chat_prompt_with_images(const Tokenizer& tok, const RenderedChat& chat,
                                            std::span<const ImageTiles> images,
                                            const ImageSettings& settings) {
  std::vector<ImageTokenShape> shapes;
  for (const ImageTiles& t : images)
    shapes.push_back({t.tile_rows, t.tile_cols,
                      int(image_tokens_per_tile(t.tile_size, settings.patch_size,
                                                settings.pixel_shuffle_ratio))});
  auto p = expand_image_placeholders(tok, chat.ids, chat.image_positions, shapes);
  if (!p) return p.status().with_context("messages");
  return p;
}

}  // namespace herd::server
