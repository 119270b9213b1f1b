// The GGUF block formats (quant/gguf_blocks.h) and F16 in the gemm dispatch: activation
// preparation and one kernel per (ISA, type). Not part of the ops API.
#pragma once

#include "herd/ops/gemm_internal.h"

namespace herd::gemm_detail {

// Activations for a GGUF / F16 weight (weight_dtype, isa, n and k of `out` already set), in two
// steps so rows can be converted in parallel: size_gguf_acts sets kpad and sizes the buffers,
// prepare_gguf_rows fills rows [t0, t1). F16: out.f32 [n, kpad = k rounded up to 32]; block
// formats: out.q [n, kpad], out.blk_d and out.blk_sum (and blk_s for Q4_1 / Q5_1), kpad = k
// rounded up to 64 (32-blocks, so kernels read blocks in pairs) or 256.
void size_gguf_acts(int64_t n, int64_t k, PreparedActs& out);
void prepare_gguf_rows(const float* x, int64_t t0, int64_t t1, int64_t x_stride, int64_t k,
                       PreparedActs& out);

// The kernel for weights of type t on `isa`: the best one at or below it; never null for a type
// with is_gguf_kernel_type.
Kernel gguf_kernel(Isa isa, DType t);
// Per ISA (null where that ISA has none for t).
Kernel gguf_scalar_kernel(DType t);
Kernel gguf_avx2_kernel(DType t);  // AVX2 + FMA + F16C (gemm_gguf_avx2.cc)
Kernel gguf_vnni_kernel(DType t);  // AVX-512 BW/VL/DQ + VNNI (gemm_gguf_vnni.cc)
// quantize_gguf_act_row (quant/gguf_blocks.h) bit for bit, on the same machines.
void quantize_gguf_act_row_avx2(const float* x, int64_t k, int64_t kpad, int64_t block, int8_t* q,
                                float* d, int16_t* sums, float* s);
void quantize_gguf_act_row_avx512(const float* x, int64_t k, int64_t kpad, int64_t block, int8_t* q,
                                  float* d, int16_t* sums, float* s);

}  // namespace herd::gemm_detail
