// Reference (f32) matrix products for the `--precision f32` path, the one conformance against
// llama.cpp is measured on (DESIGN.md "Kernels"). Weights are converted exactly to f32 (bf16,
// f16, f32; FP8 E4M3 times its row scale, spec §2.4) and products accumulate in f32.
//
// Batch invariance: every output element is produced by the same sequence of f32 operations
// whatever the number of rows n, the thread count or the chunking — dot_f32 for the [out, in]
// layout, a fixed sequential axpy over the input index for the input-major layout. So a token's
// logits do not depend on which other tokens share its batch.
#include "herd/ops/matmul.h"

#include "herd/quant/format_table.h"

#include <algorithm>
#include <array>
#include <vector>

namespace herd {

namespace {

constexpr int64_t kLanes = 16;          // independent partial sums of dot_f32 (vectorizable)
constexpr int64_t kRowBlock = 8;        // weight rows converted together and reused for all n rows
constexpr int64_t kInRows = 8;          // input rows applied per pass over y (input-major)
constexpr int64_t kMinColBlock = 256;   // output columns per task of the input-major product
constexpr int64_t kTileFloats = 32768;  // y tile of one input-major task: 128 KiB, cache-resident
constexpr int64_t kTaskMacs = 1 << 16;  // aim for at least this much work per pool task

// Columns [c0, c0 + nc) of row r as f32. F32 weights are returned in place; other plain formats
// (one element per block) are converted into `buf` (nc floats), block formats into `full`
// (w.cols floats) by their whole-row decoder.
const float* row_f32(const WeightRef& w, int64_t r, int64_t c0, int64_t nc, float* buf,
                     std::vector<float>& full) {
  const int64_t off = r * w.cols + c0;
  if (w.dtype == DType::F32) return static_cast<const float*>(w.data) + off;
  const FormatTraits& f = format_traits(w.dtype);
  if (f.block == 1) {  // the columns alone, as a one-row view
    const RowsView cols{static_cast<const uint8_t*>(w.data) + off * f.block_bytes, nc,
                        w.row_scale ? w.row_scale + r : nullptr, nullptr};
    f.to_float(cols, 0, buf);
    return buf;
  }
  full.resize(size_t(w.cols));
  dequantize_row(w, r, full.data());
  return full.data() + c0;
}

// y[c] = (((y[c] + x[0]·w[0][c]) + x[1]·w[1][c]) + ...): exactly the sequential axpys one input
// row after another, but y is loaded and stored once per R rows instead of once per row.
template <int R>
void axpy_rows(float* __restrict y, const float* const* w, const float* x, int64_t nc) {
  const float* __restrict wp[R];
  float xv[R];
  for (int r = 0; r < R; ++r) wp[r] = w[r], xv[r] = x[r];
  int64_t c = 0;
  for (; c + kLanes <= nc; c += kLanes) {  // fixed-width body: -O2 vectorizes it without epilogue
    float acc[kLanes];
#pragma GCC unroll 16
    for (int64_t l = 0; l < kLanes; ++l) acc[l] = y[c + l];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int64_t l = 0; l < kLanes; ++l) acc[l] += xv[r] * wp[r][c + l];
    }
#pragma GCC unroll 16
    for (int64_t l = 0; l < kLanes; ++l) y[c + l] = acc[l];
  }
  for (; c < nc; ++c) {
    float acc = y[c];
    for (int r = 0; r < R; ++r) acc += xv[r] * wp[r][c];
    y[c] = acc;
  }
}

size_t grain_for(int64_t macs_per_item) {
  return size_t(std::max<int64_t>(1, kTaskMacs / std::max<int64_t>(1, macs_per_item)));
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
  // kLanes interleaved partial sums combined by a fixed tree: the order depends only on n, the
  // compiler can vectorize the lane loop, and the error grows like (n/kLanes + 4)·eps instead
  // of n·eps for one running sum.
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma GCC unroll 16  // fully unrolled, the 16 partial sums stay in vector registers
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  }
  for (int64_t l = 0; i + l < n; ++l) acc[l] += a[i + l] * b[i + l];
  for (int64_t w = kLanes / 2; w > 0; w /= 2)
    for (int64_t l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

void matmul(ThreadPool& pool, const float* x, int64_t n, int64_t x_stride, const WeightRef& w,
            float* y, int64_t y_stride) {
  const int64_t K = w.cols, M = w.rows;
  if (n <= 0 || M <= 0) return;
  const int64_t n_blocks = (M + kRowBlock - 1) / kRowBlock;
  // Split output rows (weight rows) across threads: each weight row is read once per call.
  pool.parallel_for(size_t(n_blocks), grain_for(kRowBlock * K * n), [&](size_t b0, size_t b1, int) {
    thread_local std::vector<float> buf, full;
    if (buf.size() < size_t(kRowBlock * K)) buf.resize(size_t(kRowBlock * K));
    const float* rows[kRowBlock];
    for (int64_t b = int64_t(b0); b < int64_t(b1); ++b) {
      const int64_t r0 = b * kRowBlock, nr = std::min(kRowBlock, M - r0);
      for (int64_t r = 0; r < nr; ++r) {
        rows[r] = row_f32(w, r0 + r, 0, K, &buf[size_t(r * K)], full);
        if (rows[r] == full.data()) {  // packed format: keep its own copy for this block
          std::copy(full.begin(), full.end(), buf.begin() + r * K);
          rows[r] = &buf[size_t(r * K)];
        }
      }
      for (int64_t t = 0; t < n; ++t) {
        const float* xt = x + t * x_stride;
        float* yt = y + t * y_stride + r0;
        for (int64_t r = 0; r < nr; ++r) yt[r] = dot_f32(xt, rows[r], K);
      }
    }
  });
}

void matmul_sequential(ThreadPool& pool, const float* x, int64_t n, int64_t x_stride,
                       const WeightRef& w, float* y, int64_t y_stride) {
  const int64_t K = w.cols, M = w.rows;
  if (n <= 0 || M <= 0) return;
  pool.parallel_for(size_t(M), grain_for(K * n), [&](size_t r0, size_t r1, int) {
    thread_local std::vector<float> buf, full;
    if (buf.size() < size_t(K)) buf.resize(size_t(K));
    for (int64_t r = int64_t(r0); r < int64_t(r1); ++r) {
      const float* row = row_f32(w, r, 0, K, buf.data(), full);
      for (int64_t t = 0; t < n; ++t) {
        const float* xt = x + t * x_stride;
        float acc = 0.0f;
        for (int64_t i = 0; i < K; ++i) acc += xt[i] * row[i];
        y[t * y_stride + r] = acc;
      }
    }
  });
}

void matmul_in_major(ThreadPool& pool, const float* x, int64_t n, int64_t x_stride,
                     const WeightRef& w, int64_t col0, int64_t n_out, float* y, int64_t y_stride) {
  const int64_t K = w.rows;
  if (n <= 0 || n_out <= 0) return;
  // Column blocks as wide as the cache allows (few tokens: long contiguous reads of each weight
  // row instead of one TLB miss per short segment), but at least two per thread. Blocking never
  // changes the arithmetic: y[t, o] accumulates x[t, i]·W[i, o] for i = 0, 1, ..., K-1 in that
  // order (an axpy per input row, spec §2.1 input-major), so results stay batch-invariant.
  // Blocks start at multiples of 64, so whether a column falls in axpy_rows' vector body or its
  // scalar tail does not depend on n either (it would matter if a build contracted to FMA).
  const int64_t per_thread = (n_out + 2 * pool.size() - 1) / (2 * pool.size());
  const int64_t cap = std::max(kMinColBlock, (per_thread + 63) / 64 * 64);
  const int64_t cols = std::clamp(kTileFloats / n / 64 * 64, kMinColBlock, cap);
  const int64_t n_blocks = (n_out + cols - 1) / cols;
  pool.parallel_for(size_t(n_blocks), grain_for(cols * K * n), [&](size_t b0, size_t b1, int) {
    thread_local std::vector<float> buf, full;
    if (buf.size() < size_t(kInRows * cols)) buf.resize(size_t(kInRows * cols));
    const float* wr[kInRows];
    float xr[kInRows];
    for (int64_t b = int64_t(b0); b < int64_t(b1); ++b) {
      const int64_t o0 = b * cols, nc = std::min(cols, n_out - o0);
      for (int64_t t = 0; t < n; ++t) std::fill_n(y + t * y_stride + o0, nc, 0.0f);
      for (int64_t i0 = 0; i0 < K; i0 += kInRows) {
        const int64_t nr = std::min(kInRows, K - i0);
        for (int64_t r = 0; r < nr; ++r) {
          wr[r] = row_f32(w, i0 + r, col0 + o0, nc, &buf[size_t(r * cols)], full);
          if (wr[r] != &buf[size_t(r * cols)] && w.dtype != DType::F32) {  // packed format
            std::copy_n(wr[r], nc, &buf[size_t(r * cols)]);
            wr[r] = &buf[size_t(r * cols)];
          }
        }
        for (int64_t t = 0; t < n; ++t) {
          float* yt = y + t * y_stride + o0;
          for (int64_t r = 0; r < nr; ++r) xr[r] = x[t * x_stride + i0 + r];
          if (nr == kInRows) {
            axpy_rows<kInRows>(yt, wr, xr, nc);
          } else {
            for (int64_t r = 0; r < nr; ++r) axpy_rows<1>(yt, &wr[r], &xr[r], nc);
          }
        }
      }
    }
  });
}

}  // namespace herd
