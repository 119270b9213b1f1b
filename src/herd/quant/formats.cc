#include "herd/quant/formats.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace herd {

int64_t packed_row_bytes(DType t, int64_t cols) {
  return is_blocked(t) ? format_row_bytes(t, cols) : 0;
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

namespace {
// Byte offset of (r, c)'s code within the matrix, and whether it is the high nibble (Q4GI).
int64_t il_offset(DType t, int64_t cols, int64_t r, int64_t c, bool* high) {
  const int64_t g = c / kQuantGroup, i = c % kQuantGroup;
  const int64_t rec = ((r / 16) * quant_groups(cols) + g) * il_record_bytes(t);
  if (t == DType::Q8GI) {
    *high = false;
    return rec + (i / 4) * 64 + (r % 16) * 4 + i % 4;
  }
  *high = i % 8 >= 4;
  return rec + (i / 8) * 64 + (r % 16) * 4 + i % 4;
}
float* il_scale_ptr(uint8_t* data, DType t, int64_t cols, int64_t r, int64_t g) {
  const int64_t rec = ((r / 16) * quant_groups(cols) + g) * il_record_bytes(t);
  return reinterpret_cast<float*>(data + rec + il_code_bytes(t)) + r % 16;
}
}  // namespace

int il_code(const uint8_t* data, DType t, int64_t cols, int64_t r, int64_t c) {
  bool high;
  const uint8_t b = data[il_offset(t, cols, r, c, &high)];
  return t == DType::Q8GI ? b : high ? b >> 4 : b & 15;
}

float il_scale(const uint8_t* data, DType t, int64_t cols, int64_t r, int64_t g) {
  float s;
  std::memcpy(&s, il_scale_ptr(const_cast<uint8_t*>(data), t, cols, r, g), 4);
  return s;
}

void interleave_rows(const uint8_t* codes, const float* scales, int64_t n, int64_t cols, int64_t r0,
                     int64_t rows, DType t, uint8_t* dst) {
  // Row by row and group by group (load time: no per-element address arithmetic).
  const DType ct = code_format(t);
  const int64_t G = quant_groups(cols), rb = packed_row_bytes(ct, cols);
  const int64_t rec = il_record_bytes(t), cb = il_code_bytes(t);
  const int64_t end = std::min(il_rows(rows), il_rows(r0 + n));  // whole blocks touched
  for (int64_t r = r0; r < end; ++r) {
    const bool pad = r >= r0 + n;
    const uint8_t* row = codes + (r - r0) * rb;
    for (int64_t g = 0; g < G; ++g) {
      uint8_t* d = dst + ((r / 16) * G + g) * rec + (r % 16) * 4;
      if (ct == DType::Q8G) {
        const uint8_t* src = row + g * kQuantGroup;
        for (int64_t c = 0; c < 32; ++c) {
          if (pad)
            std::memset(d + c * 64, 128, 4);
          else
            std::memcpy(d + c * 64, src + 4 * c, 4);
        }
      } else {
        // The group's codes in element order as 32-bit words of 4 (source byte j holds elements
        // j and j + 64), then chunk c's 4 bytes = elements 8c..8c+3 | (8c+4..8c+7) << 4, i.e.
        // word 2c | word 2c+1 << 4 (codes ≤ 15: no bit crosses into the next byte). Word by
        // word, where a byte loop was a third of an int4 load's time.
        constexpr uint32_t kNib = 0x0F0F0F0Fu;
        uint32_t s[kQuantGroup / 8] = {}, w[kQuantGroup / 4];
        if (!pad) std::memcpy(s, row + g * (kQuantGroup / 2), sizeof s);  // padding: no source row
        for (int64_t i = 0; i < kQuantGroup / 8; ++i) {
          w[i] = pad ? 0x08080808u : s[i] & kNib;
          w[i + kQuantGroup / 8] = pad ? 0x08080808u : (s[i] >> 4) & kNib;
        }
        for (int64_t c = 0; c < 16; ++c) {
          const uint32_t v = w[2 * c] | (w[2 * c + 1] << 4);
          std::memcpy(d + c * 64, &v, 4);
        }
      }
      const float sc = pad ? 0.0f : scales[(r - r0) * G + g];
      std::memcpy(dst + ((r / 16) * G + g) * rec + cb + (r % 16) * 4, &sc, 4);
    }
  }
}

void deinterleave_row(const uint8_t* data, DType t, int64_t cols, int64_t r, uint8_t* codes,
                      float* scales) {
  const int64_t G = quant_groups(cols);
  for (int64_t c = 0; c < G * kQuantGroup; ++c) {
    const int v = il_code(data, t, cols, r, c);
    const int64_t g = c / kQuantGroup, i = c % kQuantGroup;
    if (t == DType::Q8GI)
      codes[c] = uint8_t(v);
    else if (i < kQuantGroup / 2)
      codes[g * 64 + i] = uint8_t((codes[g * 64 + i] & 0xF0) | v);
    else
      codes[g * 64 + i - 64] = uint8_t((codes[g * 64 + i - 64] & 15) | (v << 4));
  }
  for (int64_t g = 0; g < G; ++g) scales[g] = il_scale(data, t, cols, r, g);
}

void tile_rows_bf16(const uint16_t* src, int64_t n, int64_t cols, int64_t r0, uint16_t* dst) {
  // One K pair of the block's 16 rows at a time, so each 64-byte line of the tile is written
  // once and whole (a row at a time wrote 4 bytes into every line of the block, kp / 2 lines:
  // beyond L1 at Llama 4's widths, and 40% of loading a bf16 checkpoint).
  const int64_t kp = tiled_kpad(cols), full = cols / 2;  // pairs with both columns inside
  for (int64_t b = 0; b < n; b += kTileRows) {
    uint16_t* blk = dst + ((r0 + b) / kTileRows) * (kp / 2) * 32;
    const uint16_t* rows = src + b * cols;
    for (int64_t p = 0; p < full; ++p)
      for (int64_t i = 0; i < kTileRows; ++i)
        std::memcpy(blk + p * 32 + i * 2, rows + i * cols + 2 * p, 4);
    for (int64_t p = full; p < kp / 2; ++p)  // an odd last column, then the zero padding
      for (int64_t i = 0; i < kTileRows; ++i) {
        blk[p * 32 + i * 2] = 2 * p < cols ? rows[i * cols + 2 * p] : 0;
        blk[p * 32 + i * 2 + 1] = 0;
      }
  }
}

}  // namespace herd
