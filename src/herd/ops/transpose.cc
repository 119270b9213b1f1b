// The scalar loops below take an element per load and store, with a stride of a source row
// between loads; with AVX2, 8 × 8 blocks go through registers (8 loads, a transpose of 24
// shuffles, 8 stores), which were a third of an int4 load's samples as scalar code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "herd/ops/transpose.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "herd/ops/gemm.h"
#include "herd/ops/int8_avx2.h"

#define HERD_AVX2 __attribute__((target("avx2")))

namespace herd {

namespace {

// Source rows in tiles of 16, so a tile's lines serve every column of the block before they
// leave the cache (the block: at most a task's 32 output rows).
template <typename Out, typename Conv>
void transpose_scalar(const uint16_t* src, int64_t ss, int64_t i0, int64_t i1, int64_t j0,
                      int64_t j1, Out* dst, int64_t ds, Conv conv) {
  constexpr int64_t kTile = 16;
  for (int64_t t = i0; t < i1; t += kTile) {
    const int64_t te = std::min(i1, t + kTile);
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t i = t; i < te; ++i) dst[j * ds + i] = conv(src[i * ss + j]);
  }
}
uint16_t keep(uint16_t v) {
  return v;
}
float widen(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// 8 × 8 blocks: source rows i..i+7's 8 elements from column j as 32-bit lanes (bf16 shifted into
// f32's high half), transposed, then stored as f32 or narrowed back to bf16.
template <bool kF32>
HERD_AVX2 void transpose_avx2(const uint16_t* src, int64_t ss, int64_t rows, int64_t cols,
                              void* dst, int64_t ds) {
  const int64_t r8 = rows / 8 * 8, c8 = cols / 8 * 8;
  for (int64_t i0 = 0; i0 < r8; i0 += 16) {  // 16 source rows' lines at a time, as above
    const int64_t i1 = std::min(r8, i0 + 16);
    for (int64_t j = 0; j < c8; j += 8)
      for (int64_t i = i0; i < i1; i += 8) {
        __m256i v[8];
        for (int r = 0; r < 8; ++r)
          v[r] = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(
                                       reinterpret_cast<const __m128i*>(src + (i + r) * ss + j))),
                                   16);
        gemm_detail::int8_avx2::transpose8(v);
        for (int c = 0; c < 8; ++c) {
          if constexpr (kF32) {
            _mm256_storeu_si256(
                reinterpret_cast<__m256i*>(static_cast<float*>(dst) + (j + c) * ds + i), v[c]);
          } else {  // the high halves back to 8 bf16, lanes in order
            const __m256i h = _mm256_srli_epi32(v[c], 16);
            const __m128i p =
                _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            _mm_storeu_si128(
                reinterpret_cast<__m128i*>(static_cast<uint16_t*>(dst) + (j + c) * ds + i), p);
          }
        }
      }
  }
  // The edges: rows past the last 8 for every column, columns past the last 8 for the rest.
  if constexpr (kF32) {
    float* d = static_cast<float*>(dst);
    transpose_scalar(src, ss, r8, rows, 0, cols, d, ds, widen);
    transpose_scalar(src, ss, 0, r8, c8, cols, d, ds, widen);
  } else {
    uint16_t* d = static_cast<uint16_t*>(dst);
    transpose_scalar(src, ss, r8, rows, 0, cols, d, ds, keep);
    transpose_scalar(src, ss, 0, r8, c8, cols, d, ds, keep);
  }
}

}  // namespace

void transpose_bf16(const uint16_t* src, int64_t src_stride, int64_t rows, int64_t cols,
                    uint16_t* dst, int64_t dst_stride) {
  if (active_isa() >= Isa::kAvx2)
    return transpose_avx2<false>(src, src_stride, rows, cols, dst, dst_stride);
  transpose_scalar(src, src_stride, 0, rows, 0, cols, dst, dst_stride, keep);
}

void transpose_bf16_f32(const uint16_t* src, int64_t src_stride, int64_t rows, int64_t cols,
                        float* dst, int64_t dst_stride) {
  if (active_isa() >= Isa::kAvx2)
    return transpose_avx2<true>(src, src_stride, rows, cols, dst, dst_stride);
  transpose_scalar(src, src_stride, 0, rows, 0, cols, dst, dst_stride, widen);
}

}  // namespace herd
