// image_token_count (declared in runtime/vision_splice.h) on its own: the request validator and
// the image fuzz targets need it without the vision encoder the rest of vision_splice.cc uses.
#include "herd/runtime/vision_splice.h"

namespace herd {

int64_t image_token_count(const ImageTiles& t, int patch_size, double pixel_shuffle_ratio) {
  return image_layout_token_count(
      {t.tile_rows, t.tile_cols,
       int(image_tokens_per_tile(t.tile_size, patch_size, pixel_shuffle_ratio))});
}

}  // namespace herd
