#include "herd/ops/weight.h"

#include "herd/quant/formats.h"
#include "herd/quant/gguf_blocks.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

namespace herd {

namespace {
// Element loads go through memcpy: mmap'd data need not be aligned for every reader.
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline float load_elem(DType t, const uint8_t* row, int64_t c) {
  switch (t) {
    case DType::BF16:
      return bf16_to_f32(load_u16(row + 2 * c));
    case DType::F16:
      return f16_to_f32(load_u16(row + 2 * c));
    case DType::F32: {
      float f;
      std::memcpy(&f, row + 4 * c, 4);
      return f;
    }
    case DType::F8_E4M3:
      return fp8_e4m3_to_f32(row[c]);
    default:
      assert(false && "weight dtype without element access (packed formats: see quant/)");
  }
  return 0.0f;
}
inline size_t row_bytes(const WeightRef& w) {
  if (is_gguf_block(w.dtype)) return size_t(gguf_row_bytes(w.dtype, w.cols));
  return is_blocked(w.dtype) ? size_t(packed_row_bytes(w.dtype, w.cols))
                             : size_t(w.cols) * dtype_size(w.dtype);
}
inline const uint8_t* row_ptr(const WeightRef& w, int64_t r) {
  return static_cast<const uint8_t*>(w.data) + size_t(r) * row_bytes(w);
}
}  // namespace

WeightRef WeightRef::row_slice(int64_t r0, int64_t n) const {
  assert(r0 >= 0 && n >= 0 && r0 + n <= rows);
  assert((dtype != DType::BF16T && !is_interleaved(dtype)) || r0 % kTileRows == 0);
  WeightRef w = *this;
  w.data = row_ptr(*this, r0);
  w.rows = n;
  if (row_scale) w.row_scale = row_scale + r0;
  if (group_scale) w.group_scale = group_scale + r0 * quant_groups(cols);
  return w;
}

void dequantize_row(const WeightRef& w, int64_t r, float* out) {
  if (w.dtype == DType::BF16T) {  // r within its 16-row block of the slice's tiles
    const uint16_t* d = static_cast<const uint16_t*>(w.data);
    for (int64_t c = 0; c < w.cols; ++c) out[c] = bf16_to_f32(d[tiled_index(r, c, w.cols)]);
    return;
  }
  if (is_interleaved(w.dtype)) {  // r within the slice (slices start on a 16-row block)
    const auto* d = static_cast<const uint8_t*>(w.data);
    const int bias = w.dtype == DType::Q8GI ? 128 : 8;
    for (int64_t c = 0; c < w.cols; ++c)
      out[c] = float(il_code(d, w.dtype, w.cols, r, c) - bias) *
               il_scale(d, w.dtype, w.cols, r, c / kQuantGroup);
    return;
  }
  const uint8_t* row = row_ptr(w, r);
  if (is_gguf_block(w.dtype)) return gguf_dequantize_row(w.dtype, row, w.cols, out);
  const float* gs = w.group_scale ? w.group_scale + r * quant_groups(w.cols) : nullptr;
  switch (w.dtype) {
    case DType::Q8G:
      dequantize_row_q8g(row, gs, w.cols, out);
      return;
    case DType::Q4G:
      dequantize_row_q4g(row, gs, w.cols, out);
      return;
    case DType::BF16:
      for (int64_t c = 0; c < w.cols; ++c) out[c] = bf16_to_f32(load_u16(row + 2 * c));
      return;
    case DType::F32:
      std::memcpy(out, row, size_t(w.cols) * 4);
      return;
    default:
      break;
  }
  const float s = (w.dtype == DType::F8_E4M3 && w.row_scale) ? w.row_scale[r] : 1.0f;
  for (int64_t c = 0; c < w.cols; ++c) out[c] = load_elem(w.dtype, row, c) * s;
}

float weight_at(const WeightRef& w, int64_t r, int64_t c) {
  if (w.dtype == DType::BF16T)
    return bf16_to_f32(static_cast<const uint16_t*>(w.data)[tiled_index(r, c, w.cols)]);
  if (is_interleaved(w.dtype)) {
    const auto* d = static_cast<const uint8_t*>(w.data);
    return float(il_code(d, w.dtype, w.cols, r, c) - (w.dtype == DType::Q8GI ? 128 : 8)) *
           il_scale(d, w.dtype, w.cols, r, c / kQuantGroup);
  }
  if (is_gguf_block(w.dtype)) {  // slow path for references and tests: the whole row
    std::vector<float> row(static_cast<size_t>(w.cols));
    dequantize_row(w, r, row.data());
    return row[size_t(c)];
  }
  if (is_packed(w.dtype)) {  // slow path for references and tests: dequantize the group
    const int64_t g = c / kQuantGroup;
    WeightRef one = w.row_slice(r, 1);
    one.cols = std::min(w.cols, (g + 1) * kQuantGroup);
    std::vector<float> row(static_cast<size_t>(one.cols));
    dequantize_row(one, 0, row.data());
    return row[size_t(c)];
  }
  float v = load_elem(w.dtype, row_ptr(w, r), c);
  if (w.dtype == DType::F8_E4M3 && w.row_scale) v *= w.row_scale[r];
  return v;
}

}  // namespace herd
