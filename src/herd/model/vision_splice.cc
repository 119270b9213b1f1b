#include "herd/model/vision_splice.h"

#include <fmt/format.h>

#include <algorithm>

namespace herd {

Result<std::vector<int64_t>> match_image_layouts(std::span<const int32_t> tokens,
                                                 const Tokenizer& tok,
                                                 std::span<const ImageTokenShape> images) {
  const auto start = tok.special_id("<|image_start|>"), patch = tok.special_id("<|patch|>");
  if (!start || !patch)
    return make_error("the tokenizer ({}) has no <|image_start|> / <|patch|> tokens for images",
                      tok.source());
  std::vector<int64_t> positions;
  size_t img = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == *patch) return make_error("token {}: <|patch|> outside an image layout", i);
    if (tokens[i] != *start) continue;
    if (img == images.size())
      return make_error("token {}: <|image_start|> of image {}, but {} image(s) given", i, img + 1,
                        images.size());
    const ImageTokenShape& s = images[img];
    std::vector<int32_t> want;
    HERD_TRY(append_image_layout(tok, s, want));
    for (size_t k = 0; k < want.size(); ++k) {
      if (i + k >= tokens.size() || tokens[i + k] != want[k])
        return make_error(
            "image {} ({}x{} tiles{}): its layout (spec §5.8) is {} tokens from position {}, "
            "but token {} is {} where id {} belongs",
            img + 1, s.tile_rows, s.tile_cols, s.tile_rows * s.tile_cols > 1 ? " + global" : "",
            want.size(), i, i + k,
            i + k < tokens.size() ? fmt::format("id {}", tokens[i + k]) : "past the end", want[k]);
      if (want[k] == *patch) positions.push_back(int64_t(i + k));
    }
    i += want.size() - 1;
    ++img;
  }
  if (img != images.size())
    return make_error("{} image(s) given but the tokens hold {} image layout(s)", images.size(),
                      img);
  return positions;
}

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
  HERD_ASSIGN_OR_RETURN(out.positions, match_image_layouts(tokens, tok, shapes));
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
