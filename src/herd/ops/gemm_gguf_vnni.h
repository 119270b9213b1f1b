// GGUF block formats and F16 with AVX-512 (BW/VL/DQ + VNNI), read in their own layout.
//
// Decode and small batches: a tile is 1..4 weight rows × 1..8 tokens; each block of a row is
// unpacked into registers once (codes as unsigned bytes, scales as int16 / f32 lanes) and reused
// by every token of the tile. Q4_K / Q5_K codes stay in their memory order (two 64-byte loads,
// the nibbles split in place) and x is permuted to match once per task. The next tile's rows are
// prefetched while this one runs.
//  - K-quants: vpmaddubsw (u8 code × s8 x, pairs summed, no saturation: ≤ 63·127·2) then vpdpwssd
//    with the sub-block scales give a superblock's scaled integer dot exactly; the offsets / mins
//    go through the activations' sums of 16 (vpmaddwd).
//  - Q8_K: vpdpbusd of |w| with x carrying w's sign (exact; no bias to remove). Q8_0 and IQ4_NL:
//    vpdpbusd of w + 128 (one xor per weight vector, where the sign moved onto x cost two ops per
//    token), then 128·Σq_x of the block removed (exact).
//  - Q2_K / Q3_K: as Q6_K (16 scales of 16; Q3_K signed with its −4 offset, Q2_K with mins);
//    the 2-bit codes (and Q3_K's third bit) split with per-half variable shifts.
//  - Q4_0 / Q4_1 / Q5_0 / Q5_1: vpdpbusd of the 4- or 5-bit codes (Q5: the nibbles plus 16 under
//    the qh mask); the −8 / −16 offset or the min go through Σq_x of the block.
// Tasks of ≥ 8, 12 or 24 tokens (prefill; kRepackTokens per format) repack 16 rows' superblock (8
// blocks for the 32-blocks) into [chunk of 4 K][16 rows][4 bytes] once and reuse it for every
// token: one vpdpbusd against 4 broadcast bytes of x then serves 16 rows, as Q8GI's kernel does
// (gemm_vnni_il.cc), and each chunk loaded serves 6 tokens. Every path reduces each block to its
// exact integer total and adds it with the FMAs of the scalar reference (quant/gguf_blocks.cc) in
// its order, so all paths agree bit for bit and results are batch invariant. F16 keeps four
// per-lane f32 partial sums per token (batch invariant).
//
// This header holds what the format files share: the kernel context, small helpers and
// run_tiles, which maps a task onto a format's tiles. K-quants and Q8_K are in
// gemm_gguf_vnni_kquant.cc, the 32-element blocks in gemm_gguf_vnni_b32.cc, F16 and the
// activation quantizer in gemm_gguf_vnni.cc. Not part of the ops API.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "herd/ops/gemm_gguf_simd.h"

#define HERD_GV __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

namespace herd::gemm_detail {

// The per-format kernels, null for a type the file does not hold: the K-quants, IQ4_XS and Q8_K
// (gemm_gguf_vnni_kquant.cc); Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL (gemm_gguf_vnni_b32.cc).
Kernel gguf_vnni_kquant_kernel(DType t);
Kernel gguf_vnni_b32_kernel(DType t);

namespace gguf_vnni {

using gguf_simd::Ctx;
using gguf_simd::h2f;
using gguf_simd::make_ctx;
using gguf_simd::reduce8x8;
using gguf_simd::unpack_scale_min_k4;

HERD_GV inline __m512i join256(__m256i a, __m256i b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

// Stores the T accumulators' lane sums as y[t, r].
template <int T>
HERD_GV inline void store(const Ctx& c, const __m512* acc, int64_t r, int64_t t0) {
  for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r] = _mm512_reduce_add_ps(acc[t]);
}

// IQ4_NL / IQ4_XS: nibble → value, as a vpshufb table in every 128-bit lane.
HERD_GV inline __m512i iq4_lookup(__m512i nibbles) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
  return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(t), nibbles);
}

// Software prefetch of weights a tile ahead (decode reads each tile's rows in turns, which the
// hardware prefetchers follow poorly): into L1 when the tile is at most this many bytes, else
// into L2. Measured (Zen 4, K-quant and 32-block decode tiles): T0 was faster on the bench
// preset's 1024-wide rows (a tile of 2.3 KB), T1 on 4096-wide ones (9 KB: that far ahead into
// L1, the prefetches hold its miss buffers and evict what is still to be read).
inline constexpr int64_t kNearPrefetch = 4096;
template <int64_t kBytes, bool kNear>
HERD_GV inline void prefetch_ahead(uintptr_t p) {
  const char* a = reinterpret_cast<const char*>(p);
#pragma GCC unroll 16
  for (int64_t o = 0; o < kBytes; o += 64) _mm_prefetch(a + o, kNear ? _MM_HINT_T0 : _MM_HINT_T1);
}

// In place: r[i] lane j becomes the old r[j] lane i (a 16 × 16 transpose of 32-bit elements).
[[gnu::always_inline]] HERD_GV inline void transpose16(__m512i* r) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + j], 128-bit block k: column 4k + j of rows 4i .. 4i+3
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  __m512i o[16];
  for (int j = 0; j < 4; ++j) {
    const __m512i a = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x88);
    const __m512i b = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xDD);
    const __m512i c = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x88);
    const __m512i d = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xDD);
    o[j] = _mm512_shuffle_i32x4(a, c, 0x88);
    o[8 + j] = _mm512_shuffle_i32x4(a, c, 0xDD);
    o[4 + j] = _mm512_shuffle_i32x4(b, d, 0x88);
    o[12 + j] = _mm512_shuffle_i32x4(b, d, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = o[i];
}

template <class Tile>
void run_tiles(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
               int64_t t1, float* y, int64_t ys) {
  Ctx c = make_ctx(a, w, y, ys);
  if constexpr (requires { Tile::repacked; })
    if (t1 - t0 >= Tile::kRepackTokens) return Tile::repacked(c, r0, r1, t0, t1);
  if constexpr (requires { Tile::kPermutedX; })
    if (Tile::kPermutedX && Tile::permutes(c.cols)) {
      thread_local AlignedBuffer<int8_t> xb;
      int8_t* xp = xb.ensure(size_t((t1 - t0) * c.kpad));
      for (int64_t t = t0; t < t1; ++t)
        Tile::permute_x(c.xq + t * c.kpad, c.cols, xp + (t - t0) * c.kpad);
      c.xq = xp, c.x0 = t0;
    }
  if constexpr (requires { Tile::kRows; })
    if (t1 - t0 == 1) {  // decode: several rows per tile, for independent FMA chains
      int64_t r = r0;
      for (; r + Tile::kRows <= r1; r += Tile::kRows) Tile::template run<1, Tile::kRows>(c, r, t0);
      for (; r < r1; ++r) Tile::template run<1, 1>(c, r, t0);
      return;
    }
  BlockTable<Tile, 8, 1>::drive(c, r0, r1, t0, t1, 8, 1);
}

}  // namespace gguf_vnni
}  // namespace herd::gemm_detail
