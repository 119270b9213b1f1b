// FP8 E4M3 ("fn") rows: fast encoding for per-channel quantization (synth --fp8, tests).
// Same results as base/dtype.h's f32_to_fp8_e4m3 (nearest, ties to even, saturating at 448).
#pragma once

#include <cstdint>

namespace herd {

inline constexpr float kFp8E4M3Max = 448.0f;

uint8_t fp8_e4m3_encode(float f);
// q[i] = fp8(x[i] / scale). scale = rowmax / 448 (spec §2.3 quantize_fp8_per_row).
void quantize_row_fp8(const float* x, int64_t n, float scale, uint8_t* q);

}  // namespace herd
