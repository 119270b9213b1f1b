#include "herd/model/vision_splice.h"

#include <fmt/format.h>

namespace herd {

Result<ImageTokenIds> image_token_ids(const Tokenizer& tok) {
  ImageTokenIds ids;
  const std::pair<const char*, int32_t*> wants[] = {{"<|image_start|>", &ids.image_start},
                                                    {"<|image|>", &ids.image},
                                                    {"<|patch|>", &ids.patch},
                                                    {"<|tile_x_separator|>", &ids.tile_x_sep},
                                                    {"<|tile_y_separator|>", &ids.tile_y_sep},
                                                    {"<|image_end|>", &ids.image_end}};
  for (auto [name, dst] : wants) {
    auto id = tok.special_id(name);
    if (!id) return make_error("tokenizer: no special token {} (needed for images)", name);
    *dst = *id;
  }
  return ids;
}

std::vector<int32_t> image_layout_tokens(const ImageTokenIds& ids, const TileGrid& grid,
                                         int64_t patches_per_tile) {
  std::vector<int32_t> out{ids.image_start};
  auto patches = [&] { out.insert(out.end(), size_t(patches_per_tile), ids.patch); };
  if (grid.rows * grid.cols > 1) {
    for (int r = 0; r < grid.rows; ++r) {
      for (int c = 0; c < grid.cols; ++c) {
        patches();
        if (c + 1 < grid.cols) out.push_back(ids.tile_x_sep);
      }
      out.push_back(ids.tile_y_sep);
    }
  }
  out.push_back(ids.image);
  patches();
  out.push_back(ids.image_end);
  return out;
}

Result<std::vector<int64_t>> match_image_layouts(std::span<const int32_t> tokens,
                                                 const ImageTokenIds& ids,
                                                 std::span<const TileGrid> grids,
                                                 int64_t patches_per_tile) {
  std::vector<int64_t> positions;
  size_t img = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == ids.patch)
      return make_error(
          "token {}: <|patch|> outside an image layout (<|image_start|> … "
          "<|image_end|>)",
          i);
    if (tokens[i] != ids.image_start) continue;
    if (img == grids.size())
      return make_error("token {}: <|image_start|> of image {}, but only {} image(s) given", i,
                        img + 1, grids.size());
    const TileGrid& g = grids[img];
    const std::vector<int32_t> want = image_layout_tokens(ids, g, patches_per_tile);
    for (size_t k = 0; k < want.size(); ++k) {
      if (i + k >= tokens.size() || tokens[i + k] != want[k])
        return make_error(
            "image {} ({}×{} tiles{}): its token layout should be {} tokens from position {}, "
            "but token {} is {} where {} was expected (spec §5.8)",
            img + 1, g.rows, g.cols, g.n_tiles() > 1 ? " + global" : "", want.size(), i, i + k,
            i + k < tokens.size() ? fmt::format("id {}", tokens[i + k]) : "the end",
            fmt::format("id {}", want[k]));
      if (want[k] == ids.patch) positions.push_back(int64_t(i + k));
    }
    i += want.size() - 1;
    ++img;
  }
  if (img != grids.size())
    return make_error("{} image(s) given but the tokens hold {} image layout(s)", grids.size(),
                      img);
  return positions;
}

}  // namespace herd
