// What the AVX2 repacked prefill kernels share (gemm_avx2.cc's Q8G / Q4G, gemm_gguf_avx2.cc's
// GGUF blocks): they lay 8 weight rows' codes out as [chunk of 4 K][8 rows][4 bytes], so one
// vpmaddubsw against 4 broadcast bytes of x serves 8 rows. Not part of the ops API.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace herd::gemm_detail::repack_avx2 {

// In place: r[i] lane j becomes the old r[j] lane i (an 8 × 8 transpose of 32-bit elements), so
// 8 rows' vectors of 8 chunks become 8 chunks' vectors of 8 rows.
__attribute__((target("avx2"))) inline void transpose8(__m256i* r) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}

}  // namespace herd::gemm_detail::repack_avx2
