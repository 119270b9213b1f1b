#include "herd/quant/formats.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace herd {

int64_t packed_row_bytes(DType t, int64_t cols) {
  if (t == DType::Q8G) return quant_groups(cols) * kQuantGroup;
  if (t == DType::Q4G) return quant_groups(cols) * kQuantGroup / 2;
  if (t == DType::BF16T) return tiled_kpad(cols) * 2;
  return 0;
}

namespace {
float group_amax(const float* x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}
}  // namespace

void quantize_row_q8g(const float* x, int64_t cols, uint8_t* q, float* scales) {
  for (int64_t g = 0; g < quant_groups(cols); ++g) {
    const int64_t b = g * kQuantGroup, n = std::min(kQuantGroup, cols - b);
    const float amax = group_amax(x + b, n);
    const float scale = amax / 127.0f;
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    scales[g] = scale;
    for (int64_t i = 0; i < kQuantGroup; ++i) {
      const int v = i < n ? int(std::nearbyint(x[b + i] * inv)) : 0;
      q[b + i] = uint8_t(std::clamp(v, -127, 127) + 128);
    }
  }
}

void quantize_row_q4g(const float* x, int64_t cols, uint8_t* q, float* scales) {
  for (int64_t g = 0; g < quant_groups(cols); ++g) {
    const int64_t b = g * kQuantGroup, n = std::min(kQuantGroup, cols - b);
    const float amax = group_amax(x + b, n);
    const float scale = amax / 8.0f;
    const float inv = amax > 0 ? 8.0f / amax : 0.0f;
    scales[g] = scale;
    uint8_t* out = q + g * (kQuantGroup / 2);
    for (int64_t j = 0; j < kQuantGroup / 2; ++j) {
      auto code = [&](int64_t i) {
        const int v = i < n ? int(std::nearbyint(x[b + i] * inv)) : 0;
        return uint8_t(std::clamp(v, -8, 7) + 8);
      };
      out[j] = uint8_t(code(j) | (code(j + kQuantGroup / 2) << 4));
    }
  }
}

void dequantize_row_q8g(const uint8_t* q, const float* scales, int64_t cols, float* out) {
  for (int64_t c = 0; c < cols; ++c) out[c] = float(int(q[c]) - 128) * scales[c / kQuantGroup];
}

void dequantize_row_q4g(const uint8_t* q, const float* scales, int64_t cols, float* out) {
  for (int64_t c = 0; c < cols; ++c) {
    const int64_t g = c / kQuantGroup, i = c % kQuantGroup;
    const uint8_t byte = q[g * (kQuantGroup / 2) + (i % (kQuantGroup / 2))];
    const int code = i < kQuantGroup / 2 ? (byte & 0xF) : (byte >> 4);
    out[c] = float(code - 8) * scales[g];
  }
}

void tile_rows_bf16(const uint16_t* src, int64_t n, int64_t cols, int64_t r0, uint16_t* dst) {
  const int64_t kp = tiled_kpad(cols);
  for (int64_t b = 0; b < n; b += kTileRows) {
    uint16_t* blk = dst + ((r0 + b) / kTileRows) * (kp / 2) * 32;
    for (int64_t i = 0; i < kTileRows; ++i) {
      const uint16_t* row = src + (b + i) * cols;
      for (int64_t c = 0; c < kp; ++c) blk[(c / 2) * 32 + i * 2 + c % 2] = c < cols ? row[c] : 0;
    }
  }
}

}  // namespace herd
