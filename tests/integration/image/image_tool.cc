// Test driver for tests/integration/image/preprocess_test.py: exposes decode_image and the
// Llama 4 preprocessing on files so Python can compare them with Pillow.
//
//   image_tool plan TILE MAX_TILES MAX_CANVAS      "W H" lines on stdin ->
//                                                  "W H rows cols resized_w resized_h tokens"
//   image_tool decode FILE OUT                     prints "W H", writes RGB8 to OUT
//   image_tool resize FILE W H OUT                 decode + Pillow-style resize, RGB8 to OUT
//   image_tool preprocess FILE TILE MAX_TILES OUT  prints "rows cols has_global n_tiles tokens",
//                                                  writes the float32 tiles to OUT
//   image_tool layout ROWS COLS PER_TILE           prints the §5.8 token layout text
// Errors go to stderr with exit status 1.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "herd/io/image.h"
#include "herd/model/vision_preprocess.h"
#include "herd/runtime/vision_splice.h"
#include "herd/tokenizer/image_tokens.h"

namespace {

using namespace herd;

int fail(const std::string& msg) {
  std::cerr << msg << "\n";
  return 1;
}

Result<Image> load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error("cannot open {}", path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return decode_image(bytes, {}, path);
}

void write(const std::string& path, const void* data, size_t n) {
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(data), std::streamsize(n));
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 4 && a[0] == "plan") {
    VisionPreprocessOptions opt;
    opt.max_tiles = std::stoi(a[2]);
    opt.resize_to_max_canvas = a[3] == "1";
    const int tile = std::stoi(a[1]);
    int w, h;
    while (std::cin >> w >> h) {
      const CanvasPlan p = plan_canvas(w, h, tile, opt);
      ImageTiles t;
      t.tile_rows = p.tile_rows;
      t.tile_cols = p.tile_cols;
      t.tile_size = tile;
      std::printf("%d %d %d %d %d %d %lld\n", w, h, p.tile_rows, p.tile_cols, p.resized_width,
                  p.resized_height, (long long)image_token_count(t, 14, 0.5));
    }
    return 0;
  }
  if (a.size() == 3 && a[0] == "decode") {
    auto img = load(a[1]);
    if (!img) return fail(img.status().message());
    std::printf("%d %d\n", img->width, img->height);
    write(a[2], img->rgb.data(), img->rgb.size());
    return 0;
  }
  if (a.size() == 5 && a[0] == "resize") {
    auto img = load(a[1]);
    if (!img) return fail(img.status().message());
    const Image out = resize_bilinear_antialias(*img, std::stoi(a[2]), std::stoi(a[3]));
    write(a[4], out.rgb.data(), out.rgb.size());
    return 0;
  }
  if (a.size() == 5 && a[0] == "preprocess") {
    auto img = load(a[1]);
    if (!img) return fail(img.status().message());
    VisionPreprocessOptions opt;
    opt.max_tiles = std::stoi(a[3]);
    auto t = preprocess_image(*img, std::stoi(a[2]), opt);
    if (!t) return fail(t.status().message());
    std::printf("%d %d %d %d %lld\n", t->tile_rows, t->tile_cols, int(t->has_global), t->n_tiles(),
                (long long)image_token_count(*t, 14, 0.5));
    write(a[4], t->pixels.data(), t->pixels.size() * sizeof(float));
    return 0;
  }
  if (a.size() == 4 && a[0] == "layout") {
    std::cout << image_layout_text({std::stoi(a[1]), std::stoi(a[2]), std::stoi(a[3])});
    return 0;
  }
  return fail("usage: see the comment at the top of tests/integration/image/image_tool.cc");
}
