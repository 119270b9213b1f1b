// herd's packed weight formats (in memory and in pre-quantized files; README "Weight formats").
// Both are symmetric with one f32 scale per group of kQuantGroup consecutive input elements of a
// row (nn.Linear layout [rows = out, cols = in]); a row's last group is padded with zeros.
//
//  Q8G  int8, scale = max|w| / 127, q = round(w / scale) in [-127, 127].
//       Stored biased as u8 = q + 128 (so VNNI's u8 x s8 product takes weights as the unsigned
//       side; the bias is removed with the activations' group sums). Row = n_groups * 128 bytes.
//  Q4G  Meta's int4 recipe (spec §2.3): scale = max|w| / 8, q = clamp(round(w / scale), -8, 7).
//       Stored biased as a nibble u4 = q + 8. Within a group of 128, byte j (0..63) holds
//       element j in its low nibble and element j + 64 in its high nibble (one AND / one shift
//       unpacks 64 consecutive elements). Row = n_groups * 64 bytes.
// Scales are a separate array [rows, n_groups] of f32 (WeightRef::group_scale).
#pragma once

#include <cstdint>

#include "herd/base/dtype.h"

namespace herd {

inline constexpr int64_t kQuantGroup = 128;

inline int64_t quant_groups(int64_t cols) { return (cols + kQuantGroup - 1) / kQuantGroup; }
// Bytes of packed values per row (scales not included); 0 for non-packed dtypes.
int64_t packed_row_bytes(DType t, int64_t cols);
inline bool is_packed(DType t) { return t == DType::Q8G || t == DType::Q4G; }

// Scalar reference quantizers: one row of `cols` floats -> packed values + n_groups scales.
void quantize_row_q8g(const float* x, int64_t cols, uint8_t* q, float* scales);
void quantize_row_q4g(const float* x, int64_t cols, uint8_t* q, float* scales);
void dequantize_row_q8g(const uint8_t* q, const float* scales, int64_t cols, float* out);
void dequantize_row_q4g(const uint8_t* q, const float* scales, int64_t cols, float* out);

}  // namespace herd
