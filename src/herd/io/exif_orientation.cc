#include "herd/io/exif_orientation.h"

#include <cstring>
#include <string_view>

namespace herd {
namespace {

// The orientation in a TIFF structure (the EXIF payload): IFD0's 0x0112 entry, a SHORT.
int tiff_orientation(std::span<const uint8_t> t) {
  if (t.size() < 8) return 1;
  const bool le = t[0] == 'I' && t[1] == 'I';
  if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
  auto u16 = [&](size_t at) -> uint32_t {
    return le ? t[at] | t[at + 1] << 8 : t[at] << 8 | t[at + 1];
  };
  auto u32 = [&](size_t at) -> uint32_t {
    return le ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2);
  };
  const uint32_t ifd = u32(4);
  if (ifd > t.size() - 2) return 1;
  const uint32_t n = u16(ifd);
  for (uint32_t i = 0; i < n; ++i) {
    const size_t e = size_t(ifd) + 2 + size_t(i) * 12;
    if (e + 12 > t.size()) return 1;
    if (u16(e) == 0x0112 && u16(e + 2) == 3) {
      const uint32_t v = u16(e + 8);
      return v >= 1 && v <= 8 ? int(v) : 1;
    }
  }
  return 1;
}

uint32_t be16(const uint8_t* p) {
  return uint32_t(p[0]) << 8 | p[1];
}
uint32_t be32(const uint8_t* p) {
  return be16(p) << 16 | be16(p + 2);
}

}  // namespace

int exif_orientation(std::span<const uint8_t> b) {
  const std::string_view format = image_format_name(b);
  if (format == "JPEG") {
    // Marker segments up to the first scan; APP1 starting "Exif\0\0" holds the TIFF data.
    size_t pos = 2;
    while (pos + 4 <= b.size() && b[pos] == 0xFF) {
      const uint8_t m = b[pos + 1];
      if (m == 0xDA || m == 0xD9) break;
      const size_t len = be16(&b[pos + 2]);
      if (len < 2 || pos + 2 + len > b.size()) break;
      if (m == 0xE1 && len >= 8 && std::memcmp(&b[pos + 4], "Exif\0\0", 6) == 0)
        return tiff_orientation(b.subspan(pos + 10, len - 8));
      pos += 2 + len;
    }
  } else if (format == "PNG") {
    for (size_t pos = 8; pos + 12 <= b.size();) {
      const size_t len = be32(&b[pos]);
      if (len > b.size() - pos - 12) break;
      if (std::memcmp(&b[pos + 4], "eXIf", 4) == 0)
        return tiff_orientation(b.subspan(pos + 8, len));
      pos += 12 + len;
    }
  }
  return 1;
}

Image apply_exif_orientation(const Image& img, int orientation) {
  if (orientation <= 1 || orientation > 8) return img;
  const int W = img.width, H = img.height;
  const bool swap = orientation >= 5;
  Image out;
  out.width = swap ? H : W;
  out.height = swap ? W : H;
  out.rgb.resize(img.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;  // the source pixel of output pixel (x, y)
      switch (orientation) {
        case 2:
          sx = W - 1 - x;
          break;
        case 3:
          sx = W - 1 - x, sy = H - 1 - y;
          break;
        case 4:
          sy = H - 1 - y;
          break;
        case 5:
          sx = y, sy = x;
          break;
        case 6:
          sx = y, sy = H - 1 - x;
          break;
        case 7:
          sx = W - 1 - y, sy = H - 1 - x;
          break;
        case 8:
          sx = W - 1 - y, sy = x;
          break;
      }
      std::memcpy(&out.rgb[(size_t(y) * out.width + x) * 3], &img.rgb[(size_t(sy) * W + sx) * 3],
                  3);
    }
  }
  return out;
}

}  // namespace herd
