#include "herd/io/image.h"

#include "herd/io/exif_orientation.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

// stb_image (Debian libstb-dev) compiled into this file only, static, with the four formats
// herd accepts. Its allocations go through the budgeted allocator below.
namespace herd::image_detail {
void* budget_malloc(size_t n);
void* budget_realloc(void* p, size_t n);
void budget_free(void* p);
}  // namespace herd::image_detail

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_GIF
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MALLOC(n) herd::image_detail::budget_malloc(n)
#define STBI_REALLOC(p, n) herd::image_detail::budget_realloc(p, n)
#define STBI_FREE(p) herd::image_detail::budget_free(p)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// stb 2.27's JPEG bit reader shifts by 32 on some corrupt streams (UB that x86 computes as a
// shift by 0: garbage bits, then its error path). The fuzzer's UBSan skips shifts inside stb only;
// memory errors and every other check stay on.
#ifdef __clang__
#pragma clang attribute push(__attribute__((no_sanitize("shift"))), apply_to = function)
#endif
#include <stb_image.h>
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC diagnostic pop

namespace herd {
namespace image_detail {
namespace {

// Bytes the decoder of this thread may hold at once; exceeding it makes the allocation fail,
// which stb reports as "outofmem". Each block carries its size in a 16-byte header (keeps
// malloc's alignment) because stb's free does not pass it.
struct Budget {
  size_t limit = 0, live = 0;
  bool exceeded = false;
};
thread_local Budget t_budget;
constexpr size_t kHeader = 16;

}  // namespace

void* budget_malloc(size_t n) {
  if (n > t_budget.limit || t_budget.live > t_budget.limit - n) {
    t_budget.exceeded = true;
    return nullptr;
  }
  // Zeroed: stb 2.27 can read structures a corrupt file never filled (a JPEG scan naming a
  // Huffman table no DHT defined); zeros make those reads end in its error paths.
  auto* block = static_cast<unsigned char*>(std::calloc(1, n + kHeader));
  if (!block) return nullptr;
  std::memcpy(block, &n, sizeof n);
  t_budget.live += n;
  return block + kHeader;
}

void budget_free(void* p) {
  if (!p) return;
  auto* block = static_cast<unsigned char*>(p) - kHeader;
  size_t n;
  std::memcpy(&n, block, sizeof n);
  t_budget.live -= n;
  std::free(block);
}

void* budget_realloc(void* p, size_t n) {
  if (!p) return budget_malloc(n);
  auto* block = static_cast<unsigned char*>(p) - kHeader;
  size_t old;
  std::memcpy(&old, block, sizeof old);
  if (n > old && (n - old > t_budget.limit || t_budget.live > t_budget.limit - (n - old))) {
    t_budget.exceeded = true;
    return nullptr;
  }
  auto* grown = static_cast<unsigned char*>(std::realloc(block, n + kHeader));
  if (!grown) return nullptr;
  std::memcpy(grown, &n, sizeof n);
  t_budget.live = t_budget.live - old + n;
  return grown + kHeader;
}

}  // namespace image_detail

namespace {

// Sets this thread's decode budget for one call and restores it after.
class ScopedBudget {
 public:
  explicit ScopedBudget(size_t limit) : saved_(image_detail::t_budget) {
    image_detail::t_budget = {limit, 0, false};
  }
  ~ScopedBudget() { image_detail::t_budget = saved_; }
  bool exceeded() const { return image_detail::t_budget.exceeded; }

 private:
  image_detail::Budget saved_;
};

// Enough for any honest image of w·h pixels in these formats: 16-bit RGBA PNG holds its
// inflated rows and 16-bit pixels at once (≈ 24 B/pixel, doubled buffers included), JPEG its
// component planes (padded to whole MCUs) and progressive coefficients; the compressed data is
// copied at most twice. Header structures (GIF's LZW table) fit in the constant.
size_t decode_budget(int64_t w, int64_t h, size_t input_bytes) {
  return size_t(32 * (w + 32) * (h + 32)) + 4 * input_bytes + (8u << 20);
}

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
uint32_t le32(const uint8_t* p) {
  return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0];
}

// stb decodes short data as if zeros followed (memory input), so truncation is detected here
// from the container structure, to name it instead of returning a half-black image.
// PNG: the chunk list must reach IEND inside the data.
bool png_truncated(std::span<const uint8_t> b) {
  size_t pos = 8;
  while (true) {
    if (b.size() - pos < 8) return true;
    const uint64_t len = be32(&b[pos]);
    if (std::memcmp(&b[pos + 4], "IEND", 4) == 0) return false;
    if (b.size() - pos - 8 < len + 4) return true;
    pos += 8 + len + 4;
  }
}

// JPEG: an end-of-image marker must follow the last start-of-scan (the last, because an EXIF
// thumbnail before the image has its own scan and end marker).
bool jpeg_truncated(std::span<const uint8_t> b) {
  static constexpr uint8_t kSos[2] = {0xFF, 0xDA}, kEoi[2] = {0xFF, 0xD9};
  auto sos = std::find_end(b.begin(), b.end(), kSos, kSos + 2);
  return sos == b.end() || std::search(sos, b.end(), kEoi, kEoi + 2) == b.end();
}

// stb_image 2.27 (Debian 12) trusts the code counts of a JPEG Huffman table: a table with more
// than 256 codes writes past its 256-entry arrays, and one with exactly 256 makes symbol 255
// look like "no fast code" and the slow lookup index before the table (both found by
// tests/fuzz/fuzz_image.cc; newer stb checks). Real tables hold at most 162 codes. Every DHT
// segment stb could reach is checked first, walking markers as stb does
// (garbage skipped to the next 0xFF, fill bytes, stuffed and restart markers in scan data) and
// treating bytes past the end as the zeros stb reads there.
bool jpeg_huffman_counts_ok(std::span<const uint8_t> b) {
  auto at = [&](size_t i) -> uint32_t { return i < b.size() ? b[i] : 0; };
  size_t pos = 2;  // after SOI
  while (true) {
    while (pos < b.size() && b[pos] != 0xFF) ++pos;
    while (pos < b.size() && b[pos] == 0xFF) ++pos;
    if (pos >= b.size()) return true;
    const uint8_t m = b[pos++];
    if (m == 0xD9) return true;                                        // EOI
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // no length
    const size_t len = at(pos) << 8 | at(pos + 1);
    if (m == 0xC4) {
      int64_t left = int64_t(len) - 2;
      for (size_t p = pos + 2; left > 0 && p < b.size();) {
        uint32_t n = 0;
        for (size_t i = 0; i < 16; ++i) n += at(p + 1 + i);
        if (n > 255) return false;
        p += 17 + n;
        left -= 17 + n;
      }
    }
    pos += len;  // scan data after SOS is searched for the next marker from here
  }
}

// Uncompressed BMP (BI_RGB / BI_BITFIELDS): the pixel rows must fit after the pixel offset.
bool bmp_truncated(std::span<const uint8_t> b) {
  if (b.size() < 30) return true;
  const uint32_t offset = le32(&b[10]), header = le32(&b[14]);
  if (header < 40 || b.size() < 34) return false;  // OS/2 headers: leave to stb
  const int64_t w = int32_t(le32(&b[18])), h = int32_t(le32(&b[22]));
  const int bpp = b[28] | b[29] << 8;
  const uint32_t compression = le32(&b[30]);
  if (compression != 0 && compression != 3) return false;
  const int64_t stride = ((std::abs(w) * bpp + 31) / 32) * 4;
  return int64_t(b.size()) < int64_t(offset) + stride * std::abs(h);
}

}  // namespace

std::string_view image_format_name(std::span<const uint8_t> b) {
  if (b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "JPEG";
  if (b.size() >= 6 &&
      (std::memcmp(b.data(), "GIF87a", 6) == 0 || std::memcmp(b.data(), "GIF89a", 6) == 0))
    return "GIF";
  if (b.size() >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
  return "";
}

Result<Image> decode_image(std::span<const uint8_t> bytes, const ImageLimits& limits,
                           std::string_view what) {
  const std::string_view format = image_format_name(bytes);
  if (format.empty())
    return make_error("{}: not a JPEG, PNG, GIF or BMP image ({} bytes{})", what, bytes.size(),
                      bytes.empty() ? "" : " starting with something else");
  if (bytes.size() > size_t(INT_MAX))
    return make_error("{}: {} bytes is more than the decoder takes", what, bytes.size());
  const int len = int(bytes.size());

  // stb parses headers (DHT included) even for stbi_info, so its known weaknesses are checked
  // first; then the size, before any pixel memory; then whether the data is all there.
  if (format == "JPEG" && !jpeg_huffman_counts_ok(bytes))
    return make_error("{}: corrupt JPEG (a Huffman table with more than 255 codes)", what);
  int64_t w = 0, h = 0;
  int channels = 0;
  if (format == "PNG" && bytes.size() >= 24 && std::memcmp(&bytes[12], "IHDR", 4) == 0) {
    // Read here: stb's header parser refuses sizes over 2^30 bytes with a reason that is lost.
    w = be32(&bytes[16]);
    h = be32(&bytes[20]);
  } else {
    ScopedBudget budget(8u << 20);  // header parsing only
    int iw = 0, ih = 0;
    if (!stbi_info_from_memory(bytes.data(), len, &iw, &ih, &channels))
      return make_error("{}: corrupt {} header ({})", what, format, stbi_failure_reason());
    w = iw;
    h = ih;
  }
  if (w <= 0 || h <= 0) return make_error("{}: {} header gives {}x{} pixels", what, format, w, h);
  if (w > limits.max_side || h > limits.max_side)
    return make_error("{}: {}x{} pixels, more than the limit of {} per side", what, w, h,
                      limits.max_side);
  if (w * h > limits.max_pixels)
    return make_error("{}: {}x{} = {} pixels, more than the limit of {}", what, w, h, w * h,
                      limits.max_pixels);
  if ((format == "PNG" && png_truncated(bytes)) || (format == "JPEG" && jpeg_truncated(bytes)) ||
      (format == "BMP" && bmp_truncated(bytes)))
    return make_error("{}: truncated {} ({} bytes)", what, format, bytes.size());

  ScopedBudget budget(decode_budget(w, h, bytes.size()));
  int dw = 0, dh = 0;
  stbi_uc* rgba = stbi_load_from_memory(bytes.data(), len, &dw, &dh, &channels, 4);
  if (!rgba) {
    if (budget.exceeded())
      return make_error(
          "{}: decoding the {}x{} {} needs more memory than that size allows "
          "(corrupt, or a decompression bomb)",
          what, w, h, format);
    return make_error("{}: corrupt {} ({})", what, format, stbi_failure_reason());
  }
  Image img;
  if (dw != w || dh != h) {
    stbi_image_free(rgba);
    return make_error("{}: {} header says {}x{} but the data decodes to {}x{}", what, format, w, h,
                      dw, dh);
  }
  img.width = w;
  img.height = h;
  const size_t n = size_t(w) * h;
  img.rgb.resize(n * 3);
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      img.rgb[i * 3 + c] = composite_over_white(rgba[i * 4 + c], rgba[i * 4 + 3]);
  stbi_image_free(rgba);
  if (const int orientation = exif_orientation(bytes); orientation > 1)
    return apply_exif_orientation(img, orientation);
  return img;
}

}  // namespace herd
