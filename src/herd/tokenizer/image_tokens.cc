#include "herd/tokenizer/image_tokens.h"

#include <fmt/format.h>

#include <array>

namespace herd {
namespace {

constexpr std::string_view kImageStart = "<|image_start|>", kImageEnd = "<|image_end|>",
                           kTileX = "<|tile_x_separator|>", kTileY = "<|tile_y_separator|>",
                           kImage = "<|image|>", kPatch = "<|patch|>";

// Walks the layout once, calling special(name) for structural tokens and patches(tile) for each
// tile's run, so counting, text and ids cannot disagree.
template <typename Special, typename Patches>
void walk_layout(const ImageTokenShape& s, Special&& special, Patches&& patches) {
  special(kImageStart);
  int tile = 0;
  if (s.tile_rows * s.tile_cols > 1) {
    for (int r = 0; r < s.tile_rows; ++r) {
      for (int c = 0; c < s.tile_cols; ++c) {
        patches(tile++);
        if (c < s.tile_cols - 1) special(kTileX);
      }
      special(kTileY);
    }
  }
  special(kImage);
  patches(tile);  // the global tile, or the only tile
  special(kImageEnd);
}

}  // namespace

int64_t image_layout_token_count(const ImageTokenShape& shape) {
  int64_t n = 0;
  walk_layout(
      shape, [&](std::string_view) { ++n; }, [&](int) { n += shape.tokens_per_tile; });
  return n;
}

std::string image_layout_text(const ImageTokenShape& shape) {
  std::string s;
  walk_layout(
      shape, [&](std::string_view name) { s += name; },
      [&](int) {
        for (int i = 0; i < shape.tokens_per_tile; ++i) s += kPatch;
      });
  return s;
}

Status append_image_layout(const Tokenizer& tok, const ImageTokenShape& shape,
                           std::vector<int32_t>& out, std::vector<size_t>* patch_runs) {
  std::array<int32_t, 6> ids{};
  const std::array<std::string_view, 6> names = {kImageStart, kImageEnd, kTileX,
                                                 kTileY,      kImage,    kPatch};
  for (size_t i = 0; i < names.size(); ++i) {
    auto id = tok.special_id(names[i]);
    if (!id)
      return make_error("the tokenizer ({}) has no special token {} for images", tok.source(),
                        names[i]);
    ids[i] = *id;
  }
  walk_layout(
      shape,
      [&](std::string_view name) {
        for (size_t i = 0; i < names.size(); ++i)
          if (names[i] == name) out.push_back(ids[i]);
      },
      [&](int) {
        if (patch_runs) patch_runs->push_back(out.size());
        out.insert(out.end(), size_t(shape.tokens_per_tile), ids[5]);
      });
  return Status::ok();
}

Result<ImagePrompt> expand_image_placeholders(const Tokenizer& tok, std::span<const int32_t> ids,
                                              std::span<const size_t> placeholders,
                                              std::span<const ImageTokenShape> shapes) {
  if (placeholders.size() != shapes.size())
    return make_error("the prompt has {} image placeholders but {} images were given",
                      placeholders.size(), shapes.size());
  const auto image_id = tok.special_id(kImage);
  ImagePrompt p;
  size_t next = 0;  // first id not yet copied
  for (size_t i = 0; i < placeholders.size(); ++i) {
    const size_t at = placeholders[i];
    if (at < next || at >= ids.size() || !image_id || ids[at] != *image_id)
      return make_error("image {}: token {} of the prompt is not an <|image|> placeholder", i + 1,
                        at);
    p.ids.insert(p.ids.end(), ids.begin() + next, ids.begin() + at);
    HERD_TRY(append_image_layout(tok, shapes[i], p.ids, &p.patch_runs.emplace_back())
                 .with_context(fmt::format("image {}", i + 1)));
    next = at + 1;
  }
  p.ids.insert(p.ids.end(), ids.begin() + next, ids.end());
  return p;
}

Result<std::vector<std::vector<size_t>>> locate_image_layouts(
    const Tokenizer& tok, std::span<const int32_t> ids, std::span<const ImageTokenShape> shapes) {
  const auto start = tok.special_id(kImageStart), patch = tok.special_id(kPatch);
  if (!start || !patch)
    return make_error("the tokenizer ({}) has no {} / {} tokens", tok.source(), kImageStart,
                      kPatch);
  std::vector<size_t> starts;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == *start) starts.push_back(i);
  if (starts.size() != shapes.size())
    return make_error("the tokens hold {} images ({} tokens) but {} images were given",
                      starts.size(), kImageStart, shapes.size());
  std::vector<std::vector<size_t>> runs(shapes.size());
  std::vector<bool> in_layout(ids.size(), false);
  for (size_t k = 0; k < shapes.size(); ++k) {
    std::vector<int32_t> want;
    std::vector<size_t> local;
    HERD_TRY(append_image_layout(tok, shapes[k], want, &local));
    const size_t at = starts[k];
    for (size_t j = 0; j < want.size(); ++j) {
      if (at + j >= ids.size() || ids[at + j] != want[j]) {
        auto name = [&](int32_t id) {
          auto b = tok.token_bytes(id);
          return b ? std::string(*b) : fmt::format("id {}", id);
        };
        return make_error(
            "image {}: the tokens from {} are not the layout of its {}x{} tiles: token {} is {} "
            "where {} belongs",
            k + 1, at, shapes[k].tile_rows, shapes[k].tile_cols, at + j,
            at + j < ids.size() ? name(ids[at + j]) : std::string("past the end"), name(want[j]));
      }
      in_layout[at + j] = true;
    }
    for (size_t r : local) runs[k].push_back(at + r);
  }
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == *patch && !in_layout[i])
      return make_error("token {} is {} outside every image layout", i, kPatch);
  return runs;
}

}  // namespace herd
