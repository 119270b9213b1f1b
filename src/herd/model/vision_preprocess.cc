#include "herd/model/vision_preprocess.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

namespace herd {
namespace {

// min(canvas_w/W, canvas_h/H) kept as a fraction so ties compare exactly (spec §5.1.1: the
// float32 arithmetic of HF's get_best_fit loses a pixel now and then).
struct Scale {
  int64_t num, den;
  bool operator<(const Scale& o) const { return num * o.den < o.num * den; }
  bool operator==(const Scale& o) const { return num * o.den == o.num * den; }
  bool at_least_one() const { return num >= den; }
};

// Candidate canvases (rows, cols) in the order of find_supported_resolutions (HF-IMG and
// META-PRE): tile counts from max_tiles down to 1, each count's factorisations by ascending
// rows, grouped by aspect ratio in first-seen order. The order decides ties of equal area.
std::vector<std::pair<int, int>> candidate_grids(int max_tiles) {
  std::vector<std::vector<std::pair<int, int>>> groups;  // one per aspect ratio, first seen first
  for (int n = max_tiles; n >= 1; --n) {
    for (int rows = 1; rows <= n; ++rows) {
      if (n % rows) continue;
      const int cols = n / rows;
      auto same_ratio = [&](const std::vector<std::pair<int, int>>& g) {
        return int64_t(g[0].first) * cols == int64_t(rows) * g[0].second;
      };
      auto it = std::find_if(groups.begin(), groups.end(), same_ratio);
      if (it == groups.end())
        groups.push_back({{rows, cols}});
      else
        it->push_back({rows, cols});
    }
  }
  std::vector<std::pair<int, int>> out;
  for (const auto& g : groups) out.insert(out.end(), g.begin(), g.end());
  return out;
}

// Pillow's precompute_coeffs (libImaging/Resample.c) for the bilinear filter, then
// normalize_coeffs_8bpc: per output index the first input index, the tap count and the taps.
constexpr int kPrecisionBits = 32 - 8 - 2;

struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // [out][ksize]
};

Taps pillow_bilinear_taps(int in_size, int out_size) {
  Taps t;
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the bilinear filter's support is 1
  t.ksize = int(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(size_t(out_size) * t.ksize, 0);
  std::vector<double> k(t.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    const int xmin = std::max(int(center - support + 0.5), 0);  // C truncation, as Pillow
    const int xmax = std::min(int(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double d = std::fabs((x + xmin - center + 0.5) * ss);
      k[x] = d < 1.0 ? 1.0 - d : 0.0;
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      t.weights[size_t(xx) * t.ksize + x] =
          int32_t(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    t.first[xx] = xmin;
    t.count[xx] = std::max(xmax, 0);
  }
  return t;
}

uint8_t clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return uint8_t(v >> kPrecisionBits);
}

// One pass of ImagingResampleHorizontal_8bpc / ImagingResampleVertical_8bpc: `stride` steps
// between neighbouring input samples along the resized axis.
Image resample_axis(const Image& in, int out_w, int out_h, bool horizontal) {
  const int in_len = horizontal ? in.width : in.height, out_len = horizontal ? out_w : out_h;
  const Taps t = pillow_bilinear_taps(in_len, out_len);
  Image out;
  out.width = out_w;
  out.height = out_h;
  out.rgb.resize(size_t(out_w) * out_h * 3);
  const size_t step = horizontal ? 3 : size_t(in.width) * 3;
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      const int o = horizontal ? x : y;
      const int32_t* k = &t.weights[size_t(o) * t.ksize];
      const size_t base = horizontal ? (size_t(y) * in.width + t.first[o]) * 3
                                     : (size_t(t.first[o]) * in.width + x) * 3;
      for (int c = 0; c < 3; ++c) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int i = 0; i < t.count[o]; ++i) ss += in.rgb[base + i * step + c] * k[i];
        out.rgb[(size_t(y) * out_w + x) * 3 + c] = clip8(ss);
      }
    }
  }
  return out;
}

// (x/255 − 0.5)/0.5 in float for each byte value (spec §5.1 step 7; mean = std = 0.5).
const std::array<float, 256>& normalise_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = (float(v) / 255.0f - 0.5f) / 0.5f;
    return t;
  }();
  return table;
}

// Copies the ts×ts window at (x0, y0) of `img` into one channel-major tile; outside the image
// (the padding) is black, i.e. −1.
void write_tile(const Image& img, int x0, int y0, int ts, float* tile) {
  const auto& norm = normalise_table();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < ts; ++y)
      for (int x = 0; x < ts; ++x) {
        const int sx = x0 + x, sy = y0 + y;
        const uint8_t v =
            sx < img.width && sy < img.height ? img.rgb[(size_t(sy) * img.width + sx) * 3 + c] : 0;
        tile[(size_t(c) * ts + y) * ts + x] = norm[v];
      }
}

}  // namespace

CanvasPlan plan_canvas(int width, int height, int tile_size, const VisionPreprocessOptions& opt) {
  const int64_t W = width, H = height, ts = tile_size;
  const auto grids = candidate_grids(opt.max_tiles);
  std::vector<Scale> scales;
  for (auto [rows, cols] : grids) {
    const Scale sw{cols * ts, W}, sh{rows * ts, H};
    scales.push_back(sh < sw ? sh : sw);
  }
  // Step 3: the smallest upscale if any canvas needs no shrinking (largest with
  // resize_to_max_canvas), else the mildest downscale.
  std::optional<Scale> chosen;
  for (const Scale& s : scales) {
    if (!s.at_least_one()) continue;
    if (!chosen || (opt.resize_to_max_canvas ? *chosen < s : s < *chosen)) chosen = s;
  }
  if (!chosen)
    for (const Scale& s : scales)
      if (!chosen || *chosen < s) chosen = s;
  size_t best = grids.size();
  for (size_t i = 0; i < grids.size(); ++i) {
    if (!(scales[i] == *chosen)) continue;
    const int64_t area = int64_t(grids[i].first) * grids[i].second;
    if (best == grids.size() || area < int64_t(grids[best].first) * grids[best].second) best = i;
  }
  CanvasPlan p;
  p.tile_rows = grids[best].first;
  p.tile_cols = grids[best].second;
  const int64_t ch = p.tile_rows * ts, cw = p.tile_cols * ts;
  // Step 4: cap enlargement at the tile size, then fit without distortion.
  const int64_t th = opt.resize_to_max_canvas ? ch : std::min(std::max(H, ts), ch);
  const int64_t tw = opt.resize_to_max_canvas ? cw : std::min(std::max(W, ts), cw);
  int64_t nw, nh;
  if (tw * H < th * W) {  // tw/W < th/H
    nw = tw;
    nh = std::min(H * tw / W, th);
  } else {
    nh = th;
    nw = std::min(W * th / H, tw);
  }
  p.resized_width = int(std::max<int64_t>(nw, 1));
  p.resized_height = int(std::max<int64_t>(nh, 1));
  return p;
}

Image resize_bilinear_antialias(const Image& img, int width, int height) {
  // Pillow resamples horizontally first and skips an axis whose size does not change.
  Image out = img;
  if (width != img.width) out = resample_axis(out, width, img.height, /*horizontal=*/true);
  if (height != img.height) out = resample_axis(out, width, height, /*horizontal=*/false);
  return out;
}

Result<ImageTiles> preprocess_image(const Image& img, int tile_size,
                                    const VisionPreprocessOptions& opt) {
  if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width) * img.height * 3)
    return make_error("preprocess_image: image of {}x{} pixels with {} bytes of RGB", img.width,
                      img.height, img.rgb.size());
  if (tile_size <= 0 || tile_size > 4096)
    return make_error("preprocess_image: tile size {} outside [1, 4096]", tile_size);
  if (opt.max_tiles < 1 || opt.max_tiles > 256)
    return make_error("preprocess_image: max_tiles {} outside [1, 256]", opt.max_tiles);
  const CanvasPlan plan = plan_canvas(img.width, img.height, tile_size, opt);
  ImageTiles t;
  t.tile_rows = plan.tile_rows;
  t.tile_cols = plan.tile_cols;
  t.has_global = plan.tile_rows * plan.tile_cols > 1;
  t.tile_size = tile_size;
  const size_t tile_floats = size_t(3) * tile_size * tile_size;
  t.pixels.resize(size_t(t.n_tiles()) * tile_floats);
  const Image resized = resize_bilinear_antialias(img, plan.resized_width, plan.resized_height);
  for (int r = 0; r < t.tile_rows; ++r)
    for (int c = 0; c < t.tile_cols; ++c)
      write_tile(resized, c * tile_size, r * tile_size, tile_size,
                 &t.pixels[size_t(r * t.tile_cols + c) * tile_floats]);
  if (t.has_global) {
    // Step 9: the original image squeezed to one tile, aspect ratio ignored.
    const Image global = resize_bilinear_antialias(img, tile_size, tile_size);
    write_tile(global, 0, 0, tile_size, &t.pixels[size_t(t.n_tiles() - 1) * tile_floats]);
  }
  return t;
}

int64_t image_tokens_per_tile(int tile_size, int patch_size, double pixel_shuffle_ratio) {
  if (patch_size <= 0 || !(pixel_shuffle_ratio > 0)) return 0;
  const int64_t side = tile_size / patch_size;
  const int64_t downsample = std::llround(1.0 / (pixel_shuffle_ratio * pixel_shuffle_ratio));
  return side * side / downsample;
}

}  // namespace herd
