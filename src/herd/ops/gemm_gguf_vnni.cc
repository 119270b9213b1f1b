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
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "herd/ops/gemm_gguf.h"
#include "herd/quant/gguf_blocks.h"

#define HERD_GV __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

namespace herd::gemm_detail {

namespace {

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

HERD_GV inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

// [lo | hi] of a 32-byte load: the low nibbles then the high nibbles of each byte.
HERD_GV inline __m512i nibbles32(const uint8_t* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i m = _mm256_set1_epi8(0x0F);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m)),
                            _mm256_and_si256(_mm256_srli_epi16(v, 4), m), 1);
}

HERD_GV inline __m512i join256(__m256i a, __m256i b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

// Stores the T accumulators' lane sums as y[t, r].
template <int T>
HERD_GV inline void store(const Ctx& c, const __m512* acc, int64_t r, int64_t t0) {
  for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r] = _mm512_reduce_add_ps(acc[t]);
}

// ---- K-quants: 256-element superblocks with Q8_K-style activations ----

// One superblock of a row unpacked: codes (element order), int16 scales per maddubs lane, and
// what the activations' sums of 16 are multiplied by.
struct KBlock {
  __m512i w[4];   // 64 codes each
  __m512i sc[4];  // int16 lane j of w[z]'s maddubs output (elements 64z + 2j, +1): its scale
  __m256i off;    // int16 per 16 elements: Q6_K's 32·scale / Q3_K's 4·scale (subtracted),
                  // Q2_K / Q4_K / Q5_K's min
  __m256i s16;    // Q2_K / Q3_K / Q6_K: the 16 int16 scales, one per 16 elements (the repack)
  float d, dmin;  // Q2_K / Q4_K / Q5_K: d and dmin; Q3_K / Q6_K: d (dmin unused)
};

// Q3_K and Q6_K: signed scales whose code offset (4, 32) is subtracted through the sums of 16;
// no dmin. Q2_K / Q4_K / Q5_K: unsigned scales and mins taken with dmin.
template <DType kType>
inline constexpr bool kSignedScale =
    kType == DType::GGUF_Q6_K || kType == DType::GGUF_Q3_K || kType == DType::GGUF_IQ4_XS;
// IQ4_XS: the codes are IQ4_NL's signed int8 values (KBlock::w holds them as they are); the tile
// takes |w| against x with w's sign (maddubs then stays below saturation: 127·127·2), the repack
// stores them + 128 and removes 128·scale·Σx through the sums of 16, as Q6_K's 32.
template <DType kType>
inline constexpr bool kSignedCodes = kType == DType::GGUF_IQ4_XS;

// IQ4_NL / IQ4_XS: nibble → value, as a vpshufb table in every 128-bit lane.
HERD_GV inline __m512i iq4_lookup(__m512i nibbles) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
  return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(t), nibbles);
}

// vpermw indices spreading Q2_K / Q3_K / Q6_K's 16 int16 scales (one per 16 elements) over the
// maddubs lanes of the 4 code vectors: lane j of vector z covers elements 64z + 2j and +1.
inline constexpr struct Spread16 {
  alignas(64) int16_t v[4][32];
  constexpr Spread16() : v() {
    for (int z = 0; z < 4; ++z)
      for (int j = 0; j < 32; ++j) v[z][j] = int16_t((64 * z + 2 * j) / 16);
  }
} kSpread16{};

// vpermw indices spreading IQ4_XS's 8 int16 scales (one per 32 elements) the same way.
inline constexpr struct Spread8 {
  alignas(64) int16_t v[4][32];
  constexpr Spread8() : v() {
    for (int z = 0; z < 4; ++z)
      for (int j = 0; j < 32; ++j) v[z][j] = int16_t((64 * z + 2 * j) / 32);
  }
} kSpread8{};

// vpshufb controls spreading Q4_K / Q5_K's 8 unsigned byte scales (one per 32 elements, in bytes
// 0..7 of every 128-bit lane) as int16 over the maddubs lanes: vector z's lanes 0..15 (elements
// 64z .. 64z + 31) take scale 2z, lanes 16..31 scale 2z + 1. The high byte is zeroed (0x80).
inline constexpr struct Spread32 {
  alignas(64) int8_t v[4][64];
  constexpr Spread32() : v() {
    for (int z = 0; z < 4; ++z)
      for (int b = 0; b < 64; ++b) v[z][b] = b % 2 ? int8_t(-128) : int8_t(2 * z + b / 32);
  }
} kSpread32{};

// The same for the codes in memory order (vectors [0 | 2], [1 | 3], [4 | 6], [5 | 7]).
inline constexpr struct Spread32Perm {
  alignas(64) int8_t v[4][64];
  constexpr Spread32Perm() : v() {
    for (int z = 0; z < 4; ++z)
      for (int b = 0; b < 64; ++b)
        v[z][b] = b % 2 ? int8_t(-128) : int8_t((z & 1) + 4 * (z >> 1) + 2 * (b / 32));
  }
} kSpread32Perm{};

// x of `nb` superblocks in the Q4_K / Q5_K codes' memory order: per 128 elements, [0, 32) then
// [64, 96), then [32, 64) then [96, 128) (the low and the high nibbles of 64 code bytes).
HERD_GV inline void permute_k4_x(const int8_t* x, int64_t nb, int8_t* out) {
  for (int64_t i = 0; i < 2 * nb; ++i) {
    const __m512i a = _mm512_loadu_si512(x + 128 * i), b = _mm512_loadu_si512(x + 128 * i + 64);
    _mm512_storeu_si512(out + 128 * i, _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0)));
    _mm512_storeu_si512(out + 128 * i + 64, _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
}

// vpshufb control for the 16 int16 lanes of the mins (bytes 8..15 of each 128-bit lane): lane j
// (one per 16 elements) takes min j / 2.
inline constexpr struct MinIdx {
  alignas(32) int8_t v[32];
  constexpr MinIdx() : v() {
    for (int b = 0; b < 32; ++b) v[b] = b % 2 ? int8_t(-128) : int8_t(8 + b / 4);
  }
} kMinIdx{};

// Q4_K / Q5_K: the 12 packed bytes (16 read: the block goes on) as 8 scales (bytes 0..7) and 8
// mins (8..15), the bit algebra of gguf_scale_min_k4 on 32-bit words u0, u1, u2:
//   sc 0..3 = u0 & 0x3f..   sc 4..7 = (u2 & 0x0f..) | ((u0 >> 2) & 0x30..)
//   mn 0..3 = u1 & 0x3f..   mn 4..7 = ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..)
HERD_GV inline __m128i unpack_scale_min_k4(const uint8_t* p) {
  const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i a = _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)),  // u0 u2 u1 u2
                                   _mm_setr_epi32(0, 0, 0, 4));
  const __m128i b = _mm_srli_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0)), 2);
  const int k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k30 = 0x30303030;
  return _mm_or_si128(_mm_and_si128(a, _mm_setr_epi32(k6, k4, k6, k4)),
                      _mm_and_si128(b, _mm_setr_epi32(0, k30, 0, k30)));
}

// [hb, hb >> s] of a 32-byte load (per 16-bit lane: the bit fields a byte holds stay in place).
HERD_GV inline __m512i split_high_bits(const uint8_t* p, int s) {
  const __m512i hb =
      _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_srlv_epi16(
      hb, _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(short(s)), 1));
}

// kPerm (Q4_K / Q5_K): the codes in their memory order, for x permuted by permute_k4_x; else
// in element order.
template <DType kType, bool kPerm>
HERD_GV inline void unpack_k(const uint8_t* blk, KBlock& b) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  if constexpr (kType == DType::GGUF_IQ4_XS) {
    // qs[64h .. 64h + 63]: 128-bit lane k is sub-block 4h + k, low nibbles its first 16
    // elements, high nibbles the next 16: element order interleaves lo / hi lanes.
    const auto& q = *reinterpret_cast<const GgufIQ4_XS*>(blk);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m512i v = _mm512_loadu_si512(q.qs + 64 * h);
      const __m512i lo = _mm512_and_si512(v, m4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      b.w[2 * h] = iq4_lookup(
          _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi));
      b.w[2 * h + 1] = iq4_lookup(
          _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), hi));
    }
    // The 8 scales: low nibbles of scales_l interleaved lo / hi, high bits 2i of scales_h.
    uint32_t sl;
    std::memcpy(&sl, q.scales_l, 4);
    const __m128i l4 = _mm_cvtsi32_si128(int(sl));
    const __m128i low = _mm_cvtepu8_epi16(
        _mm_unpacklo_epi8(_mm_and_si128(l4, _mm_set1_epi8(0x0F)),
                          _mm_and_si128(_mm_srli_epi16(l4, 4), _mm_set1_epi8(0x0F))));
    const __m128i high = _mm_and_si128(_mm_srlv_epi16(_mm_set1_epi16(short(q.scales_h)),
                                                      _mm_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14)),
                                       _mm_set1_epi16(3));
    const __m128i s8 =
        _mm_sub_epi16(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi16(32));
    const __m512i s = _mm512_castsi128_si512(s8);
#pragma GCC unroll 4
    for (int z = 0; z < 4; ++z)
      b.sc[z] = _mm512_permutexvar_epi16(_mm512_load_si512(kSpread8.v[z]), s);
    b.s16 = _mm256_castsi128_si256(s8);
    b.off = _mm256_setzero_si256();  // the tile's sign trick needs no offset (the repack: 128)
    b.d = h2f(q.d);
    b.dmin = 0;
  } else if constexpr (kType == DType::GGUF_Q2_K || kType == DType::GGUF_Q3_K) {
    // qs[32h + l] holds elements 128h + 32j + l in bits 2j, 2j + 1: vector 2h + k takes shifts
    // 4k (its first 32 bytes) and 4k + 2 (the rest) of the 32 bytes; Q3_K's third bit is
    // hmask[l] bit 4h + j, shifted the same way per half.
    constexpr bool q3 = kType == DType::GGUF_Q3_K;
    const uint8_t* qs = q3 ? reinterpret_cast<const GgufQ3_K*>(blk)->qs
                           : reinterpret_cast<const GgufQ2_K*>(blk)->qs;
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512i hm = _mm512_setzero_si512();
    if constexpr (q3)
      hm = _mm512_broadcast_i64x4(_mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(reinterpret_cast<const GgufQ3_K*>(blk)->hmask)));
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m512i v =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h)));
#pragma GCC unroll 2
      for (int k = 0; k < 2; ++k) {
        const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16(short(4 * k)),
                                              _mm256_set1_epi16(short(4 * k + 2)), 1);
        __m512i w = _mm512_and_si512(_mm512_srlv_epi16(v, sh), m3);
        if constexpr (q3) {
          const __m512i hs = _mm512_inserti64x4(_mm512_set1_epi16(short(4 * h + 2 * k)),
                                                _mm256_set1_epi16(short(4 * h + 2 * k + 1)), 1);
          const __m512i bit = _mm512_and_si512(_mm512_srlv_epi16(hm, hs), _mm512_set1_epi8(1));
          w = _mm512_or_si512(w, _mm512_slli_epi16(bit, 2));
        }
        b.w[2 * h + k] = w;
      }
    }
    __m256i s16;
    if constexpr (q3) {
      const auto& q = *reinterpret_cast<const GgufQ3_K*>(blk);
      static_assert(offsetof(GgufQ3_K, scales) == sizeof(GgufQ3_K) - 14);
      // gguf_scales_q3k on 32-bit lanes [a0, a1, a0, a1] and [t, t, t, t] (the 12 bytes loaded
      // as bytes 2..13 of the block's last 16, so the load stays inside the block).
      const __m128i u = _mm_srli_si128(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + sizeof(GgufQ3_K) - 16)), 2);
      const __m128i a =
          _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 0, 1, 0)), _mm_setr_epi32(0, 0, 4, 4));
      const __m128i t =
          _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 2, 2, 2)), _mm_setr_epi32(0, 2, 4, 6));
      const __m128i sc =
          _mm_sub_epi8(_mm_or_si128(_mm_and_si128(a, _mm_set1_epi8(0x0F)),
                                    _mm_slli_epi32(_mm_and_si128(t, _mm_set1_epi8(0x03)), 4)),
                       _mm_set1_epi8(32));
      s16 = _mm256_cvtepi8_epi16(sc);
      b.off = _mm256_slli_epi16(s16, 2);  // 4·scale
      b.d = h2f(q.d);
      b.dmin = 0;
    } else {
      const auto& q = *reinterpret_cast<const GgufQ2_K*>(blk);
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q.scales));
      s16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, _mm_set1_epi8(0x0F)));
      b.off = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F)));
      b.d = h2f(q.d);
      b.dmin = h2f(q.dmin);
    }
    const __m512i s = _mm512_castsi256_si512(s16);
#pragma GCC unroll 4
    for (int z = 0; z < 4; ++z)
      b.sc[z] = _mm512_permutexvar_epi16(_mm512_load_si512(kSpread16.v[z]), s);
    b.s16 = s16;
  } else if constexpr (kType == DType::GGUF_Q6_K) {
    // Half h: ql[64h + l] holds elements 128h + l (low nibble, l < 32: j = 0; else j = 1) and
    // 128h + 64 + l (high nibble), so a 64-byte load's nibbles are two vectors in element order;
    // their high 2 bits are qh[32h + l] >> 2j: bits 0-1 / 2-3 for the first, 4-5 / 6-7 the second.
    const auto& q = *reinterpret_cast<const GgufQ6_K*>(blk);
    const __m512i m30 = _mm512_set1_epi8(0x30);
#pragma GCC unroll 4
    for (int h = 0; h < 2; ++h) {
      const __m512i l = _mm512_loadu_si512(q.ql + 64 * h);
      const __m512i hz =
          split_high_bits(q.qh + 32 * h, 2);  // bits 0-1 → 4-5: j = 0..1; 4-5: j = 2..3
      // (A & C) | B with C = 0x0F: the 4 low bits, then the 2 high bits already in place.
      b.w[2 * h] =
          _mm512_ternarylogic_epi32(l, _mm512_and_si512(_mm512_slli_epi16(hz, 4), m30), m4, 0xEC);
      b.w[2 * h + 1] =
          _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), _mm512_and_si512(hz, m30), m4, 0xEC);
    }
    const __m256i s16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q.scales)));
    const __m512i s = _mm512_castsi256_si512(s16);
#pragma GCC unroll 4
    for (int z = 0; z < 4; ++z)
      b.sc[z] = _mm512_permutexvar_epi16(_mm512_load_si512(kSpread16.v[z]), s);
    b.off = _mm256_slli_epi16(s16, 5);  // 32·scale: |·| ≤ 4096
    b.s16 = s16;
    b.d = h2f(q.d);
    b.dmin = 0;
  } else {
    const bool q5 = kType == DType::GGUF_Q5_K;
    const auto* q4 = reinterpret_cast<const GgufQ4_K*>(blk);
    const auto* q5b = reinterpret_cast<const GgufQ5_K*>(blk);
    const uint8_t* qs = q5 ? q5b->qs : q4->qs;
// qs[64h .. 64h + 63]: low nibbles are elements 128h + [0, 32) and 128h + [64, 96), high
// nibbles 128h + [32, 64) and 128h + [96, 128): two 256-bit swaps put them in element order.
#pragma GCC unroll 4
    for (int h = 0; h < 2; ++h) {
      const __m512i v = _mm512_loadu_si512(qs + 64 * h);
      const __m512i lo = _mm512_and_si512(v, m4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      if constexpr (kPerm) {  // sub-blocks [4h | 4h + 2], [4h + 1 | 4h + 3]
        b.w[2 * h] = lo, b.w[2 * h + 1] = hi;
      } else {
        b.w[2 * h] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
        b.w[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2));
      }
    }
    if (q5) {
      // qh byte l, bit 2c: element 64c + l; bit 2c + 1: 64c + 32 + l. Element order: vector c
      // takes bits 2c (its first 32 bytes) and 2c + 1 (the rest) of [hb | hb >> 1]; memory
      // order: vectors [0 | 2], [1 | 3], [4 | 6], [5 | 7] take bits 0, 1, 4, 5 of [hb | hb >> 2].
      const __m512i hz = split_high_bits(q5b->qh, kPerm ? 2 : 1);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const int bit = kPerm ? (c & 1) + 4 * (c >> 1) : 2 * c;
        const __mmask64 m = _mm512_test_epi8_mask(hz, _mm512_set1_epi8(char(1 << bit)));
        b.w[c] = _mm512_mask_add_epi8(b.w[c], m, b.w[c], _mm512_set1_epi8(16));
      }
    }
    const __m128i sm = unpack_scale_min_k4(q5 ? q5b->scales : q4->scales);
    const __m512i s4 = _mm512_broadcast_i32x4(sm);
    const auto& spread = kPerm ? kSpread32Perm.v : kSpread32.v;
#pragma GCC unroll 4
    for (int z = 0; z < 4; ++z) b.sc[z] = _mm512_shuffle_epi8(s4, _mm512_load_si512(spread[z]));
    b.off = _mm256_shuffle_epi8(_mm512_castsi512_si256(s4),
                                _mm256_load_si256(reinterpret_cast<const __m256i*>(kMinIdx.v)));
    uint32_t dd;
    std::memcpy(&dd, blk, 4);  // d, dmin: the first 4 bytes of Q4_K and Q5_K
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(int(dd)));
    b.d = _mm_cvtss_f32(f);
    b.dmin = _mm_cvtss_f32(_mm_movehdup_ps(f));
  }
}

// A superblock's Σ scale · code · x in 8 int32 lanes (exact). Two chains of two: one chain of
// four would wait on the vpdpwssd latency.
template <bool kSigned>
HERD_GV inline __m512i scaled_part(const KBlock& b, const int8_t* x, int z, __m512i a) {
  __m512i xv = _mm512_loadu_si512(x + 64 * z), w = b.w[z];
  if constexpr (kSigned) {  // |w| against x with w's sign
    xv = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(w), _mm512_setzero_si512(), xv);
    w = _mm512_abs_epi8(w);
  }
  return _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(w, xv), b.sc[z]);
}
template <bool kSigned = false>
HERD_GV inline __m256i scaled_dot(const KBlock& b, const int8_t* x) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i ai =
      _mm512_add_epi32(scaled_part<kSigned>(b, x, 2, scaled_part<kSigned>(b, x, 0, zero)),
                       scaled_part<kSigned>(b, x, 3, scaled_part<kSigned>(b, x, 1, zero)));
  return _mm256_add_epi32(_mm512_castsi512_si256(ai), _mm512_extracti64x4_epi64(ai, 1));
}

template <DType kType>
inline constexpr int64_t kKBytes = kType == DType::GGUF_Q6_K     ? sizeof(GgufQ6_K)
                                   : kType == DType::GGUF_Q5_K   ? sizeof(GgufQ5_K)
                                   : kType == DType::GGUF_Q2_K   ? sizeof(GgufQ2_K)
                                   : kType == DType::GGUF_Q3_K   ? sizeof(GgufQ3_K)
                                   : kType == DType::GGUF_IQ4_XS ? sizeof(GgufIQ4_XS)
                                                                 : sizeof(GgufQ4_K);

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

// Lane j = the sum of v[j]'s 8 lanes (exact in int32, any order).
HERD_GV inline __m256i reduce8x8(const __m256i* v) {
  const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
  // a: v0..v3 partial sums of the low 128 bits, then of the high 128 bits; b: v4..v7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                          _mm256_permute2x128_si256(a, b, 0x31));
}

// [Σ a, Σ b, Σ c, Σ d] of four vectors' 8 lanes (exact in int32, any order).
HERD_GV inline __m128i sum_rows(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// Lane j = the sum of block j's 8 lanes, where d[p] holds block 2p in lanes 0-7 and block
// 2p + 1 in lanes 8-15 (exact in int32, any order). A transpose-and-add tree in 512 bits: 22
// instructions for the 16 totals, where two reduce8x8 of the halves took ~42 (vphaddd is three
// micro-ops).
HERD_GV inline __m512i reduce16x8(const __m512i* d) {
  __m512i s[4], u[2];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)  // per 128-bit lane: [a0 + a2, b0 + b2, a1 + a3, b1 + b3]
    s[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(d[2 * i], d[2 * i + 1]),
                            _mm512_unpackhi_epi32(d[2 * i], d[2 * i + 1]));
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)  // 128-bit lane k: [Σ d[4i] lane k, .. Σ d[4i + 3] lane k]
    u[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(s[2 * i], s[2 * i + 1]),
                            _mm512_unpackhi_epi64(s[2 * i], s[2 * i + 1]));
  // Blocks 2p and 2p + 1 are 128-bit lanes 0 + 1 and 2 + 3 of d[p]:
  // [t0 t2 t4 t6 | t1 t3 t5 t7 | t8 t10 t12 t14 | t9 t11 t13 t15].
  const __m512i t = _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], 0x88),
                                     _mm512_shuffle_i32x4(u[0], u[1], 0xdd));
  return _mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15), t);
}

// One row × T tokens (decode, small batches). A superblock's scaled integer dot and its mins /
// offsets are summed exactly to two int32 (8 superblocks' sums reduced together), then added with
// the reference's two FMAs in its order: so results equal gguf_dot_row (and the repacked path
// below) bit for bit.
template <DType kTypeArg>
struct KTile {
  using Ctx = gemm_detail::Ctx;
  static constexpr int kRows = 4;
  static constexpr DType kType = kTypeArg;
  // Q4_K / Q5_K read x in the codes' memory order (permute_k4_x), saving 4 shuffles per
  // superblock and row.
  static constexpr bool kPermutedX = kType == DType::GGUF_Q4_K || kType == DType::GGUF_Q5_K;
  // Tasks with at least this many tokens repack 16 rows at a time (below, the per-row tile
  // reuses each unpacked superblock for up to 8 tokens). Measured on 16 experts' [2048, 1024]
  // from memory, 1 thread (bench_kernels GgufExperts): Q4_K repacked 4.3 vs 5.1 ms at 8 tokens,
  // 5.6 vs 7.7 at 12; Q6_K (no x permutation, cheaper tile) 5.0 vs 4.0 at 8, 5.4 vs 6.0 at 12.
  static constexpr int64_t kRepackTokens = kPermutedX ? 8 : 12;
  HERD_GV static void repacked(const Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    k_repacked<kType>(c, r0, r1, t0, t1);
  }
  static constexpr int G = 8;
  // Rows of more than one group go one by one (a tile ahead still prefetched), so the tile is
  // read in address order: 4 rows' groups in turns were 4 streams, which the hardware
  // prefetchers follow poorly. [4096, 4096] decode from memory (bench_kernels GgufDecode, Zen 5,
  // 2 threads, medians of 3, 3 interleaved pairs): Q6_K 511-538 -> 345-415 us, Q4_K 355-363 ->
  // 322-329. A row of one group (the bench preset's) is read in order already: its 4 rows stay
  // interleaved, for independent chains.
  template <int T, int R>
  HERD_GV static void run(const Ctx& c, int64_t r, int64_t t0) {
    const bool near = R * c.rb <= kNearPrefetch;
    if (R > 1 && c.cols > 256 * G) {
      for (int q = 0; q < R; ++q)
        near ? run_impl<T, 1, true>(c, r + q, t0, R) : run_impl<T, 1, false>(c, r + q, t0, R);
    } else {
      near ? run_impl<T, R, true>(c, r, t0, R) : run_impl<T, R, false>(c, r, t0, R);
    }
  }
  // Prefetched: the same bytes `ahead` rows on (the next tile's).
  template <int T, int R, bool kNear>
  HERD_GV static void run_impl(const Ctx& c, int64_t r, int64_t t0, int64_t ahead) {
    const int64_t nb = c.cols / 256;
    // Per token: its activation codes and sums of 16 (loop invariants the compiler would reload:
    // the stores below may alias `c` as far as it can tell).
    const int8_t* xq[T];
    const int16_t* xs[T];
    const float* xd[T];
    for (int t = 0; t < T; ++t) {
      xq[t] = c.xq + (t0 + t - c.x0) * c.kpad;
      xs[t] = c.xs + (t0 + t) * (c.kpad / 16);
      xd[t] = c.xd + (t0 + t) * c.nd;
    }
    const uint8_t* const w0 = c.w + r * c.rb;
    const int64_t rb = c.rb;
    const uintptr_t next = reinterpret_cast<uintptr_t>(w0) + uintptr_t(ahead * rb);
    // One token over 4 rows: the rows' chains run in the 4 lanes of one vector (kLanes).
    constexpr bool kLanes = R == 4 && T == 1;
    float acc[R][T] = {};
    __m128 accv = _mm_setzero_ps();
    for (int64_t i0 = 0; i0 < nb; i0 += G) {
      const int g = int(std::min<int64_t>(G, nb - i0));
      __m256i va[R][T][G], vo[R][T][G];
      alignas(16) float dd[G][R], dm[G][R];
      for (int q = 0; q < R; ++q) {
        const uint8_t* row = w0 + q * rb;
        for (int j = 0; j < G; ++j) {
          if (j >= g) {
            for (int t = 0; t < T; ++t) va[q][t][j] = vo[q][t][j] = _mm256_setzero_si256();
            continue;
          }
          const int64_t i = i0 + j;
          // The next R rows (the next tile's contiguous bytes), one superblock's worth per
          // superblock here: a tile ahead, into L2. The hardware prefetchers alone left decode
          // from memory at a third of the speed in cache (the rows of a tile are read in turns);
          // T0 prefetches at 60% (they hold the L1's miss buffers); T1 at about 100%.
          const uintptr_t ahead = next + uintptr_t((q * nb + i) * kKBytes<kType>);
          prefetch_ahead<kKBytes<kType>, kNear>(ahead);
          KBlock b;
          unpack_k<kType, kPermutedX>(row + i * kKBytes<kType>, b);
          dd[j][q] = b.d, dm[j][q] = b.dmin;
          for (int t = 0; t < T; ++t) {
            const int8_t* x = xq[t] + 256 * i;
            const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs[t] + 16 * i));
            const __m256i o = _mm256_madd_epi16(b.off, bs);  // 8 int32
            const __m256i a8 = scaled_dot<kSignedCodes<kType>>(b, x);
            va[q][t][j] = kSignedScale<kType> ? _mm256_sub_epi32(a8, o) : a8;
            vo[q][t][j] = o;
          }
        }
      }
      if constexpr (kLanes) {
        // Per superblock the 4 rows' exact totals side by side, then the reference's two FMAs in
        // its order, lane by lane: the same operations as the scalar chains below, bit for bit,
        // where those took ~9 scalar instructions per row and superblock. Only the superblocks
        // present are reduced (a 1024-wide row has 4 of the group's 8).
        for (int j = 0; j < g; ++j) {
          const __m128 xdj = _mm_set1_ps(xd[0][i0 + j]);
          const __m128 sv =
              _mm_cvtepi32_ps(sum_rows(va[0][0][j], va[1][0][j], va[2][0][j], va[3][0][j]));
          accv = _mm_fmadd_ps(sv, _mm_mul_ps(_mm_load_ps(dd[j]), xdj), accv);
          if constexpr (!kSignedScale<kType>) {
            const __m128 mv =
                _mm_cvtepi32_ps(sum_rows(vo[0][0][j], vo[1][0][j], vo[2][0][j], vo[3][0][j]));
            accv = _mm_fnmadd_ps(mv, _mm_mul_ps(_mm_load_ps(dm[j]), xdj), accv);
          }
        }
        continue;
      }
      alignas(32) int32_t is[R][T][G], im[R][T][G];
      for (int q = 0; q < R; ++q)
        for (int t = 0; t < T; ++t) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(is[q][t]), reduce8x8(va[q][t]));
          if constexpr (!kSignedScale<kType>)
            _mm256_store_si256(reinterpret_cast<__m256i*>(im[q][t]), reduce8x8(vo[q][t]));
        }
      // R·T independent FMA chains, interleaved (one chain alone is bound by the FMA latency).
      for (int j = 0; j < g; ++j)
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const float xdj = xd[t][i0 + j];
#pragma GCC unroll 4
          for (int q = 0; q < R; ++q) {
            acc[q][t] = std::fma(float(is[q][t][j]), dd[j][q] * xdj, acc[q][t]);
            if constexpr (!kSignedScale<kType>)
              acc[q][t] = std::fma(float(im[q][t][j]), -(dm[j][q] * xdj), acc[q][t]);
          }
        }
    }
    if constexpr (kLanes) {
      _mm_storeu_ps(c.y + t0 * c.ys + r, accv);
      return;
    }
    for (int q = 0; q < R; ++q)
      for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r + q] = acc[q][t];
  }
};

// In place: r[i] lane j becomes the old r[j] lane i (a 16 × 16 transpose of 32-bit elements).
HERD_GV inline void transpose16(__m512i* r) {
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

// Prefill: 16 rows' superblock repacked once per task (codes as [64 chunks of 4 K][16 rows]
// [4 bytes], scales and offsets as 16-row lanes) and reused by every token of the task: one
// vpdpbusd of a 64-byte chunk against 4 broadcast bytes of x serves 16 rows (as Q8GI does in
// gemm_vnni_il.cc). Each row's exact superblock totals take the reference's two FMAs.
template <DType kType>
struct KRepacked {
  // Scale sub-blocks: 16 of 16 elements (Q2_K, Q3_K, Q6_K) or 8 of 32 (Q4_K, Q5_K, IQ4_XS).
  static constexpr int kSub =
      kType == DType::GGUF_Q4_K || kType == DType::GGUF_Q5_K || kType == DType::GGUF_IQ4_XS ? 8
                                                                                            : 16;
  static constexpr int kChunks = 64 / kSub;  // 4-K chunks per sub-block
  alignas(64) uint8_t codes[64 * 64];
  alignas(64) int32_t sc[kSub][16];
  alignas(64) int32_t off[8][16];  // int16 pairs: offsets of the sums 2p, 2p + 1 (vpdpwssd)
  alignas(64) float d[16], dmin[16];

  HERD_GV void pack(const uint8_t* w, int64_t rb, int64_t i, int nr) {
    __m512i v[4][16];
    for (int q = 0; q < 16; ++q) {
      if (q >= nr) {  // rows past the matrix: zero codes and scales
        for (int z = 0; z < 4; ++z) v[z][q] = _mm512_setzero_si512();
        for (int s = 0; s < kSub; ++s) sc[s][q] = 0;
        for (int p = 0; p < 8; ++p) off[p][q] = 0;
        d[q] = dmin[q] = 0;
        continue;
      }
      const uint8_t* blk = w + q * rb + i * kKBytes<kType>;
      KBlock b;
      unpack_k<kType, false>(blk, b);
      for (int z = 0; z < 4; ++z)
        v[z][q] =
            kSignedCodes<kType> ? _mm512_xor_si512(b.w[z], _mm512_set1_epi8(char(0x80))) : b.w[z];
      if constexpr (kSignedCodes<kType>)  // 128·scale per 16 elements (the codes' + 128)
        b.off = _mm256_slli_epi16(
            _mm256_permutexvar_epi16(
                _mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), b.s16),
            7);
      alignas(32) int16_t o16[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(o16), b.off);
      for (int p = 0; p < 8; ++p)
        off[p][q] =
            int32_t(uint32_t(uint16_t(o16[2 * p])) | (uint32_t(uint16_t(o16[2 * p + 1])) << 16));
      if constexpr (kSub == 16 || kSignedCodes<kType>) {
        alignas(32) int16_t s16[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(s16), b.s16);
        for (int s = 0; s < kSub; ++s) sc[s][q] = s16[s];
      } else {
        alignas(16) uint8_t sm[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(sm), unpack_scale_min_k4(blk + 4));
        for (int s = 0; s < 8; ++s) sc[s][q] = sm[s];
      }
      d[q] = b.d, dmin[q] = b.dmin;
    }
    for (int z = 0; z < 4; ++z) {
      transpose16(v[z]);
      for (int k = 0; k < 16; ++k) _mm512_store_si512(codes + (16 * z + k) * 64, v[z][k]);
    }
  }

  // acc[n] (16 rows' lanes) plus this superblock's terms for N tokens: each 64-byte chunk of
  // codes is loaded once for the N tokens (N independent vpdpbusd chains).
  template <int N>
  HERD_GV void dot(const int8_t* const* x, const int16_t* const* bs, const float* xd,
                   __m512* acc) const {
    __m512i isum[N], io[N];
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) isum[n] = io[n] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int s = 0; s < kSub; ++s) {
      __m512i a[N];
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n) a[n] = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int ch = 0; ch < kChunks; ++ch) {
        const int C = s * kChunks + ch;
        const __m512i w = _mm512_load_si512(codes + 64 * C);
#pragma GCC unroll 8
        for (int n = 0; n < N; ++n) {
          int32_t xv;
          std::memcpy(&xv, x[n] + 4 * C, 4);
          a[n] = _mm512_dpbusd_epi32(a[n], w, _mm512_set1_epi32(xv));
        }
      }
      const __m512i scv = _mm512_load_si512(sc[s]);
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n)
        isum[n] = _mm512_add_epi32(isum[n], _mm512_mullo_epi32(a[n], scv));
    }
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) {
      const __m512i o = _mm512_load_si512(off[p]);
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n) {
        int32_t pair;
        std::memcpy(&pair, bs[n] + 2 * p, 4);
        io[n] = _mm512_dpwssd_epi32(io[n], o, _mm512_set1_epi32(pair));
      }
    }
    const __m512 dv = _mm512_load_ps(d), dmv = _mm512_load_ps(dmin);
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) {
      const __m512 xdv = _mm512_set1_ps(xd[n]);
      if constexpr (kSignedScale<kType>) {
        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[n], io[n])),
                                 _mm512_mul_ps(dv, xdv), acc[n]);
      } else {
        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[n]), _mm512_mul_ps(dv, xdv), acc[n]);
        acc[n] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(io[n]),
                            _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(dmv, xdv)), acc[n]);
      }
    }
  }
};

// f.template operator()<N>(t) over a task's nt tokens in runs of at most 6 (the repacked dots
// keep 6 tokens' accumulators in registers), as even as they can be: each run loads every code
// chunk once, so 8 tokens go as 4 + 4, not 6 + 2 (a run of 2 pays the loads for 2 tokens).
template <class F>
inline void in_token_runs(int64_t nt, F&& f) {
  const int64_t runs = (nt + 5) / 6;
  int64_t t = 0;
  for (int64_t r = 0; r < runs; ++r) {
    const int64_t len = nt / runs + (r < nt % runs ? 1 : 0);
    switch (len) {
      case 6:
        f.template operator()<6>(t);
        break;
      case 5:
        f.template operator()<5>(t);
        break;
      case 4:
        f.template operator()<4>(t);
        break;
      case 3:
        f.template operator()<3>(t);
        break;
      case 2:
        f.template operator()<2>(t);
        break;
      default:
        f.template operator()<1>(t);
        break;
    }
    t += len;
  }
}

// Tokens t .. t + N − 1 of the task (t0 + t is the batch row) on superblock i of the packed rows.
template <int N, DType kType>
HERD_GV inline void k_repacked_dot(const Ctx& c, const KRepacked<kType>& pk, int64_t i, int64_t t0,
                                   int64_t t, float* acc) {
  const int8_t* x[N];
  const int16_t* bs[N];
  float xd[N];
  __m512 a[N];
  for (int n = 0; n < N; ++n) {
    const int64_t tok = t0 + t + n;
    x[n] = c.xq + tok * c.kpad + 256 * i;
    bs[n] = c.xs + tok * (c.kpad / 16) + 16 * i;
    xd[n] = c.xd[tok * c.nd + i];
    a[n] = _mm512_load_ps(acc + 16 * (t + n));
  }
  pk.template dot<N>(x, bs, xd, a);
  for (int n = 0; n < N; ++n) _mm512_store_ps(acc + 16 * (t + n), a[n]);
}

template <DType kType>
HERD_GV void k_repacked(const Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  thread_local KRepacked<kType> pk;
  thread_local AlignedBuffer<float> accb;
  const int64_t nt = t1 - t0, nb = c.cols / 256;
  float* acc = accb.ensure(size_t(nt * 16));
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int nr = int(std::min<int64_t>(16, r1 - rb));
    std::fill(acc, acc + nt * 16, 0.0f);
    for (int64_t i = 0; i < nb; ++i) {
      // The next superblock of the 16 rows (16 streams a row apart), fetched while this one's
      // dots run, as B32Tile::repacked does (there it took a Q8_0 prefill from 37% to 29% in
      // the pack; here it measured within noise, +2%).
      if (i + 1 < nb)
        for (int q = 0; q < nr; ++q)
          prefetch_ahead<kKBytes<kType>, true>(
              reinterpret_cast<uintptr_t>(c.w + (rb + q) * c.rb + (i + 1) * kKBytes<kType>));
      pk.pack(c.w + rb * c.rb, c.rb, i, nr);
      in_token_runs(nt, [&]<int N>(int64_t t) { k_repacked_dot<N>(c, pk, i, t0, t, acc); });
    }
    for (int64_t t = 0; t < nt; ++t)
      for (int q = 0; q < nr; ++q) c.y[(t0 + t) * c.ys + rb + q] = acc[16 * t + q];
  }
}

// Q8_K stored as a weight: 256 int8 codes, f32 d.
struct Q8KTile {
  using Ctx = gemm_detail::Ctx;
  template <int T, int R>
  HERD_GV static void run(const Ctx& c, int64_t r, int64_t t0) {
    const auto* row = reinterpret_cast<const GgufQ8_K*>(c.w + r * c.rb);
    float acc[T] = {};
    for (int64_t i = 0; i < c.cols / 256; ++i) {
      __m512i wa[4];
      __mmask64 neg[4];
      for (int z = 0; z < 4; ++z) {
        const __m512i w = _mm512_loadu_si512(row[i].qs + 64 * z);
        wa[z] = _mm512_abs_epi8(w);
        neg[z] = _mm512_movepi8_mask(w);
      }
      for (int t = 0; t < T; ++t) {
        const int8_t* x = c.xq + (t0 + t) * c.kpad + 256 * i;
        __m512i ai = _mm512_setzero_si512();
        for (int z = 0; z < 4; ++z) {
          const __m512i xv = _mm512_loadu_si512(x + 64 * z);
          ai = _mm512_dpbusd_epi32(ai, wa[z],
                                   _mm512_mask_sub_epi8(xv, neg[z], _mm512_setzero_si512(), xv));
        }
        acc[t] = std::fma(float(_mm512_reduce_add_epi32(ai)), row[i].d * c.xd[(t0 + t) * c.nd + i],
                          acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r] = acc[t];
  }
};

// ---- 32-element blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): exact block totals in the reference's
// order ----

// gguf_sum16 of the 16 lanes: p[l] + p[l + 8], then + 4, + 2, + 1.
HERD_GV inline float sum16(__m512 p) {
  const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(p), _mm512_extractf32x8_ps(p, 1));
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

// The 16 f16 words at word off + (S / 2)·j (j < 16) of a full group of S-byte blocks, as
// floats: each block's d (off 0) or m (off 1). Two-source word permutes over the 128-byte
// windows that hold them, from masked loads that stay inside the group, replace a 16-lane
// gather, which was ~30% of a Q8_0 decode tile (perf: the gather's latency stalled the tile).
template <int64_t S, int kOff>
struct GroupHalves {
  static constexpr int64_t kWords = (S / 2) * 15 + kOff + 1;  // words read: up to the last
  static constexpr int kWindows = int((kWords + 63) / 64);
  struct Table {
    alignas(64) uint16_t idx[4][32] = {};
    uint32_t lanes[4] = {};
  };
  static constexpr Table table() {
    Table t;
    for (int j = 0; j < 16; ++j) {
      const int w = int(S / 2) * j + kOff;
      t.idx[w / 64][j] = uint16_t(w % 64);
      t.lanes[w / 64] |= 1u << j;
    }
    return t;
  }
  static constexpr __mmask32 load_mask(int64_t words) {
    return words >= 32 ? ~__mmask32(0) : words <= 0 ? 0 : __mmask32((1u << words) - 1);
  }
  HERD_GV static __m512 get(const void* group) {
    static constexpr Table t = table();
    const auto* p = static_cast<const uint16_t*>(group);
    __m512i out = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int q = 0; q < kWindows; ++q) {
      const __m512i a = _mm512_maskz_loadu_epi16(load_mask(kWords - 64 * q), p + 64 * q);
      const __m512i b = _mm512_maskz_loadu_epi16(load_mask(kWords - 64 * q - 32), p + 64 * q + 32);
      const __m512i v = _mm512_permutex2var_epi16(
          a, _mm512_load_si512(reinterpret_cast<const void*>(t.idx[q])), b);
      out = _mm512_mask_mov_epi16(out, __mmask32(t.lanes[q]), v);
    }
    return _mm512_cvtph_ps(_mm512_castsi512_si256(out));
  }
};

// Every path adds block i into partial sum i mod 16 (gguf_dot_row): the decode tile keeps the 16
// partial sums in one vector's lanes, the repacked prefill path in 16 vectors whose lanes are
// rows; both finish with the same halving tree, so they agree bit for bit.
template <DType kTypeArg>
struct B32Tile {
  using Ctx = gemm_detail::Ctx;
  static constexpr DType kType = kTypeArg;
  static constexpr bool kQ8 = kType == DType::GGUF_Q8_0;
  // kSigned: signed int8 codes (Q8_0's, IQ4_NL's looked-up values), taken + 128 (kBias).
  static constexpr bool kSigned = kQ8 || kType == DType::GGUF_IQ4_NL;
  // kMin: w = d·u + m (Q4_1, Q5_1); kFive: a fifth code bit in qh (Q5_0, Q5_1).
  static constexpr bool kMin = kType == DType::GGUF_Q4_1 || kType == DType::GGUF_Q5_1;
  static constexpr bool kFive = kType == DType::GGUF_Q5_0 || kType == DType::GGUF_Q5_1;
  // The code offset Q4_0 / Q5_0 subtract (through Σq_x of the block).
  static constexpr int32_t kOffset = kType == DType::GGUF_Q4_0   ? 8
                                     : kType == DType::GGUF_Q5_0 ? 16
                                                                 : 0;
  // What the unsigned codes the dots take exceed the values by: the signed codes go in + 128
  // (xor 0x80), the Q4_0 / Q5_0 codes carry their offset. A power of two, removed exactly through
  // Σq_x of the block.
  static constexpr int32_t kBias = kSigned ? 128 : kOffset;
  static_assert(kBias == 0 || std::has_single_bit(uint32_t(kBias)));
  using Block = std::conditional_t<
      kQ8, GgufQ8_0,
      std::conditional_t<
          kType == DType::GGUF_Q4_0, GgufQ4_0,
          std::conditional_t<kType == DType::GGUF_Q4_1, GgufQ4_1,
                             std::conditional_t<kType == DType::GGUF_Q5_0, GgufQ5_0,
                                                std::conditional_t<kType == DType::GGUF_Q5_1,
                                                                   GgufQ5_1, GgufIQ4_NL>>>>>;
  static constexpr int kRows = 4;  // rows per tile for a single token
  static constexpr int G = 16;     // blocks per group
  // Tasks with at least this many tokens repack (KTile says why). Unlike the K-quants', this
  // repack pays a float epilogue per 32-element block and token, so the tile wins longer: 16
  // experts' [2048, 1024] from memory, 2 threads (bench_kernels GgufExperts, Zen 5), tile vs
  // repacked: Q8_0 3.4 vs 6.2 ms at 12 tokens, 4.6 vs 6.5 at 16, 5.8 vs 5.9 at 20; Q4_0 3.1 vs
  // 4.7, 4.1 vs 5.7, 5.0 vs 5.9. In a Q8_0 pp256 (~16 tokens per expert) the MoE products went
  // from 225 to 196-200 ms.
  static constexpr int64_t kRepackTokens = 24;

  // Blocks j and j + 1 (those below g) as 64 codes in element order: Q8_0's and IQ4_NL's signed
  // values, the Q4s' / Q5s' unsigned 4- / 5-bit codes; missing blocks read as zero and are never
  // touched.
  template <bool kFull = false>
  HERD_GV static __m512i load_pair(const Block* row, int j, int g) {
    if constexpr (kQ8) {
      if constexpr (kFull)
        return join256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[j].qs)),
                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[j + 1].qs)));
      const __mmask32 ma = j < g ? ~__mmask32(0) : 0, mb = j + 1 < g ? ~__mmask32(0) : 0;
      return join256(_mm256_maskz_loadu_epi8(ma, row[j].qs),
                     _mm256_maskz_loadu_epi8(mb, row[j + 1].qs));
    } else {
      __m128i a, b;
      if constexpr (kFull) {
        a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row[j].qs));
        b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row[j + 1].qs));
      } else {
        a = _mm_maskz_loadu_epi8(j < g ? __mmask16(0xffff) : 0, row[j].qs);
        b = _mm_maskz_loadu_epi8(j + 1 < g ? __mmask16(0xffff) : 0, row[j + 1].qs);
      }
      const __m128i m = _mm_set1_epi8(0x0F);
      const __m512i u =
          join256(_mm256_setr_m128i(_mm_and_si128(a, m), _mm_and_si128(_mm_srli_epi16(a, 4), m)),
                  _mm256_setr_m128i(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m)));
      if constexpr (kType == DType::GGUF_IQ4_NL) return iq4_lookup(u);
      if constexpr (kFive) {  // lane e holds element e of the pair: bit e of the two qh words
        uint32_t ha = 0, hb = 0;
        if (kFull || j < g) std::memcpy(&ha, row[j].qh, 4);
        if (kFull || j + 1 < g) std::memcpy(&hb, row[j + 1].qh, 4);
        return _mm512_mask_add_epi8(u, __mmask64(ha) | (__mmask64(hb) << 32), u,
                                    _mm512_set1_epi8(0x10));
      }
      return u;
    }
  }

  // One row's group of 16 blocks (g of them present) for T tokens.
  template <int T, bool kFull>
  HERD_GV static void group(const Ctx& c, const Block* row, int64_t i0, int g, int64_t t0,
                            int64_t ahead, __m512* acc) {
    const __mmask16 valid = kFull ? __mmask16(0xffff) : __mmask16((1u << g) - 1);
    const __m512i off =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(int32_t(sizeof(Block))));
    // The codes first, as plain loads: from memory they miss together, where the gather below
    // (microcoded) would take the misses of the group's lines one after another. The same
    // group of the next tile (`ahead` bytes on: the tile's rows are contiguous) is prefetched:
    // a tile ahead covers the memory latency. Into L1 (T0) for tiles up to 8 KiB, into L2 above:
    // with the tile read in address order, the bench preset's Q8_0 decode (4.3 KiB tiles) ran ~7%
    // faster with T0 (Zen 5, 3 interleaved runs each), where the K-quant tiles take T1 above
    // 4 KiB (their T0 prefetches held the L1's miss buffers).
    __m512i wa[8];
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) {
      const __m512i w = load_pair<kFull>(row, 2 * p, g);
      wa[p] = kSigned ? _mm512_xor_si512(w, _mm512_set1_epi8(char(0x80))) : w;
    }
    if constexpr (kFull) {
      const uintptr_t next = reinterpret_cast<uintptr_t>(row) + uintptr_t(ahead);
      if (ahead <= 2 * kNearPrefetch)
        prefetch_ahead<G * sizeof(Block), true>(next);
      else
        prefetch_ahead<G * sizeof(Block), false>(next);
    }
    // The group's f16 d (and m): by word permutes in a full group, else one gather of each
    // present block's first 4 bytes.
    __m512 dw, mw = _mm512_setzero_ps();
    if constexpr (kFull) {
      dw = GroupHalves<sizeof(Block), 0>::get(row);
      if constexpr (kMin) mw = GroupHalves<sizeof(Block), 1>::get(row);
    } else {
      const __m512i dm = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, off, row, 1);
      dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
      if constexpr (kMin) mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)));
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      // x is zero padded to a multiple of 64 and the missing blocks' codes are zero.
      const int8_t* x = c.xq + (t0 + t) * c.kpad + 32 * i0;
      __m512i v[8];
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) {
        if (!kFull && 2 * p >= g) {
          v[p] = _mm512_setzero_si512();
          continue;
        }
        v[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wa[p], _mm512_loadu_si512(x + 64 * p));
      }
      // Block i0 + j's total in lane j (i0 is a multiple of 16).
      __m512i tot = reduce16x8(v);
      const __m512 xd = _mm512_maskz_loadu_ps(valid, c.xd + (t0 + t) * c.nd + i0);
      __m512i xs = _mm512_setzero_si512();  // Σq_x per block
      if constexpr (kBias != 0) {
        xs = _mm512_madd_epi16(_mm512_maskz_loadu_epi16(__mmask32((uint64_t(1) << (2 * g)) - 1),
                                                        c.xs + (t0 + t) * (c.kpad / 16) + 2 * i0),
                               _mm512_set1_epi16(1));
        tot = _mm512_sub_epi32(tot, _mm512_slli_epi32(xs, std::countr_zero(uint32_t(kBias))));
      }
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot), _mm512_mul_ps(dw, xd), acc[t]);
      if constexpr (kMin)
        acc[t] =
            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(valid, c.xsy + (t0 + t) * c.nd + i0), mw, acc[t]);
    }
  }

  template <int T, int R>
  HERD_GV static void run(const Ctx& c, int64_t r, int64_t t0) {
    const int64_t nb = c.cols / 32;
    // Row by row, so the tile is read in address order (the rows are contiguous): from memory
    // the hardware prefetchers follow one stream where the 4 rows' groups in turns were 4.
    __m512 acc[R][T];
    for (int q = 0; q < R; ++q)
      for (int t = 0; t < T; ++t) acc[q][t] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int q = 0; q < R; ++q) {
      for (int64_t i0 = 0; i0 < nb; i0 += G) {
        const int g = int(std::min<int64_t>(G, nb - i0));
        const auto* row = reinterpret_cast<const Block*>(c.w + (r + q) * c.rb) + i0;
        if (g == G)
          group<T, true>(c, row, i0, g, t0, R * c.rb, acc[q]);
        else
          group<T, false>(c, row, i0, g, t0, R * c.rb, acc[q]);
      }
    }
    for (int q = 0; q < R; ++q)
      for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r + q] = sum16(acc[q][t]);
  }

  HERD_GV static void repacked(const Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1);
};

// Prefill: 16 rows × 8 blocks repacked as [64 chunks of 4 K][16 rows][4 bytes] of unsigned codes
// (Q8_0 / IQ4_NL: value + 128; Q4_x / Q5_x: their codes), the blocks' d (and m) as 16-row lanes.
// The code offset (128, 8 or 16) times Σq_x of the block is removed exactly; then the reference's
// FMAs.
template <DType kType>
struct B32Repacked {
  static constexpr bool kSigned = B32Tile<kType>::kSigned, kMin = B32Tile<kType>::kMin;
  static constexpr int32_t kBias = kSigned ? 128 : B32Tile<kType>::kOffset;
  using Block = typename B32Tile<kType>::Block;
  alignas(64) uint8_t codes[64 * 64];
  alignas(64) float d[8][16], m[8][16];

  HERD_GV void pack(const uint8_t* w, int64_t rb, int64_t i0, int nblk, int nr) {
    __m512i v[4][16];
    for (int q = 0; q < 16; ++q) {
      const auto* row = reinterpret_cast<const Block*>(w + q * rb) + i0;
      const int g = q < nr ? nblk : 0;
      for (int j = 0; j < 8; ++j) {
        d[j][q] = j < g ? h2f(row[j].d) : 0.0f;
        if constexpr (kMin) m[j][q] = j < g ? h2f(row[j].m) : 0.0f;
      }
      for (int z = 0; z < 4; ++z) {
        const __m512i p = B32Tile<kType>::load_pair(row, 2 * z, g);
        v[z][q] = kSigned ? _mm512_xor_si512(p, _mm512_set1_epi8(char(0x80))) : p;
      }
    }
    for (int z = 0; z < 4; ++z) {
      transpose16(v[z]);
      for (int k = 0; k < 16; ++k) _mm512_store_si512(codes + (16 * z + k) * 64, v[z][k]);
    }
  }

  // acc[n]: token n's 16 partial sums (16 rows' lanes each); blocks i0 .. i0 + nblk - 1. Each
  // 64-byte chunk of codes is loaded once for the N tokens.
  template <int N>
  HERD_GV void dot(const int8_t* const* x, const int16_t* const* bs, const float* const* xd,
                   const float* const* xsy, int64_t i0, int nblk, float* const* acc) const {
    for (int j = 0; j < nblk; ++j) {
      __m512i a[N];
      int32_t xs[N];
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n) {
        xs[n] = int32_t(bs[n][2 * j]) + bs[n][2 * j + 1];
        a[n] = _mm512_set1_epi32(-kBias * xs[n]);
      }
#pragma GCC unroll 8
      for (int ch = 0; ch < 8; ++ch) {
        const __m512i w = _mm512_load_si512(codes + 64 * (8 * j + ch));
#pragma GCC unroll 8
        for (int n = 0; n < N; ++n) {
          int32_t xv;
          std::memcpy(&xv, x[n] + 32 * j + 4 * ch, 4);
          a[n] = _mm512_dpbusd_epi32(a[n], w, _mm512_set1_epi32(xv));
        }
      }
      const __m512 dv = _mm512_load_ps(d[j]);
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n) {
        float* p = acc[n] + 16 * ((i0 + j) % 16);
        const __m512 xdv = _mm512_set1_ps(xd[n][j]);
        __m512 s =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[n]), _mm512_mul_ps(dv, xdv), _mm512_load_ps(p));
        if constexpr (kMin) s = _mm512_fmadd_ps(_mm512_set1_ps(xsy[n][j]), _mm512_load_ps(m[j]), s);
        _mm512_store_ps(p, s);
      }
    }
  }
};

// Tokens t .. t + N − 1 of the task on blocks i0 .. i0 + nblk − 1 of the packed rows.
template <int N, class Packed>
HERD_GV inline void b32_repacked_dot(const Ctx& c, const Packed& pk, int64_t i0, int nblk,
                                     int64_t t0, int64_t t, float* acc) {
  const int8_t* x[N];
  const int16_t* bs[N];
  const float* xd[N];
  const float* xsy[N];
  float* a[N];
  for (int n = 0; n < N; ++n) {
    const int64_t tok = t0 + t + n;
    x[n] = c.xq + tok * c.kpad + 32 * i0;
    bs[n] = c.xs + tok * (c.kpad / 16) + 2 * i0;
    xd[n] = c.xd + tok * c.nd + i0;
    xsy[n] = c.xsy ? c.xsy + tok * c.nd + i0 : nullptr;
    a[n] = acc + 256 * (t + n);
  }
  pk.template dot<N>(x, bs, xd, xsy, i0, nblk, a);
}

template <DType kType>
HERD_GV void B32Tile<kType>::repacked(const Ctx& c, int64_t r0, int64_t r1, int64_t t0,
                                      int64_t t1) {
  // The 16 rows' blocks are all repacked first, then the task's tokens go through them in runs of
  // kTok: each token's 16 partial sums × 16 rows (1 KiB) are loaded and stored once per block,
  // so a run's accumulators must stay in L1. A whole task's (128 tokens, 128 KiB) did not, and
  // every block's epilogue went to L2.
  constexpr int64_t kTok = 24;
  thread_local std::vector<B32Repacked<kType>> pks;
  thread_local AlignedBuffer<float> accb;
  const int64_t nt = t1 - t0, nb = c.cols / 32, npk = (nb + 7) / 8;
  if (pks.size() < size_t(npk)) pks.resize(size_t(npk));
  float* acc = accb.ensure(size_t(std::min(nt, kTok) * 256));  // [token][16 partials][16 rows]
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int nr = int(std::min<int64_t>(16, r1 - rb));
    for (int64_t i0 = 0; i0 < nb; i0 += 8) {
      // The rows' next 8 blocks, fetched while this step's pack runs: without it the pack waited
      // on each block's first bytes (its f16 d) from memory, 37% of a Q8_0 prefill (perf).
      if (i0 + 8 < nb)
        for (int q = 0; q < nr; ++q)
          prefetch_ahead<8 * sizeof(Block), true>(
              reinterpret_cast<uintptr_t>(c.w + (rb + q) * c.rb + (i0 + 8) * sizeof(Block)));
      pks[size_t(i0 / 8)].pack(c.w + rb * c.rb, c.rb, i0, int(std::min<int64_t>(8, nb - i0)), nr);
    }
    for (int64_t tc = 0; tc < nt; tc += kTok) {
      const int64_t n = std::min(kTok, nt - tc);
      std::fill(acc, acc + n * 256, 0.0f);
      for (int64_t i0 = 0; i0 < nb; i0 += 8) {
        const int nblk = int(std::min<int64_t>(8, nb - i0));
        in_token_runs(n, [&]<int N>(int64_t t) {
          b32_repacked_dot<N>(c, pks[size_t(i0 / 8)], i0, nblk, t0 + tc, t, acc);
        });
      }
      for (int64_t t = 0; t < n; ++t) {
        float* p = acc + 256 * t;  // gguf_sum16 across the partial sums, 16 rows at once
        for (int w = 8; w >= 1; w /= 2)
          for (int l = 0; l < w; ++l)
            _mm512_store_ps(p + 16 * l, _mm512_add_ps(_mm512_load_ps(p + 16 * l),
                                                      _mm512_load_ps(p + 16 * (l + w))));
        for (int q = 0; q < nr; ++q) c.y[(t0 + tc + t) * c.ys + rb + q] = p[q];
      }
    }
  }
}

// ---- F16 × f32 ----

struct F16Tile {
  using Ctx = gemm_detail::Ctx;
  // Four partial sums per token (16 elements each, interleaved over K) so a single token is not
  // bound by the FMA latency; the same for every T, so results do not depend on the batch.
  template <int T, int R>
  HERD_GV static void run(const Ctx& c, int64_t r, int64_t t0) {
    const auto* row = reinterpret_cast<const uint16_t*>(c.w + r * c.rb);
    __m512 acc[T][4];
    for (int t = 0; t < T; ++t)
      for (int u = 0; u < 4; ++u) acc[t][u] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= c.cols; i += 64)
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        const __m512 w =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i + 16 * u)));
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t)
          acc[t][u] =
              _mm512_fmadd_ps(w, _mm512_loadu_ps(c.xf + (t0 + t) * c.kpad + i + 16 * u), acc[t][u]);
      }
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {  // the tail: same lanes, masked
      const int64_t left = c.cols - i - 16 * u;
      const __mmask16 m = left >= 16  ? __mmask16(0xffff)
                          : left <= 0 ? __mmask16(0)
                                      : __mmask16((1u << left) - 1);
      const __m512 w = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + i + 16 * u));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        acc[t][u] = _mm512_fmadd_ps(
            w, _mm512_maskz_loadu_ps(m, c.xf + (t0 + t) * c.kpad + i + 16 * u), acc[t][u]);
    }
    __m512 sum[T];
    for (int t = 0; t < T; ++t)
      sum[t] =
          _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
    store<T>(c, sum, r, t0);
  }
};

template <class Tile>
void run_tiles(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
               int64_t t1, float* y, int64_t ys) {
  const int64_t blk = gguf_act_block(w.dtype);
  Ctx c{a.q.data(),
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
  if constexpr (requires { Tile::repacked; })
    if (t1 - t0 >= Tile::kRepackTokens) return Tile::repacked(c, r0, r1, t0, t1);
  if constexpr (requires { Tile::kPermutedX; })
    if constexpr (Tile::kPermutedX) {
      thread_local AlignedBuffer<int8_t> xb;
      int8_t* xp = xb.ensure(size_t((t1 - t0) * c.kpad));
      for (int64_t t = t0; t < t1; ++t)
        permute_k4_x(c.xq + t * c.kpad, c.cols / 256, xp + (t - t0) * c.kpad);
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

}  // namespace

// quantize_gguf_act_row with AVX-512, bit for bit: amax is exact (and Q8_K's signed max is the
// x at the first lane of largest |x|), the scale is the same scalar, the product rounds the same,
// cvtps_epi32 rounds to nearest even as nearbyint does, and each vector of 16 codes is one sum of
// 16.
HERD_GV void quantize_gguf_act_row_avx512(const float* x, int64_t k, int64_t kpad, int64_t block,
                                          int8_t* q, float* d, int16_t* sums, float* s) {
  const auto lanes = [](int64_t left) {
    return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
  };
  for (int64_t b = 0; b < kpad; b += block) {
    const int64_t m = std::clamp<int64_t>(k - b, 0, block);
    __m512 amax = _mm512_setzero_ps();
    for (int64_t i = 0; i < block; i += 16)
      amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes(m - i), x + b + i)));
    const float a = _mm512_reduce_max_ps(amax);
    float scale = a > 0 ? 127.0f / a : 0.0f;
    if (block == 256) {  // Q8_K: −127 / the signed max; d = 1 / that
      if (a > 0)
        for (int64_t i = 0; i < m; i += 16) {
          const __mmask16 hit = _mm512_mask_cmp_ps_mask(
              lanes(m - i), _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes(m - i), x + b + i)),
              _mm512_set1_ps(a), _CMP_EQ_OQ);
          if (hit) {
            scale = -127.0f / x[b + i + __builtin_ctz(hit)];
            break;
          }
        }
      d[b / block] = a > 0 ? 1.0f / scale : 0.0f;
    } else {  // Q8_0 / Q8_1: d kept as f16
      d[b / block] = f16_to_f32(f32_to_f16(a / 127.0f));
    }
    const __m512 inv = _mm512_set1_ps(scale);
    int32_t sum = 0;
    for (int64_t i = 0; i < block; i += 16) {
      __m512i qi =
          _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes(m - i), x + b + i), inv));
      qi = _mm512_max_epi32(_mm512_min_epi32(qi, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b + i), _mm512_cvtepi32_epi8(qi));
      sums[(b + i) / 16] = int16_t(_mm512_reduce_add_epi32(qi));
      sum += sums[(b + i) / 16];
    }
    if (s && block == 32) s[b / block] = f16_to_f32(f32_to_f16(float(sum) * (a / 127.0f)));
  }
}

Kernel gguf_vnni_kernel(DType t) {
  switch (t) {
    case DType::F16:
      return run_tiles<F16Tile>;
    case DType::GGUF_Q8_0:
      return run_tiles<B32Tile<DType::GGUF_Q8_0>>;
    case DType::GGUF_Q4_0:
      return run_tiles<B32Tile<DType::GGUF_Q4_0>>;
    case DType::GGUF_Q4_1:
      return run_tiles<B32Tile<DType::GGUF_Q4_1>>;
    case DType::GGUF_Q5_0:
      return run_tiles<B32Tile<DType::GGUF_Q5_0>>;
    case DType::GGUF_Q5_1:
      return run_tiles<B32Tile<DType::GGUF_Q5_1>>;
    case DType::GGUF_Q4_K:
      return run_tiles<KTile<DType::GGUF_Q4_K>>;
    case DType::GGUF_Q5_K:
      return run_tiles<KTile<DType::GGUF_Q5_K>>;
    case DType::GGUF_Q6_K:
      return run_tiles<KTile<DType::GGUF_Q6_K>>;
    case DType::GGUF_Q2_K:
      return run_tiles<KTile<DType::GGUF_Q2_K>>;
    case DType::GGUF_Q3_K:
      return run_tiles<KTile<DType::GGUF_Q3_K>>;
    case DType::GGUF_IQ4_XS:
      return run_tiles<KTile<DType::GGUF_IQ4_XS>>;
    case DType::GGUF_IQ4_NL:
      return run_tiles<B32Tile<DType::GGUF_IQ4_NL>>;
    case DType::GGUF_Q8_K:
      return run_tiles<Q8KTile>;
    default:
      return nullptr;
  }
}

}  // namespace herd::gemm_detail
