// Transposing bf16 matrices at load: the checkpoints store routed experts input-major ([H, 2I]
// and [I, H] per expert), the kernels read output rows.
#pragma once

#include <cstdint>

namespace herd {

// dst[j · dst_stride + i] = src[i · src_stride + j] for i < rows, j < cols: bf16 kept
// (transpose_bf16) or widened to f32, exactly (transpose_bf16_f32).
void transpose_bf16(const uint16_t* src, int64_t src_stride, int64_t rows, int64_t cols,
                    uint16_t* dst, int64_t dst_stride);
void transpose_bf16_f32(const uint16_t* src, int64_t src_stride, int64_t rows, int64_t cols,
                        float* dst, int64_t dst_stride);

}  // namespace herd
