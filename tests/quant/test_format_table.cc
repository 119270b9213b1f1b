// quant/format_table: every entry against the layouts formats.h defines, and each format's row
// decoder, element access and row encoder against one another and the reference quantizers.
#include "herd/quant/format_table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "herd/quant/formats.h"
#include "herd/quant/quantize.h"

namespace herd {
namespace {

constexpr DType kWeightFormats[] = {DType::F32,     DType::F16,  DType::BF16,
                                    DType::F8_E4M3, DType::Q8G,  DType::Q4G,
                                    DType::BF16T,   DType::Q8GI, DType::Q4GI};

TEST(FormatTable, EveryDTypeHasItsOwnEntry) {
  for (size_t i = 0; i < kDTypeCount; ++i) {
    const FormatTraits& f = format_traits(DType(i));
    EXPECT_EQ(f.type, DType(i)) << dtype_name(DType(i));
    EXPECT_GE(f.block, 1);
  }
  for (DType t : kWeightFormats) {
    const FormatTraits& f = format_traits(t);
    EXPECT_NE(f.kind, FormatKind::kNone) << dtype_name(t);
    EXPECT_TRUE(f.to_float && f.at) << dtype_name(t);
  }
  EXPECT_EQ(format_traits(DType::I32).kind, FormatKind::kNone);
}

// Row bytes as each layout is written down in quant/formats.h, for awkward widths.
TEST(FormatTable, RowBytesFollowTheLayouts) {
  for (int64_t cols : {1, 31, 32, 33, 127, 128, 129, 300, 5120}) {
    const int64_t G = quant_groups(cols);
    EXPECT_EQ(format_row_bytes(DType::F32, cols), 4 * cols);
    EXPECT_EQ(format_row_bytes(DType::BF16, cols), 2 * cols);
    EXPECT_EQ(format_row_bytes(DType::F16, cols), 2 * cols);
    EXPECT_EQ(format_row_bytes(DType::F8_E4M3, cols), cols);
    EXPECT_EQ(format_row_bytes(DType::Q8G, cols), G * 128);
    EXPECT_EQ(format_row_bytes(DType::Q4G, cols), G * 64);
    EXPECT_EQ(format_row_bytes(DType::BF16T, cols), tiled_kpad(cols) * 2);
    EXPECT_EQ(16 * format_row_bytes(DType::Q8GI, cols), G * il_record_bytes(DType::Q8GI));
    EXPECT_EQ(16 * format_row_bytes(DType::Q4GI, cols), G * il_record_bytes(DType::Q4GI));
    EXPECT_EQ(format_row_bytes(DType::I64, cols), 8 * cols);
  }
}

// A 32 x 300 matrix written with the formats' own writers, read back through the table.
struct Encoded {
  std::vector<uint8_t> data;
  std::vector<float> scales;  // group or row scales
};

Encoded encode(DType t, const std::vector<float>& x, int64_t rows, int64_t cols) {
  Encoded e;
  const DType ct = code_format(t);
  const int64_t G = quant_groups(cols), rb = format_row_bytes(ct, cols);
  if (t == DType::BF16T) {
    std::vector<uint16_t> b(x.size());
    for (size_t i = 0; i < x.size(); ++i) b[i] = f32_to_bf16(x[i]);
    e.data.resize(size_t(rows * format_row_bytes(t, cols)) * 2);
    tile_rows_bf16(b.data(), rows, cols, 0, reinterpret_cast<uint16_t*>(e.data.data()));
    return e;
  }
  if (t == DType::F16 || t == DType::F8_E4M3) {
    const bool f8 = t == DType::F8_E4M3;
    e.data.resize(size_t(rows * format_row_bytes(t, cols)));
    for (size_t i = 0; i < x.size(); ++i) {
      if (f8) {
        e.data[i] = f32_to_fp8_e4m3(x[i]);
      } else {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(&e.data[2 * i], &h, 2);
      }
    }
    if (f8)
      for (int64_t r = 0; r < rows; ++r) e.scales.push_back(0.5f + 0.25f * float(r % 3));
    return e;
  }
  std::vector<uint8_t> codes(size_t(rows * rb));
  e.scales.resize(size_t(rows * G));
  for (int64_t r = 0; r < rows; ++r)
    encode_row(&x[size_t(r * cols)], cols, ct, codes.data() + r * rb, &e.scales[size_t(r * G)]);
  if (!is_interleaved(t)) {
    e.data = std::move(codes);
    return e;
  }
  e.data.resize(size_t(il_rows(rows) * format_row_bytes(t, cols)));
  interleave_rows(codes.data(), e.scales.data(), rows, cols, 0, rows, t, e.data.data());
  e.scales.clear();  // inside the records
  return e;
}

TEST(FormatTable, RowDecoderElementAccessAndEncoderAgree) {
  const int64_t rows = 32, cols = 300;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(rows * cols));
  for (float& v : x) v = nd(rng);
  for (DType t : kWeightFormats) {
    const FormatTraits& f = format_traits(t);
    const Encoded e = encode(t, x, rows, cols);
    RowsView m{e.data.data(), cols, nullptr, nullptr};
    if (f.kind == FormatKind::kScaledFloat) m.row_scale = e.scales.data();
    if (f.kind == FormatKind::kGroupQuant) m.group_scale = e.scales.data();
    std::vector<float> row(static_cast<size_t>(cols)), ref(static_cast<size_t>(cols));
    const int64_t G = quant_groups(cols);
    for (int64_t r = 0; r < rows; ++r) {
      f.to_float(m, r, row.data());
      // The reference decode of each layout, independent of the table.
      if (f.kind == FormatKind::kGroupQuant || f.kind == FormatKind::kInterleaved) {
        std::vector<uint8_t> q(static_cast<size_t>(format_row_bytes(code_format(t), cols)));
        std::vector<float> s(static_cast<size_t>(G));
        const bool q8 = code_format(t) == DType::Q8G;
        (q8 ? quantize_row_q8g : quantize_row_q4g)(&x[size_t(r * cols)], cols, q.data(), s.data());
        (q8 ? dequantize_row_q8g : dequantize_row_q4g)(q.data(), s.data(), cols, ref.data());
      }
      for (int64_t c = 0; c < cols; ++c) {
        const float v = x[size_t(r * cols + c)];
        float want = v;
        if (t == DType::BF16 || t == DType::BF16T) want = round_bf16(v);
        if (t == DType::F16) want = f16_to_f32(f32_to_f16(v));
        if (t == DType::F8_E4M3) want = fp8_e4m3_to_f32(f32_to_fp8_e4m3(v)) * e.scales[size_t(r)];
        if (f.kind == FormatKind::kGroupQuant || f.kind == FormatKind::kInterleaved)
          want = ref[size_t(c)];
        ASSERT_EQ(row[size_t(c)], want) << dtype_name(t) << " (" << r << ", " << c << ")";
        ASSERT_EQ(f.at(m, r, c), want) << dtype_name(t) << " (" << r << ", " << c << ")";
      }
    }
  }
}

}  // namespace
}  // namespace herd
