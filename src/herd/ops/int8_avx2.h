// Integer AVX2 helpers the int8 kernels share (gemm_avx2.cc's Q8G / Q4G, gemm_gguf_avx2.cc's GGUF
// blocks, and the AVX-512 GGUF files, which inline them). The repacked prefill kernels lay 8
// weight rows' codes out as [chunk of 4 K][8 rows][4 bytes], so one vpmaddubsw against 4
// broadcast bytes of x serves 8 rows. Not part of the ops API.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace herd::gemm_detail::int8_avx2 {

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

// Lane j = the sum of v[j]'s 8 lanes (exact in int32, any order).
__attribute__((target("avx2"))) inline __m256i reduce8x8(const __m256i* v) {
  const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
  // a: v0..v3 partial sums of the low 128 bits, then of the high 128 bits; b: v4..v7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                          _mm256_permute2x128_si256(a, b, 0x31));
}

}  // namespace herd::gemm_detail::int8_avx2
