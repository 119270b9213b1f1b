// What the GGUF SIMD kernels share (gemm_gguf_avx2.cc, gemm_gguf_vnni*.cc): the kernel context
// and the AVX2-level helpers both use. The AVX-512 files inline these too (a callee whose target
// is a subset of the caller's). Not part of the ops API.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "herd/ops/gemm_gguf.h"
#include "herd/ops/int8_avx2.h"
#include "herd/quant/gguf_blocks.h"

#define HERD_GGUF_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace herd::gemm_detail::gguf_simd {

struct Ctx {
  const int8_t* xq;  // [n, kpad]; token t's row at xq + (t − x0) · kpad
  int64_t x0;
  const float* xd;    // [n, nd]
  const int16_t* xs;  // [n, kpad / 16]
  const float* xf;    // F16: [n, kpad]
  const float* xsy;   // Q4_1 / Q5_1: Q8_1's s [n, nd]
  int64_t kpad, nd, cols;
  const uint8_t* w;
  int64_t rb;
  float* y;
  int64_t ys;
};

inline Ctx make_ctx(const PreparedActs& a, const WeightRef& w, float* y, int64_t ys) {
  const int64_t blk = gguf_act_block(w.dtype);
  return Ctx{a.q.data(),
             0,
             a.blk_d.data(),
             a.blk_sum.data(),
             a.f32.data(),
             a.blk_s.data(),
             a.kpad,
             blk ? a.kpad / blk : 0,
             w.cols,
             static_cast<const uint8_t*>(w.data),
             gguf_row_bytes(w.dtype, w.cols),
             y,
             ys};
}

HERD_GGUF_AVX2 inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

using int8_avx2::reduce8x8;

// Q4_K / Q5_K: the 12 packed bytes (16 read: the block goes on) as 8 scales (bytes 0..7) and 8
// mins (8..15), the bit algebra of gguf_scale_min_k4 on 32-bit words u0, u1, u2:
//   sc 0..3 = u0 & 0x3f..   sc 4..7 = (u2 & 0x0f..) | ((u0 >> 2) & 0x30..)
//   mn 0..3 = u1 & 0x3f..   mn 4..7 = ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..)
HERD_GGUF_AVX2 inline __m128i unpack_scale_min_k4(const uint8_t* p) {
  const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i a = _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)),  // u0 u2 u1 u2
                                   _mm_setr_epi32(0, 0, 0, 4));
  const __m128i b = _mm_srli_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0)), 2);
  const int k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k30 = 0x30303030;
  return _mm_or_si128(_mm_and_si128(a, _mm_setr_epi32(k6, k4, k6, k4)),
                      _mm_and_si128(b, _mm_setr_epi32(0, k30, 0, k30)));
}

}  // namespace herd::gemm_detail::gguf_simd
