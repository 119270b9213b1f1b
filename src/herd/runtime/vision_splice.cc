#include "herd/runtime/vision_splice.h"

namespace herd {

ImageTokenShape image_token_shape(const ImageTiles& tiles, const VisionEncoder& enc) {
  return ImageTokenShape{tiles.tile_rows, tiles.tile_cols, int(enc.tokens_per_tile())};
}

Result<SplicedImages> splice_images(VisionEncoder& enc, const Tokenizer& tok,
                                    std::span<const int32_t> tokens,
                                    std::span<const ImageTiles> images) {
  std::vector<ImageTokenShape> shapes;
  int64_t n_tiles = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const ImageTiles& t = images[i];
    const int64_t want = int64_t(t.n_tiles()) * 3 * enc.tile_size() * enc.tile_size();
    if (t.tile_size != enc.tile_size() || int64_t(t.pixels.size()) != want)
      return make_error("image {}: {} tiles of {} px do not fit the encoder's {} px tiles", i + 1,
                        t.n_tiles(), t.tile_size, enc.tile_size());
    shapes.push_back(image_token_shape(t, enc));
    n_tiles += t.n_tiles();
  }
  SplicedImages out;
  HERD_ASSIGN_OR_RETURN(auto runs, locate_image_layouts(tok, tokens, shapes));
  for (const auto& image : runs)
    for (size_t start : image)
      for (int64_t k = 0; k < enc.tokens_per_tile(); ++k)
        out.positions.push_back(int64_t(start) + k);
  if (n_tiles == 0) return out;
  // Tiles of all images in order, global tile last in each (spec §5.9).
  std::vector<float> pixels;
  for (const ImageTiles& t : images) pixels.insert(pixels.end(), t.pixels.begin(), t.pixels.end());
  out.embeddings.resize(size_t(n_tiles * enc.tokens_per_tile() * enc.output_dim()));
  HERD_TRY(enc.encode(pixels.data(), n_tiles, out.embeddings.data()));
  return out;
}

Result<ImageTiles> image_tiles_from_bytes(std::span<const uint8_t> bytes, const VisionEncoder& enc,
                                          const ImageLimits& limits,
                                          const VisionPreprocessOptions& opt,
                                          std::string_view what) {
  HERD_ASSIGN_OR_RETURN(Image img, decode_image(bytes, limits, what));
  auto tiles = preprocess_image(img, int(enc.tile_size()), opt);
  if (!tiles) return make_error("{}: {}", what, tiles.status().message());
  return tiles;
}

}  // namespace herd
