// E4M3 -> bf16 for the AVX-512 BF16 and AMX kernels (both tile and vector paths read FP8 weights
// as bf16, exactly: every E4M3 value is a bf16 value). Included by those kernel files only.
#pragma once

#include <immintrin.h>

#include <array>
#include <cstdint>

#define HERD_FP8_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace herd::gemm_detail {

constexpr std::array<uint16_t, 128> fp8_bf16_table() {  // |E4M3| -> bf16 bits, exact
  std::array<uint16_t, 128> t{};
  for (int m = 0; m < 128; ++m) {
    const int e = m >> 3, f = m & 7;
    if (m == 127) {
      t[m] = 0x7fc0;      // NaN
    } else if (e == 0) {  // subnormal f·2^-9: normalize
      if (f == 0) continue;
      const int p = f >= 4 ? 2 : f >= 2 ? 1 : 0;
      t[m] = uint16_t(((118 + p) << 7) | ((f - (1 << p)) << (7 - p)));
    } else {
      t[m] = uint16_t(((e + 120) << 7) | (f << 4));
    }
  }
  return t;
}
alignas(64) constexpr std::array<uint16_t, 128> kFp8Bf16 = fp8_bf16_table();

// 32 E4M3 bytes -> 32 bf16 (exact), by two 64-entry word permutes and the sign bit.
HERD_FP8_BF16 inline __m512i fp8x32_to_bf16(__m256i b) {
  const __m512i v = _mm512_cvtepu8_epi16(b);
  const __m512i t0 = _mm512_load_si512(kFp8Bf16.data()),
                t1 = _mm512_load_si512(kFp8Bf16.data() + 32);
  const __m512i t2 = _mm512_load_si512(kFp8Bf16.data() + 64),
                t3 = _mm512_load_si512(kFp8Bf16.data() + 96);
  const __m512i lo = _mm512_permutex2var_epi16(t0, v, t1);
  const __m512i hi = _mm512_permutex2var_epi16(t2, v, t3);
  const __m512i mag =
      _mm512_mask_mov_epi16(lo, _mm512_test_epi16_mask(v, _mm512_set1_epi16(64)), hi);
  // | (v << 8) & 0x8000
  return _mm512_ternarylogic_epi32(mag, _mm512_slli_epi16(v, 8), _mm512_set1_epi16(int16_t(0x8000)),
                                   0xF8);
}

}  // namespace herd::gemm_detail
