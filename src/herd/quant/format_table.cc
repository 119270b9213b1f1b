// The entries of the weight-format table (format_table.h) and their row functions.
#include "herd/quant/format_table.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>

#include "herd/quant/formats.h"
#include "herd/quant/gguf_blocks.h"
#include "herd/quant/quantize.h"

namespace herd {

namespace {

// Element loads go through memcpy: mmap'd data need not be aligned for every reader.
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline const uint8_t* bytes(const RowsView& m) {
  return static_cast<const uint8_t*>(m.data);
}

// ---- Plain element types: one decoder each, rows and elements alike.
float f32_elem(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
float bf16_elem(const uint8_t* p) {
  return bf16_to_f32(load_u16(p));
}
float f16_elem(const uint8_t* p) {
  return f16_to_f32(load_u16(p));
}
// FP8 E4M3 through a table (the reference matmul converts every weight row it reads).
float fp8_elem(const uint8_t* p) {
  static const std::array<float, 256> t = [] {
    std::array<float, 256> a{};
    for (int i = 0; i < 256; ++i) a[size_t(i)] = fp8_e4m3_to_f32(uint8_t(i));
    return a;
  }();
  return t[*p];
}

template <float (*Elem)(const uint8_t*), int64_t kSize>
void plain_row(const RowsView& m, int64_t r, float* out) {
  const uint8_t* row = bytes(m) + r * m.cols * kSize;
  for (int64_t c = 0; c < m.cols; ++c) out[c] = Elem(row + c * kSize);
}
template <float (*Elem)(const uint8_t*), int64_t kSize>
float plain_at(const RowsView& m, int64_t r, int64_t c) {
  return Elem(bytes(m) + (r * m.cols + c) * kSize);
}

void f32_row(const RowsView& m, int64_t r, float* out) {
  std::memcpy(out, bytes(m) + r * m.cols * 4, size_t(m.cols) * 4);
}

// F8_E4M3 times the row's scale (1 without one, spec §2.4).
void fp8_row(const RowsView& m, int64_t r, float* out) {
  const uint8_t* row = bytes(m) + r * m.cols;
  const float s = m.row_scale ? m.row_scale[r] : 1.0f;
  for (int64_t c = 0; c < m.cols; ++c) out[c] = fp8_elem(row + c) * s;
}
float fp8_at(const RowsView& m, int64_t r, int64_t c) {
  const float v = fp8_elem(bytes(m) + r * m.cols + c);
  return m.row_scale ? v * m.row_scale[r] : v;
}

void bf16_from_float(const float* x, int64_t cols, uint8_t* dst, float*) {
  for (int64_t c = 0; c < cols; ++c) {
    const uint16_t b = f32_to_bf16(x[c]);
    std::memcpy(dst + 2 * c, &b, 2);
  }
}
void f32_from_float(const float* x, int64_t cols, uint8_t* dst, float*) {
  std::memcpy(dst, x, size_t(cols) * 4);
}

// ---- Q8G / Q4G (quant/formats.h): codes row-major, scales apart.
template <DType T>
void group_row(const RowsView& m, int64_t r, float* out) {
  const uint8_t* row = bytes(m) + r * format_row_bytes(T, m.cols);
  const float* gs = m.group_scale ? m.group_scale + r * quant_groups(m.cols) : nullptr;
  (T == DType::Q8G ? dequantize_row_q8g : dequantize_row_q4g)(row, gs, m.cols, out);
}
template <DType T>
float group_at(const RowsView& m, int64_t r, int64_t c) {  // dequantizes c's group only
  const int64_t g = c / kQuantGroup, n = std::min(kQuantGroup, m.cols - g * kQuantGroup);
  const int64_t gb = format_row_bytes(T, kQuantGroup);
  const RowsView one{bytes(m) + r * format_row_bytes(T, m.cols) + g * gb, n, nullptr,
                     m.group_scale + r * quant_groups(m.cols) + g};
  float out[kQuantGroup];
  group_row<T>(one, 0, out);
  return out[c % kQuantGroup];
}

// ---- BF16T: r within the view's 16-row tiles.
float bf16t_at(const RowsView& m, int64_t r, int64_t c) {
  return bf16_to_f32(static_cast<const uint16_t*>(m.data)[tiled_index(r, c, m.cols)]);
}
void bf16t_row(const RowsView& m, int64_t r, float* out) {
  for (int64_t c = 0; c < m.cols; ++c) out[c] = bf16t_at(m, r, c);
}

// ---- Q8GI / Q4GI: r within the view's 16-row blocks.
template <DType T>
float il_at(const RowsView& m, int64_t r, int64_t c) {
  constexpr int kBias = T == DType::Q8GI ? 128 : 8;
  return float(il_code(bytes(m), T, m.cols, r, c) - kBias) *
         il_scale(bytes(m), T, m.cols, r, c / kQuantGroup);
}
template <DType T>
void il_row(const RowsView& m, int64_t r, float* out) {
  for (int64_t c = 0; c < m.cols; ++c) out[c] = il_at<T>(m, r, c);
}

using K = FormatKind;
using A = ActFormat;

// One line per weight format. Non-weight types get {type, kNone, 1, dtype_size} below.
// ggml's block formats (quant/gguf_blocks.h): rows of whole blocks, read where they lie.
template <DType T>
void gguf_row(const RowsView& m, int64_t r, float* out) {
  gguf_dequantize_row(T, static_cast<const uint8_t*>(m.data) + r * gguf_row_bytes(T, m.cols),
                      m.cols, out);
}
template <DType T>
float gguf_at(const RowsView& m, int64_t r, int64_t c) {
  constexpr int64_t kMaxBlock = 256;  // the K-quants' super-block
  const int64_t b = gguf_block_elems(T), blk = c / b;
  float v[kMaxBlock];
  gguf_dequantize_row(T,
                      static_cast<const uint8_t*>(m.data) + r * gguf_row_bytes(T, m.cols) +
                          blk * gguf_block_bytes(T),
                      b, v);
  return v[c - blk * b];
}
#define HERD_GGUF_FORMAT(T, block, bytes, from_float)                                 \
  {                                                                                   \
    DType::T, K::kGgufBlock, block, bytes, 1, A::kGguf, DType::T, gguf_row<DType::T>, \
        gguf_at<DType::T>, from_float                                                 \
  }

const FormatTraits kFormats[] = {
    // type          kind            block  bytes  rows  act              codes
    {DType::F32, K::kFloat, 1, 4, 1, A::kF32, DType::F32, f32_row, plain_at<f32_elem, 4>,
     f32_from_float},
    {DType::F16, K::kFloat, 1, 2, 1, A::kGguf, DType::F16, plain_row<f16_elem, 2>,
     plain_at<f16_elem, 2>, nullptr},
    {DType::BF16, K::kFloat, 1, 2, 1, A::kBF16, DType::BF16, plain_row<bf16_elem, 2>,
     plain_at<bf16_elem, 2>, bf16_from_float},
    {DType::F8_E4M3, K::kScaledFloat, 1, 1, 1, A::kBF16, DType::F8_E4M3, fp8_row, fp8_at, nullptr},
    {DType::Q8G, K::kGroupQuant, kQuantGroup, kQuantGroup, 1, A::kQ8Group, DType::Q8G,
     group_row<DType::Q8G>, group_at<DType::Q8G>, quantize_row_q8g_fast},
    {DType::Q4G, K::kGroupQuant, kQuantGroup, kQuantGroup / 2, 1, A::kQ8Group, DType::Q4G,
     group_row<DType::Q4G>, group_at<DType::Q4G>, quantize_row_q4g_fast},
    {DType::BF16T, K::kTiled, 32, 64, kTileRows, A::kBF16Rows16, DType::BF16T, bf16t_row, bf16t_at,
     nullptr},
    // A 16-row record (codes + 16 scales) per group: per row, record bytes / 16.
    {DType::Q8GI, K::kInterleaved, kQuantGroup, (2048 + 64) / 16, kTileRows, A::kQ8Group,
     DType::Q8G, il_row<DType::Q8GI>, il_at<DType::Q8GI>, nullptr},
    {DType::Q4GI, K::kInterleaved, kQuantGroup, (1024 + 64) / 16, kTileRows, A::kQ8Group,
     DType::Q4G, il_row<DType::Q4GI>, il_at<DType::Q4GI>, nullptr},
    HERD_GGUF_FORMAT(GGUF_Q8_0, 32, 34, quantize_row_gguf_q8_0),
    HERD_GGUF_FORMAT(GGUF_Q4_0, 32, 18, quantize_row_gguf_q4_0),
    HERD_GGUF_FORMAT(GGUF_Q4_1, 32, 20, nullptr),
    HERD_GGUF_FORMAT(GGUF_Q5_0, 32, 22, nullptr),
    HERD_GGUF_FORMAT(GGUF_Q5_1, 32, 24, nullptr),
    HERD_GGUF_FORMAT(GGUF_Q5_K, 256, 176, nullptr),
    HERD_GGUF_FORMAT(GGUF_Q4_K, 256, 144, nullptr),
    HERD_GGUF_FORMAT(GGUF_Q6_K, 256, 210, nullptr),
    HERD_GGUF_FORMAT(GGUF_Q2_K, 256, 84, nullptr),
    HERD_GGUF_FORMAT(GGUF_Q3_K, 256, 110, nullptr),
    HERD_GGUF_FORMAT(GGUF_IQ4_NL, 32, 18, nullptr),
    HERD_GGUF_FORMAT(GGUF_IQ4_XS, 256, 136, nullptr),
    HERD_GGUF_FORMAT(GGUF_Q8_K, 256, 292, nullptr),
};
#undef HERD_GGUF_FORMAT

std::array<FormatTraits, kDTypeCount> build() {
  std::array<FormatTraits, kDTypeCount> t{};
  for (size_t i = 0; i < kDTypeCount; ++i)
    t[i] =
        FormatTraits{DType(i), K::kNone, 1, int64_t(dtype_size(DType(i))), 1, A::kNone, DType(i)};
  for (const FormatTraits& f : kFormats) t[size_t(f.type)] = f;
  return t;
}

}  // namespace

const FormatTraits& format_traits(DType t) {
  static const std::array<FormatTraits, kDTypeCount> table = build();
  assert(size_t(t) < kDTypeCount);
  return table[size_t(t)];
}

}  // namespace herd
