// The weight-format table, in the style of ggml's type_traits: one entry per DType with the
// facts every layer asks about a format, so that nothing above asks "which DType is this" in a
// switch of its own. The products themselves are the ops/ half of the table (ggml's
// type_traits_cpu): per dispatch target, a KernelSet keyed by the same DType
// (ops/gemm_internal.h), filled by the ISA files that implement the format.
//
// Adding a weight format (README "Adding a weight format"):
//   1. one entry in kFormats (format_table.cc): geometry, activation format, row functions;
//   2. one file of kernels in ops/ whose `..._kernels()` returns a KernelSet with the format's
//      entry, overlaid in gemm.cc's kernels_for for the targets it runs on.
#pragma once

#include <cstddef>
#include <cstdint>

#include "herd/base/dtype.h"

namespace herd {

// Every DType indexes the table (last enumerator + 1).
inline constexpr size_t kDTypeCount = size_t(DType::GGUF_Q8_K) + 1;

// What a format's stored bytes are (what loaders, savers and the converter must treat alike).
enum class FormatKind : uint8_t {
  kNone,         // not a weight format (integer and bool tensors)
  kFloat,        // F32, F16, BF16: viewable, exact in f32
  kScaledFloat,  // F8_E4M3: elements times an f32 scale per row (WeightRef::row_scale)
  kGroupQuant,   // Q8G / Q4G: codes row-major, f32 scales per block apart (WeightRef::group_scale)
  kTiled,        // BF16T: rows in 16-row tiles
  kInterleaved,  // Q8GI / Q4GI: 16 rows interleaved, scales inside
  kGgufBlock,    // ggml's block formats: scales inside each block
};

// The activations a format's dot product wants (ops/gemm.h PreparedActs).
enum class ActFormat : uint8_t {
  kNone,
  kF32,         // x as is
  kBF16,        // x rounded to bf16 (AMX: also packed into its tile layout)
  kBF16Rows16,  // x rounded to bf16, rows padded to a multiple of 16 (BF16T's tiles read them)
  kQ8Group,     // int8 per group of 128 with scale and sum (PreparedActs::q)
  kGguf,        // what ggml's vec_dot_type of the weight is: int8 blocks of 32 / 256 with their
                // scales and sums, or f32 for F16 (ops/gemm_gguf.h prepare_gguf_rows)
};

// A matrix's stored bytes as the row functions see them: WeightRef's fields (ops/weight.h),
// below ops/. `data` is the first row (for tiled / interleaved formats, of a 16-row block).
struct RowsView {
  const void* data = nullptr;
  int64_t cols = 0;
  const float* row_scale = nullptr;    // kScaledFloat: one per row
  const float* group_scale = nullptr;  // kGroupQuant: [rows, blocks]
};

struct FormatTraits {
  DType type = DType::F32;
  FormatKind kind = FormatKind::kNone;
  int64_t block = 1;        // elements per block along a row (1: plain elements)
  int64_t block_bytes = 0;  // bytes of one block of one row, so row bytes = blocks · block_bytes
  int64_t row_block = 1;    // rows stored together (16 for tiled / interleaved; slices align)
  ActFormat act = ActFormat::kNone;
  DType codes = DType::F32;  // the row-major format holding the same codes (itself, or Q8G/Q4G)
  // Row r of the matrix as f32 (dequantize-row); null for non-weight types.
  void (*to_float)(const RowsView& m, int64_t r, float* out) = nullptr;
  // Element (r, c) as f32 (scalar references, tests); null for non-weight types.
  float (*at)(const RowsView& m, int64_t r, int64_t c) = nullptr;
  // One row of f32 encoded in this format (quantize-row); `scales` gets the row's block scales
  // for kGroupQuant. Null where herd does not write rows of the format (it is written by a
  // repacker, e.g. BF16T / Q8GI, or only read).
  void (*from_float)(const float* x, int64_t cols, uint8_t* dst, float* scales) = nullptr;
};

// The entry of `t` (kind kNone for types that are not weight formats).
const FormatTraits& format_traits(DType t);

// The one bytes-per-row computation: whole blocks of block_bytes (scales of kGroupQuant apart).
inline int64_t format_row_bytes(const FormatTraits& f, int64_t cols) {
  return (cols + f.block - 1) / f.block * f.block_bytes;
}
inline int64_t format_row_bytes(DType t, int64_t cols) {
  return format_row_bytes(format_traits(t), cols);
}

}  // namespace herd
