// A view of a stored 2-D weight matrix, whatever its element type. Kernels dispatch on dtype.
#pragma once

#include <cstdint>

#include "herd/base/dtype.h"

namespace herd {

struct WeightRef {
  DType dtype = DType::F32;
  const void* data = nullptr;  // row-major [rows, cols]
  int64_t rows = 0;
  int64_t cols = 0;
  // FP8 checkpoints: one scale per row (per output channel), f32; nullptr otherwise.
  const float* row_scale = nullptr;
  // Packed formats Q8G / Q4G (quant/formats.h): data holds rows x packed_row_bytes(cols) bytes,
  // group_scale holds rows x quant_groups(cols) f32 scales. Q8GI / Q4GI keep theirs inside.
  const float* group_scale = nullptr;

  // Sub-matrix of rows [r0, r0+n) (e.g. one expert of a stacked [E*rows, cols] tensor).
  WeightRef row_slice(int64_t r0, int64_t n) const;
};

// Converts row `r` to f32 (embedding lookup, norm gains, tests).
void dequantize_row(const WeightRef& w, int64_t r, float* out);
// Converts element (r, c) to f32 (scalar references).
float weight_at(const WeightRef& w, int64_t r, int64_t c);

}  // namespace herd
