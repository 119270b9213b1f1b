// Shared by test_run_weights*.cc, test_fp8.cc and test_weight_bytes.cc: loads a prepared model;
// checks a run-format matrix against the values it was converted from, with the bound of its
// format.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "herd/model/run_weights.h"
#include "herd/ops/cpu_features.h"
#include "herd/ops/gemm.h"
#include "herd/ops/weight.h"
#include "herd/quant/format_table.h"
#include "herd/quant/formats.h"
#include "herd/quant/gguf_blocks.h"
#include "herd/quant/quantize.h"

namespace herd::testutil {

// A model loaded and prepared in `mode` (2 threads, no progress bar).
inline LoadedModel load_prepared(const std::string& dir, QuantMode mode) {
  auto m = load_model(dir);
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  QuantOptions q;
  q.mode = mode;
  q.progress = false;
  Status s = prepare_run_weights(*m, q, pool);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return std::move(m).value();
}

// stored(r, c) = the source value of run element (r, c) (transposed for experts).
inline void expect_run_matrix(const std::string& what, const WeightRef& run, DType dtype,
                              int64_t rows, int64_t cols,
                              const std::function<float(int64_t, int64_t)>& stored) {
  // BF16 is kept in 16-row tiles on AMX and AVX512_BF16 machines (run_weights.cc run_layout):
  // same values.
  if (dtype == DType::BF16 && run.dtype == DType::BF16T) {
    ASSERT_TRUE(active_isa() == Isa::kAmx ||
                (active_isa() == Isa::kAvx512Vnni && cpu_features().avx512bf16))
        << what;
    ASSERT_EQ(rows % kTileRows, 0) << what;
    dtype = DType::BF16T;
  }
  // Q8G / Q4G are kept 16 rows interleaved on vector targets without AMX (Q8GI / Q4GI): the
  // same codes and scales, compared through deinterleave_row below.
  const bool il = is_interleaved(run.dtype) && code_format(run.dtype) == dtype;
  if (il) {
    ASSERT_TRUE(interleaves_int_weights(active_isa())) << what;
  }
  ASSERT_EQ(il ? code_format(run.dtype) : run.dtype, dtype)
      << what << ": dtype " << dtype_name(run.dtype);
  ASSERT_EQ(run.rows, rows) << what;
  ASSERT_EQ(run.cols, cols) << what;
  ASSERT_NE(run.data, nullptr) << what;
  if (is_packed(dtype) && !il) {
    ASSERT_NE(run.group_scale, nullptr) << what;
  }
  const int64_t G = quant_groups(cols);
  std::vector<uint8_t> il_codes(static_cast<size_t>(packed_row_bytes(DType::Q8G, cols)));
  std::vector<float> il_scales(static_cast<size_t>(G));
  std::vector<float> got(static_cast<size_t>(cols)), src(static_cast<size_t>(cols));
  std::vector<uint8_t> q(static_cast<size_t>(packed_row_bytes(DType::Q8G, cols)));
  std::vector<float> qs(static_cast<size_t>(quant_groups(cols)));
  // Block formats herd writes (--quant q8_0 / q4_0): compared with their quantize-row.
  const bool gguf = is_gguf_kernel_type(dtype) && format_traits(dtype).from_float;
  std::vector<uint8_t> enc(gguf ? size_t(format_row_bytes(dtype, cols)) : 0);
  std::vector<float> enc_f(gguf ? size_t(cols) : 0);
  int64_t bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(run, r, got.data());
    if (il)
      deinterleave_row(static_cast<const uint8_t*>(run.data), run.dtype, cols, r, il_codes.data(),
                       il_scales.data());
    const float* row_scales = il ? il_scales.data() : run.group_scale + r * G;
    for (int64_t c = 0; c < cols; ++c) src[size_t(c)] = stored(r, c);
    if (gguf) {  // the format's quantize-row of the stored values, and its dequantize-row
      format_traits(dtype).from_float(src.data(), cols, enc.data(), nullptr);
      format_traits(dtype).to_float(RowsView{enc.data(), cols, nullptr, nullptr}, 0, enc_f.data());
    }
    for (int64_t c = 0; c < cols && bad < 5; ++c) {
      const float x = src[size_t(c)], y = got[size_t(c)];
      bool ok = true;
      if (dtype == DType::BF16 || dtype == DType::BF16T || dtype == DType::F32) {
        ok = x == y;
      } else if (gguf) {
        // Q8_0 / Q4_0 (--quant q8_0 / q4_0): exactly the format's own encoding of the stored
        // row read back, and within two code steps of the block's largest magnitude (127 or 8
        // steps; Q4_0's scale search and clamp stay inside two).
        const int64_t b0 = c / 32 * 32;
        float amax = 0;
        for (int64_t i = b0; i < std::min(cols, b0 + 32); ++i)
          amax = std::max(amax, std::fabs(src[size_t(i)]));
        const float steps = dtype == DType::GGUF_Q8_0 ? 127.0f : 8.0f;
        ok = y == enc_f[size_t(c)] && std::fabs(x - y) <= 2 * amax / steps + 1e-30f;
      } else if (is_packed(dtype)) {
        const float scale = row_scales[c / kQuantGroup];
        const float err = std::fabs(x - y), tol = scale * 0.5f * (1 + 1e-5f) + 1e-30f;
        // Q4G's code range is [-8, 7] with scale = max/8: +max clamps to 7·scale (error scale).
        const bool clamped = dtype == DType::Q4G && y == 7 * scale && x > 7.5f * scale;
        ok = err <= (clamped ? scale * (1 + 1e-5f) : tol);
      } else {
        ok = x == y;
      }
      if (!ok && bad++ < 5)
        ADD_FAILURE() << what << " [" << r << ", " << c << "]: stored " << x << ", run " << y;
    }
    // Bit-exact against the format's quantize-row (quant/format_table.cc).
    if (gguf &&
        std::memcmp(static_cast<const uint8_t*>(run.data) + size_t(r) * enc.size(), enc.data(),
                    enc.size()) != 0 &&
        bad++ < 5)
      ADD_FAILURE() << what << " row " << r << ": block bytes differ from quantize-row";
    if (is_packed(dtype)) {
      const size_t rb = size_t(packed_row_bytes(dtype, cols));
      if (dtype == DType::Q8G)
        quantize_row_q8g(src.data(), cols, q.data(), qs.data());
      else
        quantize_row_q4g(src.data(), cols, q.data(), qs.data());
      const auto* row =
          il ? il_codes.data() : static_cast<const uint8_t*>(run.data) + size_t(r) * rb;
      if (std::memcmp(row, q.data(), rb) != 0 && bad++ < 5)
        ADD_FAILURE() << what << " row " << r << ": packed bytes differ from quantize_row";
      for (int64_t g = 0; g < G; ++g)
        if (row_scales[g] != qs[size_t(g)] && bad++ < 5)
          ADD_FAILURE() << what << " row " << r << " group " << g << ": scale differs";
    }
  }
}

}  // namespace herd::testutil
