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
//
//  BF16T bf16 in 16-row tiles, for AMX machines: rows come in blocks of 16 (rows % 16 == 0), K is
//       padded with zeros to kp = a multiple of 32, and a block is [kp/2][16 rows][2]: K pair p
//       of the block's 16 rows is 64 contiguous bytes. That is the tile unit's B operand as it
//       is, and one vector per K pair for the AVX-512 decode kernel that reproduces the tile
//       unit bit for bit (ops/gemm_amx.cc). "Row bytes" = kp * 2, so row_slice works at
//       multiples of 16 rows. No scales.
//
//  Q8GI / Q4GI  Q8G / Q4G codes and scales (same values) with 16 rows interleaved, for vector
//       machines without AMX (ops/gemm_vnni_il.cc, gemm_avx2_il.cc, which takes each 64-byte
//       vector as two halves of 8 rows): one vpdpbusd of a 64-byte vector against 4 bytes of x
//       broadcast adds 4 products to each of 16 rows' lanes, so each row's exact group dot builds
//       up in its own lane with no horizontal sum. Rows come in blocks of 16 (the last padded
//       with code 0, scale 0). A block is n_groups records, each the group's codes then its 16
//       rows' f32 scales (read right after the codes they scale):
//         Q8GI: 32 chunks of 64 bytes, chunk c = [row 0..15][4 bytes: K 4c .. 4c+3]; scales.
//         Q4GI: 16 chunks of 64 bytes, chunk c = [row 0..15][4 bytes], byte j of a row holding
//               K 8c+j in its low nibble and K 8c+4+j in its high nibble (one AND, one shift and
//               one AND give the two 4-K halves); scales.
//       "Row bytes" = record bytes / 16, so row_slice works at multiples of 16 rows. group_scale
//       is null (the scales are inside).
#pragma once

#include <cstdint>

#include "herd/base/dtype.h"
#include "herd/quant/format_table.h"

namespace herd {

inline constexpr int64_t kQuantGroup = 128;

inline int64_t quant_groups(int64_t cols) {
  return (cols + kQuantGroup - 1) / kQuantGroup;
}
// Bytes of packed values per row (scales not included); 0 for non-blocked dtypes.
int64_t packed_row_bytes(DType t, int64_t cols);
// The questions below are the format table's (format_table.h), kept as names for readability.
inline bool is_packed(DType t) {
  return format_traits(t).kind == FormatKind::kGroupQuant;
}
inline bool is_interleaved(DType t) {
  return format_traits(t).kind == FormatKind::kInterleaved;
}
// Formats whose rows are not cols * dtype_size bytes (packed_row_bytes gives the row stride).
inline bool is_blocked(DType t) {
  return format_traits(t).block > 1;
}
// Formats whose products take int8-quantized activations (PreparedActs::q).
inline bool takes_int8_acts(DType t) {
  return format_traits(t).act == ActFormat::kQ8Group;
}
// Q8GI -> Q8G, Q4GI -> Q4G (the codes' format); other types unchanged.
inline DType code_format(DType t) {
  return format_traits(t).codes;
}
// The interleaved counterpart of a packed format.
inline DType interleaved_format(DType t) {
  return t == DType::Q8G ? DType::Q8GI : t == DType::Q4G ? DType::Q4GI : t;
}
inline constexpr int64_t kTileRows = 16;
inline int64_t tiled_kpad(int64_t cols) {
  return (cols + 31) / 32 * 32;
}
// Offset, in bf16 elements, of (r, c) in a BF16T matrix of `cols` columns.
inline int64_t tiled_index(int64_t r, int64_t c, int64_t cols) {
  return ((r / kTileRows) * (tiled_kpad(cols) / 2) + c / 2) * 32 + (r % kTileRows) * 2 + c % 2;
}
// Q8GI / Q4GI: bytes of one group record of a 16-row block (codes, then 16 scales).
inline int64_t il_code_bytes(DType t) {
  return t == DType::Q8GI ? 2048 : 1024;
}
inline int64_t il_record_bytes(DType t) {
  return il_code_bytes(t) + 64;
}
// Code (biased, as in Q8G / Q4G) and scale of element (r, c) of an interleaved matrix.
int il_code(const uint8_t* data, DType t, int64_t cols, int64_t r, int64_t c);
float il_scale(const uint8_t* data, DType t, int64_t cols, int64_t r, int64_t g);
// Writes rows [r0, r0 + n) given as Q8G / Q4G (codes row-major with stride packed_row_bytes,
// scales [n, groups]) into an interleaved matrix. Rows of the touched blocks past `rows` are
// filled as padding (code 0, scale 0); r0 must be a multiple of 16.
void interleave_rows(const uint8_t* codes, const float* scales, int64_t n, int64_t cols, int64_t r0,
                     int64_t rows, DType t, uint8_t* dst);
// The inverse for one row: Q8G / Q4G codes (packed_row_bytes) and its groups' scales.
void deinterleave_row(const uint8_t* data, DType t, int64_t cols, int64_t r, uint8_t* codes,
                      float* scales);
// Rows padded to whole blocks: bytes of an interleaved matrix = il_rows(rows) * row bytes.
inline int64_t il_rows(int64_t rows) {
  return (rows + 15) / 16 * 16;
}

// Writes n (a multiple of 16) rows of bf16 [n][cols] at row r0 of a BF16T matrix.
void tile_rows_bf16(const uint16_t* src, int64_t n, int64_t cols, int64_t r0, uint16_t* dst);

// Scalar reference quantizers: one row of `cols` floats -> packed values + n_groups scales.
void quantize_row_q8g(const float* x, int64_t cols, uint8_t* q, float* scales);
void quantize_row_q4g(const float* x, int64_t cols, uint8_t* q, float* scales);
void dequantize_row_q8g(const uint8_t* q, const float* scales, int64_t cols, float* out);
void dequantize_row_q4g(const uint8_t* q, const float* scales, int64_t cols, float* out);

}  // namespace herd
