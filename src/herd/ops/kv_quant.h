// Conversion of one token's K or V row between f32 and the KV cache's stored type (KvType,
// ops/kv_view.h). The cache stores with kv_store_row; the reference attention reads with
// kv_load_row, and the fast kernels (ops/attention_tiled.cc) decode the same values in registers.
#pragma once

#include <cstdint>

#include "herd/ops/kv_view.h"

namespace herd {

// x: n_kv_heads*head_dim floats -> dst (that many elements of type t). Per type:
//   f32   copied;  bf16  round to nearest even (NaN stays NaN);
//   int8  per head: scale = max|x|/127, code = round-to-nearest(x/scale) in [-127, 127];
//   fp8   per head: scale = max|x|/448, code = e4m3 (OCP "fn") of x/scale, nearest-even,
//         saturating at 448 (quant/fp8.h).
// Scaled types write scales[n_kv_heads] (0 for an all-zero head, whose codes are 0); `scales`
// may be null for the others. Non-finite input never crashes: NaN is ignored by the max and
// stored as code 0 (int8) or NaN (fp8); an infinite max gives an infinite scale.
// Element i goes to element i * stride of dst: 1 for a V row, kKvKeyBlock for a K row (whose
// key block keeps rows transposed, ops/kv_view.h).
void kv_store_row(KvType t, const float* x, int64_t n_kv_heads, int64_t head_dim, void* dst,
                  float* scales, int64_t stride = 1);

// The inverse: out[h*head_dim + d] = code * scales[h] (scaled types) or the stored value, read
// from element (h*head_dim + d) * stride of src. To read one head, pass its element offset into
// src (h * head_dim * stride elements), scales + h and n_kv_heads = 1.
void kv_load_row(KvType t, const void* src, const float* scales, int64_t n_kv_heads,
                 int64_t head_dim, float* out, int64_t stride = 1);

}  // namespace herd
