// Products of f32 activations with stored weights. Every output element is computed by the same
// code in the same order whatever the number of rows in the batch (batch invariance).
#pragma once

#include <cstdint>

#include "herd/base/thread_pool.h"
#include "herd/ops/weight.h"

namespace herd {

// Dot product of two f32 vectors in a fixed order that depends only on n (16 interleaved partial
// sums, then a fixed tree). Shared by matmul and attention so both are batch-invariant.
float dot_f32(const float* a, const float* b, int64_t n);

// nn.Linear layout, W is [out, in]:  y[t, o] = sum_i x[t, i] * W[o, i]
//   x: n rows with stride x_stride (>= W.cols); y: n rows with stride y_stride (>= W.rows).
void matmul(ThreadPool& pool, const float* x, int64_t n, int64_t x_stride, const WeightRef& w,
            float* y, int64_t y_stride);

// Input-major layout of the fused expert tensors, W is [in, out_total] and only the columns
// [col0, col0 + n_out) are used:  y[t, o] = sum_i x[t, i] * W[i, col0 + o]
void matmul_in_major(ThreadPool& pool, const float* x, int64_t n, int64_t x_stride,
                     const WeightRef& w, int64_t col0, int64_t n_out, float* y, int64_t y_stride);

// nn.Linear layout with matmul_in_major's arithmetic: y[t, o] = (((0 + x[t,0]·W[o,0]) +
// x[t,1]·W[o,1]) + ...), one running f32 sum in input order. For experts stored out-major (GGUF
// files), so the reference gives the same bits as for the input-major safetensors experts.
void matmul_sequential(ThreadPool& pool, const float* x, int64_t n, int64_t x_stride,
                       const WeightRef& w, float* y, int64_t y_stride);

}  // namespace herd
