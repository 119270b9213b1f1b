// GGUF block formats and F16 with AVX2 + FMA + F16C, for machines without AVX-512 VNNI (Zen 1-3,
// Haswell to Skylake client, and AVX-512 machines without VNNI), where every GGUF type otherwise
// ran on the scalar reference. Same contract as gemm_gguf_vnni.h: each block's exact integer
// total, then the reference's FMAs (quant/gguf_blocks.cc, gguf_dot_row) in its order, so the
// results equal the reference and every other path bit for bit, and are batch invariant.
//
// A tile is one weight row × 1..4 tokens: each block is unpacked into registers once (codes as
// bytes, scales as int16 lanes) and reused by the tile's tokens. Integer dots are vpmaddubsw
// (unsigned code × signed x; signed codes go as |w| against x carrying w's sign, the sign trick)
// then vpmaddwd, with the scales (K-quants) or ones (32-blocks) as the second operand: exact, as
// no pair sum reaches int16's limit (≤ 127·127·2).
//  - 32-element blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL): 8 blocks' totals at a time, reduced
//    side by side, then one vector FMA into the 8 of the reference's 16 partial sums they belong to
//    (block i into sum i mod 16), and the reference's halving tree at the end.
//  - 256-element superblocks (Q2_K .. Q6_K, IQ4_XS, Q8_K): a superblock's scaled dot and its mins /
//    offsets each summed exactly to one int32, then the reference's one or two scalar FMAs.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "herd/ops/gemm_gguf_simd.h"
#include "herd/ops/int8_avx2.h"

#define HERD_GA HERD_GGUF_AVX2

namespace herd::gemm_detail {
namespace {

using int8_avx2::transpose8;

using gguf_simd::Ctx;
using gguf_simd::h2f;
using gguf_simd::reduce8x8;
using gguf_simd::unpack_scale_min_k4;

HERD_GA inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// gguf_sum16 of the 16 lanes [a | b]: a + b lane-wise, then the upper half onto the lower, then
// lanes 2-3 onto 0-1, then lane 1 onto lane 0 (the same additions in the same order).
HERD_GA inline float sum16(__m256 a, __m256 b) {
  const __m256 v = _mm256_add_ps(a, b);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Σ over pairs of (unsigned u × signed x), pairs of those times the int16 lanes of `m`: 8 int32.
HERD_GA inline __m256i dot_u8(__m256i u, __m256i x, __m256i m) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), m);
}
// The same for signed codes w: |w| against x with w's sign (zero where w is zero).
HERD_GA inline __m256i dot_s8(__m256i w, __m256i x, __m256i m) {
  return dot_u8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w), m);
}

// [lo | hi] nibbles of 16 bytes: element j < 16 is byte j's low nibble, j ≥ 16 byte j − 16's high
// nibble (nib32).
HERD_GA inline __m256i nibbles16(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

// Byte j = 0xFF where bit j of the 32-bit little-endian word at p is set.
HERD_GA inline __m256i bits32(const uint8_t* p) {
  uint32_t u;
  std::memcpy(&u, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(u)), _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2,
                                                  2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// ---- 32-element blocks ----

template <DType kTypeArg>
struct B32Tile {
  using Ctx = gguf_simd::Ctx;
  static constexpr DType kType = kTypeArg;
  // Signed codes (Q8_0's, IQ4_NL's values): the sign trick. The rest are unsigned codes whose
  // offset (Q4_0's 8, Q5_0's 16) is removed through Σq_x, or that carry a min (Q4_1, Q5_1).
  static constexpr bool kSigned = kType == DType::GGUF_Q8_0 || kType == DType::GGUF_IQ4_NL;
  static constexpr bool kMin = kType == DType::GGUF_Q4_1 || kType == DType::GGUF_Q5_1;
  static constexpr bool kFive = kType == DType::GGUF_Q5_0 || kType == DType::GGUF_Q5_1;
  static constexpr int32_t kOffset = kType == DType::GGUF_Q4_0   ? 8
                                     : kType == DType::GGUF_Q5_0 ? 16
                                                                 : 0;
  // Tasks of at least this many tokens go to B32Repacked: ahead already at 8 (bench_kernels
  // GgufExperts, same run, Zen 3: Q8_0 8.7–13.6 ms tiled against 8.8–9.8 repacked, Q4_0 11.8–13.3
  // against 6.8–7.7; at 24 tokens 27–37 against 14–23).
  static constexpr int64_t kRepackTokens = 8;
  using Block = std::conditional_t<
      kType == DType::GGUF_Q8_0, GgufQ8_0,
      std::conditional_t<
          kType == DType::GGUF_Q4_0, GgufQ4_0,
          std::conditional_t<kType == DType::GGUF_Q4_1, GgufQ4_1,
                             std::conditional_t<kType == DType::GGUF_Q5_0, GgufQ5_0,
                                                std::conditional_t<kType == DType::GGUF_Q5_1,
                                                                   GgufQ5_1, GgufIQ4_NL>>>>>;

  // Block b's 32 codes in element order.
  HERD_GA static __m256i codes(const Block& b) {
    if constexpr (kType == DType::GGUF_Q8_0) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    } else if constexpr (kType == DType::GGUF_IQ4_NL) {
      const __m256i t = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
      return _mm256_shuffle_epi8(t, nibbles16(b.qs));
    } else if constexpr (kFive) {
      return _mm256_or_si256(nibbles16(b.qs), _mm256_and_si256(bits32(b.qh), _mm256_set1_epi8(16)));
    } else {
      return nibbles16(b.qs);
    }
  }

  // 8 int32 at p, or the lanes of a partial group (kFull false).
  template <bool kFull>
  HERD_GA __attribute__((always_inline)) static inline __m256i load8(__m256i lanes, const void* p) {
    if constexpr (kFull) return _mm256_loadu_si256(static_cast<const __m256i*>(p));
    return _mm256_maskload_epi32(static_cast<const int*>(p), lanes);
  }
  // Blocks i0 .. i0 + g − 1 (g ≤ 8) into the partial sums `part` (blocks i mod 16 in 0..7 or in
  // 8..15, which half a caller fixes at compile time: indexed at run time, GCC kept both halves
  // on the stack). A full group (kFull) loads its scales and x with plain loads: its f16 scales
  // went through the stack before, 8 narrow stores under one wide load that stalled on them.
  template <int T, bool kFull>
  HERD_GA __attribute__((always_inline)) static inline void group(const Ctx& c, const Block* row,
                                                                  int64_t i0, int g, int64_t t0,
                                                                  __m256 (&part)[T]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i dots[T][8];
    uint64_t dh[2] = {}, mh[2] = {};  // the f16 scales (and mins), packed in registers
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      if (!kFull && j >= g) {
        for (int t = 0; t < T; ++t) dots[t][j] = _mm256_setzero_si256();
        continue;
      }
      const Block& b = row[i0 + j];
      dh[j / 4] |= uint64_t(b.d) << (16 * (j % 4));
      if constexpr (kMin) mh[j / 4] |= uint64_t(b.m) << (16 * (j % 4));
      const __m256i w = codes(b);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const __m256i x = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(c.xq + (t0 + t) * c.kpad + 32 * (i0 + j)));
        dots[t][j] = kSigned ? dot_s8(w, x, ones) : dot_u8(w, x, ones);
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_set_epi64x(int64_t(dh[1]), int64_t(dh[0])));
    const __m256i lanes =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(g), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const int64_t tok = t0 + t;
      __m256i tot = reduce8x8(dots[t]);
      if constexpr (kOffset != 0) {  // − offset · Σq_x of each block (its two sums of 16)
        const __m256i s16 = load8<kFull>(lanes, c.xs + tok * (c.kpad / 16) + 2 * i0);
        // × 8 or × 16 as a shift: vpmulld is slow on Zen 1.
        tot = _mm256_sub_epi32(
            tot, _mm256_slli_epi32(_mm256_madd_epi16(s16, ones), kOffset == 8 ? 3 : 4));
      }
      const __m256 xd = _mm256_castsi256_ps(load8<kFull>(lanes, c.xd + tok * c.nd + i0));
      __m256 p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot), _mm256_mul_ps(dw, xd), part[t]);
      if constexpr (kMin) {
        const __m256 s = _mm256_castsi256_ps(load8<kFull>(lanes, c.xsy + tok * c.nd + i0));
        p = _mm256_fmadd_ps(s, _mm256_cvtph_ps(_mm_set_epi64x(int64_t(mh[1]), int64_t(mh[0]))), p);
      }
      // Lanes past the row's blocks keep their sums untouched (not + 0: a −0 would turn +0).
      part[t] = kFull ? p : _mm256_blendv_ps(part[t], p, _mm256_castsi256_ps(lanes));
    }
  }

  template <int T, int R>
  HERD_GA static void run(const Ctx& c, int64_t r, int64_t t0) {
    static_assert(R == 1);
    const auto* row = reinterpret_cast<const Block*>(c.w + r * c.rb);
    const int64_t nb = c.cols / 32;
    // The reference's 16 partial sums: blocks i mod 16 in lo (0..7), then hi (8..15).
    __m256 lo[T], hi[T];
    for (int t = 0; t < T; ++t) lo[t] = hi[t] = _mm256_setzero_ps();
    int64_t i0 = 0;
    for (; i0 + 16 <= nb; i0 += 16) {
      group<T, true>(c, row, i0, 8, t0, lo);
      group<T, true>(c, row, i0 + 8, 8, t0, hi);
    }
    if (i0 + 8 <= nb) {
      group<T, true>(c, row, i0, 8, t0, lo);
      if (i0 + 8 < nb) group<T, false>(c, row, i0 + 8, int(nb - i0 - 8), t0, hi);
    } else if (i0 < nb) {
      group<T, false>(c, row, i0, int(nb - i0), t0, lo);
    }
    // gguf_sum16's halving tree in registers: lanes l + l + 8, then + 4, + 2, + 1. Through memory
    // (its scalar loop, a store-to-load chain per level) it took 20% of a Q8_0 decode's samples.
    for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r] = sum16(lo[t], hi[t]);
  }
};

// ---- 256-element superblocks: K-quants, IQ4_XS, Q8_K ----

template <DType kTypeArg>
struct KTile {
  using Ctx = gguf_simd::Ctx;
  static constexpr DType kType = kTypeArg;
  static constexpr bool kQ2 = kType == DType::GGUF_Q2_K, kQ3 = kType == DType::GGUF_Q3_K;
  static constexpr bool kQ5 = kType == DType::GGUF_Q5_K, kQ6 = kType == DType::GGUF_Q6_K;
  static constexpr bool kXS = kType == DType::GGUF_IQ4_XS, kQ8K = kType == DType::GGUF_Q8_K;
  // How the activations' sums of 16 enter: a second FMA with −dmin (the mins of Q2_K / Q4_K /
  // Q5_K), or subtracted from the total times the codes' offset (Q6_K's 32, Q3_K's 4).
  static constexpr bool kMins = kQ2 || kType == DType::GGUF_Q4_K || kQ5;
  static constexpr int32_t kOffset = kQ6 ? 32 : kQ3 ? 4 : 0;
  // Signed codes (IQ4_XS's values, Q8_K's): the sign trick.
  static constexpr bool kSigned = kXS || kQ8K;
  // Tasks of at least this many tokens go to KRepacked (0: none; its int16 sums need unsigned
  // codes, which IQ4_XS's and Q8_K's are not). Below, the repack costs more than it saves
  // (bench_kernels GgufExperts, same run, 16 experts' [2048, 1024], Zen 3: Q4_K at 8 tokens
  // 4.6–5.1 ms tiled against 5.1–6.4 repacked, even at 12, ahead from 16; Q6_K's dearer unpack
  // even at 16, ahead from 24: 15.3–18.7 against 11.4–12.9 ms).
  static constexpr int64_t kRepackTokens = kSigned ? 0 : kQ6 ? 16 : 12;
  using Block = std::conditional_t<
      kQ6, GgufQ6_K,
      std::conditional_t<
          kQ5, GgufQ5_K,
          std::conditional_t<
              kQ2, GgufQ2_K,
              std::conditional_t<
                  kQ3, GgufQ3_K,
                  std::conditional_t<kXS, GgufIQ4_XS,
                                     std::conditional_t<kQ8K, GgufQ8_K, GgufQ4_K>>>>>>;

  // One superblock: 8 vectors of 32 codes (element order) and, per vector, the int16 lanes that
  // multiply its maddubs pairs (the scale of its sub-block of 32, or its two sub-blocks of 16).
  // off: what multiplies the 16 sums of 16 (the mins, or the scales the offset goes with).
  // The loops over its vectors are unrolled (#pragma GCC unroll): GCC 12 left them rolled, so
  // each vector went through the stack by a computed address; unrolled, a 4096² Q4_K decode
  // takes 0.7× the time, Q6_K 0.55× (BENCHMARKS.md, session 15). Not Q2_K / Q3_K's unpack,
  // where it made Q3_K slower.
  struct Unpacked {
    __m256i w[8], sc[8], off;
    float d, dmin;
  };

  // Sub-blocks of 16 (s16: their 16 int16 scales): vector v holds sub-blocks 2v (pair lanes
  // 0..7) and 2v + 1 (8..15). By byte shuffles of the scales' register: extracted one by one to
  // broadcast them (vpextrw, vmovd, vpbroadcastw each), they cost more than the dots.
  HERD_GA static void spread16(__m256i s16, Unpacked& u) {
    const __m256i lo = _mm256_permute2x128_si256(s16, s16, 0x00);
    const __m256i hi = _mm256_permute2x128_si256(s16, s16, 0x11);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) {
      const char a = char(4 * (v % 4)), b = char(4 * (v % 4) + 2);
      const __m256i ctl = _mm256_setr_epi8(a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a,
                                           a + 1, a, a + 1, a, a + 1, b, b + 1, b, b + 1, b, b + 1,
                                           b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1);
      u.sc[v] = _mm256_shuffle_epi8(v < 4 ? lo : hi, ctl);
    }
  }
  // Sub-blocks of 32 (s8: their 8 int16 scales): vector v's pairs all take scale v.
  HERD_GA static void spread32(__m128i s8, Unpacked& u) {
    const __m256i b = _mm256_broadcastsi128_si256(s8);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v)
      u.sc[v] = _mm256_shuffle_epi8(b, _mm256_set1_epi16(int16_t(0x0100 + 0x0202 * v)));
  }

  HERD_GA static void unpack(const Block& b, Unpacked& u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi8(1);
    u.dmin = 0;
    if constexpr (kQ6) {
#pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h));
        const __m256i bb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
        // j = 0..3: elements 128h + 32j + l, low 4 bits from a / bb (low, then high nibbles),
        // 2 high bits from hb >> 2j.
        const __m256i lo[4] = {_mm256_and_si256(a, m4), _mm256_and_si256(bb, m4),
                               _mm256_and_si256(_mm256_srli_epi16(a, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(bb, 4), m4)};
#pragma GCC unroll 8
        for (int j = 0; j < 4; ++j) {
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), m3);
          u.w[4 * h + j] = _mm256_or_si256(lo[j], _mm256_slli_epi16(hi, 4));
        }
      }
      u.off = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
      u.d = h2f(b.d);
    } else if constexpr (kQ2 || kQ3) {
      // Element 128h + 32j + l: bits 2j of qs[32h + l] (Q3_K: plus 4 · bit 4h + j of hmask[l]).
      for (int h = 0; h < 2; ++h) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
        for (int j = 0; j < 4; ++j) {
          __m256i c = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
          if constexpr (kQ3) {
            const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
            c = _mm256_or_si256(
                c, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one), 2));
          }
          u.w[4 * h + j] = c;
        }
      }
      alignas(32) int16_t s[16], m[16];
      if constexpr (kQ2) {
        for (int i = 0; i < 16; ++i)
          s[i] = int16_t(b.scales[i] & 0xF), m[i] = int16_t(b.scales[i] >> 4);
        u.off = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
        u.dmin = h2f(b.dmin);
      } else {
        int8_t s8[16];
        gguf_scales_q3k(b.scales, s8);
        for (int i = 0; i < 16; ++i) s[i] = s8[i];
        u.off = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
      }
      spread16(_mm256_load_si256(reinterpret_cast<const __m256i*>(s)), u);
      u.d = h2f(b.d);
      return;
    } else if constexpr (kXS) {
      const __m256i t = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        u.w[s] = _mm256_shuffle_epi8(t, nibbles16(b.qs + 16 * s));
        u.sc[s] = _mm256_set1_epi16(int16_t(gguf_scale_iq4xs(b, s)));
      }
      u.off = _mm256_setzero_si256();
      u.d = h2f(b.d);
      return;
    } else if constexpr (kQ8K) {
#pragma GCC unroll 8
      for (int v = 0; v < 8; ++v) {
        u.w[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * v));
        u.sc[v] = _mm256_set1_epi16(1);
      }
      u.off = _mm256_setzero_si256();
      u.d = b.d;
      return;
    } else {  // Q4_K / Q5_K
#pragma GCC unroll 8
      for (int c = 0; c < 4; ++c) {  // 64 elements: low nibbles, then high nibbles
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c));
        u.w[2 * c] = _mm256_and_si256(q, m4);
        u.w[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      }
      if constexpr (kQ5) {  // sub-block s's fifth bit: bit s of qh[l]
        const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s)
          u.w[s] = _mm256_or_si256(
              u.w[s], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, s), one), 4));
      }
      const __m128i sm = unpack_scale_min_k4(b.scales);
      spread32(_mm_cvtepu8_epi16(sm), u);
      u.off = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(
          sm, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
      u.d = h2f(b.d);
      u.dmin = h2f(b.dmin);
      return;
    }
    spread16(u.off, u);  // Q6_K
  }

  // Lane j of v in lane 0.
  HERD_GA __attribute__((always_inline)) static inline __m128 lane(__m128 v, int j) {
    return j == 0   ? v
           : j == 1 ? _mm_movehdup_ps(v)
           : j == 2 ? _mm_movehl_ps(v, v)
                    : _mm_shuffle_ps(v, v, 3);
  }
  // 4 superblocks at a time: each one's dot vector and offset vector per token, then one
  // reduce8x8 gives all 8 totals (lanes 0..3 the dots, 4..7 the offsets), where two horizontal
  // sums per superblock and token, and their moves to scalar registers, took a third of the
  // samples. The scalar FMAs then run superblock by superblock, in the reference's order.
  template <int T, int R>
  HERD_GA static void run(const Ctx& c, int64_t r, int64_t t0) {
    static_assert(R == 1);
    const auto* row = reinterpret_cast<const Block*>(c.w + r * c.rb);
    const int64_t nsb = c.cols / 256;
    float acc[T] = {};
    for (int64_t i0 = 0; i0 < nsb; i0 += 4) {
      const int g = int(nsb - i0 < 4 ? nsb - i0 : 4);
      __m256i v[T][8];
      float d[4] = {}, dmin[4] = {};
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        if (j >= g) {
          for (int t = 0; t < T; ++t) v[t][j] = v[t][4 + j] = _mm256_setzero_si256();
          continue;
        }
        const int64_t i = i0 + j;
        Unpacked u;
        unpack(row[i], u);
        d[j] = u.d, dmin[j] = u.dmin;
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          const int64_t tok = t0 + t;
          const int8_t* x = c.xq + tok * c.kpad + 256 * i;
          __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
#pragma GCC unroll 8
          for (int k = 0; k < 8; k += 2) {  // two chains
            const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * k));
            const __m256i x1 =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * k + 32));
            a0 = _mm256_add_epi32(
                a0, kSigned ? dot_s8(u.w[k], x0, u.sc[k]) : dot_u8(u.w[k], x0, u.sc[k]));
            a1 = _mm256_add_epi32(a1, kSigned ? dot_s8(u.w[k + 1], x1, u.sc[k + 1])
                                              : dot_u8(u.w[k + 1], x1, u.sc[k + 1]));
          }
          v[t][j] = _mm256_add_epi32(a0, a1);
          if constexpr (kMins || kOffset != 0) {
            const __m256i bs = _mm256_loadu_si256(
                reinterpret_cast<const __m256i*>(c.xs + tok * (c.kpad / 16) + 16 * i));
            v[t][4 + j] = _mm256_madd_epi16(u.off, bs);
          } else {
            v[t][4 + j] = _mm256_setzero_si256();
          }
        }
      }
      // Kept in registers: the 8 totals stored and read back one by one stalled on the store
      // (half of the samples). Products d · xd and −(dmin · xd) are the scalar ones lane by lane.
      const __m256 dd = _mm256_setr_ps(d[0], d[1], d[2], d[3], dmin[0], dmin[1], dmin[2], dmin[3]);
      const __m128i live = _mm_cmpgt_epi32(_mm_set1_epi32(g), _mm_setr_epi32(0, 1, 2, 3));
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const int64_t tok = t0 + t;
        __m256i tot = reduce8x8(v[t]);  // lanes 0..3: the dots, 4..7: the offsets
        if constexpr (kOffset != 0)     // dot − offset · off (32 or 4: a shift)
          tot = _mm256_sub_epi32(tot, _mm256_slli_epi32(_mm256_permute2x128_si256(tot, tot, 0x11),
                                                        kOffset == 32 ? 5 : 2));
        const __m256 f = _mm256_cvtepi32_ps(tot);
        const __m128 xd = _mm_maskload_ps(c.xd + tok * c.nd + i0, live);
        const __m256 sc = _mm256_xor_ps(_mm256_mul_ps(dd, _mm256_set_m128(xd, xd)),
                                        _mm256_setr_ps(0, 0, 0, 0, -0.f, -0.f, -0.f, -0.f));
        const __m128 f0 = _mm256_castps256_ps128(f), f1 = _mm256_extractf128_ps(f, 1);
        const __m128 s0 = _mm256_castps256_ps128(sc), s1 = _mm256_extractf128_ps(sc, 1);
        __m128 a = _mm_set_ss(acc[t]);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          if (j >= g) break;
          a = _mm_fmadd_ss(lane(f0, j), lane(s0, j), a);
          if constexpr (kMins) a = _mm_fmadd_ss(lane(f1, j), lane(s1, j), a);
        }
        acc[t] = _mm_cvtss_f32(a);
      }
    }
    for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r] = acc[t];
  }
};

// ---- Prefill: K-quants repacked, 8 rows at a time ----

// Tasks of kRepackTokens or more tokens (prefill) repack 8 rows' superblock as [64 chunks of 4 K]
// [8 rows][4 bytes] once and reuse it for every token: one vpmaddubsw of a chunk against 4
// broadcast bytes of x serves 8 rows, and the products of a whole scale sub-block are summed in
// int16 before one vpmaddwd applies the 8 rows' scales, so no horizontal sum is left per token.
// Each row's superblock totals are the exact integers the tile computes, taken with the same FMAs
// in the same order, 8 rows side by side: the results are the tile's (and the reference's) bits.
template <DType kType>
struct KRepacked {
  using K = KTile<kType>;
  static constexpr bool kQ4 = kType == DType::GGUF_Q4_K;
  // Scale sub-blocks: 8 of 32 elements (Q4_K, Q5_K) or 16 of 16 (Q2_K, Q3_K, Q6_K).
  static constexpr int kSub = kQ4 || K::kQ5 ? 8 : 16;
  static constexpr int kChunks = 64 / kSub;  // 4-K chunks per sub-block
  // Chunks whose vpmaddubsw pairs are added in int16 before the scales' vpmaddwd: exact while
  // kGroup · 2 · max code · 127 ≤ 32767 (x is within ±127): Q4_K 8 · 3810, Q5_K 4 · 7874,
  // Q6_K 2 · 16002, Q2_K / Q3_K 4 · ≤ 1778.
  static constexpr int kGroup = kQ4 ? 8 : K::kQ6 ? 2 : 4;
  static_assert(kChunks % kGroup == 0);
  alignas(32) uint8_t codes[64][32];
  alignas(32) int32_t sc[kSub][8];  // each row's scale in both int16 halves
  alignas(32) int32_t off[8][8];    // int16 pairs: what multiplies x's sums of 16 2p and 2p + 1
  alignas(32) float d[8], dmin[8];

  // Each scale as an int32 lane holding it in both int16 halves (what vpmaddwd pairs take).
  HERD_GA static __m256i dup16(__m128i x8) {  // 8 int16 → 8 int32 lanes
    const __m256i v = _mm256_cvtepu16_epi32(x8);
    return _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
  }

  // One row's sub-block scales as kSub / 8 vectors of 8 dup16 lanes.
  HERD_GA static void scale_rows(const typename K::Block& b, const typename K::Unpacked& u,
                                 __m256i* out) {
    if constexpr (kSub == 8) {  // Q4_K / Q5_K: bytes 0..7 of the unpacked scales and mins
      out[0] = dup16(_mm_cvtepu8_epi16(unpack_scale_min_k4(b.scales)));
    } else if constexpr (K::kQ2) {  // the low nibbles
      const __m128i s = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)),
                                      _mm_set1_epi8(0x0F));
      out[0] = dup16(_mm_cvtepu8_epi16(s));
      out[1] = dup16(_mm_cvtepu8_epi16(_mm_srli_si128(s, 8)));
    } else {  // Q3_K / Q6_K: the signed scales are what multiplies the sums of 16 (u.off)
      out[0] = dup16(_mm256_castsi256_si128(u.off));
      out[1] = dup16(_mm256_extracti128_si256(u.off, 1));
    }
  }

  HERD_GA void pack(const uint8_t* w, int64_t rb, int64_t i, int nr) {
    __m256i v[8][8], sr[kSub / 8][8], orow[8];  // [vector][row]
    for (int q = 0; q < 8; ++q) {
      if (q >= nr) {  // rows past the matrix: zero codes and scales
        for (int z = 0; z < 8; ++z) v[z][q] = _mm256_setzero_si256();
        for (int h = 0; h < kSub / 8; ++h) sr[h][q] = _mm256_setzero_si256();
        orow[q] = _mm256_setzero_si256();
        d[q] = dmin[q] = 0;
        continue;
      }
      const auto& b = reinterpret_cast<const typename K::Block*>(w + q * rb)[i];
      typename K::Unpacked u;
      K::unpack(b, u);
#pragma GCC unroll 8
      for (int z = 0; z < 8; ++z) v[z][q] = u.w[z];
      __m256i s[kSub / 8];
      scale_rows(b, u, s);
      for (int h = 0; h < kSub / 8; ++h) sr[h][q] = s[h];
      orow[q] = u.off;  // 16 int16: pair p (int32 lane p) goes with x's sums 2p, 2p + 1
      d[q] = u.d, dmin[q] = u.dmin;
    }
    for (int z = 0; z < 8; ++z) {
      transpose8(v[z]);
      for (int k = 0; k < 8; ++k)
        _mm256_store_si256(reinterpret_cast<__m256i*>(codes[8 * z + k]), v[z][k]);
    }
    for (int h = 0; h < kSub / 8; ++h) {
      transpose8(sr[h]);
      for (int k = 0; k < 8; ++k)
        _mm256_store_si256(reinterpret_cast<__m256i*>(sc[8 * h + k]), sr[h][k]);
    }
    transpose8(orow);
    for (int p = 0; p < 8; ++p) _mm256_store_si256(reinterpret_cast<__m256i*>(off[p]), orow[p]);
  }

  // acc[n] (8 rows' lanes) plus this superblock's terms for N tokens.
  template <int N>
  HERD_GA void dot(const int8_t* const* x, const int16_t* const* bs, const float* xd,
                   __m256* acc) const {
    __m256i isum[N], io[N];
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) isum[n] = io[n] = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int s = 0; s < kSub; ++s) {
      const __m256i scv = _mm256_load_si256(reinterpret_cast<const __m256i*>(sc[s]));
#pragma GCC unroll 8
      for (int g = 0; g < kChunks; g += kGroup) {
        __m256i a[N];
#pragma GCC unroll 8
        for (int ch = 0; ch < kGroup; ++ch) {
          const int C = s * kChunks + g + ch;
          const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(codes[C]));
#pragma GCC unroll 8
          for (int n = 0; n < N; ++n) {
            int32_t xv;
            std::memcpy(&xv, x[n] + 4 * C, 4);
            const __m256i p = _mm256_maddubs_epi16(w, _mm256_set1_epi32(xv));
            a[n] = ch == 0 ? p : _mm256_add_epi16(a[n], p);
          }
        }
#pragma GCC unroll 8
        for (int n = 0; n < N; ++n)
          isum[n] = _mm256_add_epi32(isum[n], _mm256_madd_epi16(a[n], scv));
      }
    }
    if constexpr (K::kMins || K::kOffset != 0) {
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) {
        const __m256i o = _mm256_load_si256(reinterpret_cast<const __m256i*>(off[p]));
#pragma GCC unroll 8
        for (int n = 0; n < N; ++n) {
          int32_t pair;
          std::memcpy(&pair, bs[n] + 2 * p, 4);
          io[n] = _mm256_add_epi32(io[n], _mm256_madd_epi16(o, _mm256_set1_epi32(pair)));
        }
      }
    }
    const __m256 dv = _mm256_load_ps(d), dmv = _mm256_load_ps(dmin);
    const __m256 sign = _mm256_set1_ps(-0.0f);
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) {
      const __m256 xdv = _mm256_set1_ps(xd[n]);
      __m256i tot = isum[n];
      if constexpr (K::kOffset != 0)
        tot = _mm256_sub_epi32(tot, _mm256_slli_epi32(io[n], K::kOffset == 32 ? 5 : 2));
      acc[n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot), _mm256_mul_ps(dv, xdv), acc[n]);
      if constexpr (K::kMins)  // −(dmin · xd) as the tile's negation: the sign bit flipped
        acc[n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(io[n]),
                                 _mm256_xor_ps(_mm256_mul_ps(dmv, xdv), sign), acc[n]);
    }
  }

  // Tokens t .. t + N − 1 of the task (t0 + t is the batch row) on superblock i.
  template <int N>
  HERD_GA void dot_tokens(const Ctx& c, int64_t i, int64_t t0, int64_t t, float* acc) const {
    const int8_t* x[N];
    const int16_t* bs[N];
    float xd[N];
    __m256 a[N];
    for (int n = 0; n < N; ++n) {
      const int64_t tok = t0 + t + n;
      x[n] = c.xq + (tok - c.x0) * c.kpad + 256 * i;
      bs[n] = c.xs + tok * (c.kpad / 16) + 16 * i;
      xd[n] = c.xd[tok * c.nd + i];
      a[n] = _mm256_load_ps(acc + 8 * (t + n));
    }
    dot<N>(x, bs, xd, a);
    for (int n = 0; n < N; ++n) _mm256_store_ps(acc + 8 * (t + n), a[n]);
  }

  HERD_GA static void run(const Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    thread_local KRepacked pk;
    thread_local AlignedBuffer<float> accb;
    const int64_t nt = t1 - t0, nb = c.cols / 256;
    float* acc = accb.ensure(size_t(nt * 8));
    // Runs of at most 4 tokens (their accumulators stay in registers), as even as they can be.
    for (int64_t rb = r0; rb < r1; rb += 8) {
      const int nr = int(std::min<int64_t>(8, r1 - rb));
      std::fill(acc, acc + nt * 8, 0.0f);
      for (int64_t i = 0; i < nb; ++i) {
        pk.pack(c.w + rb * c.rb, c.rb, i, nr);
        in_token_runs<4>(nt,
                         [&]<int N>(int64_t t) { pk.template dot_tokens<N>(c, i, t0, t, acc); });
      }
      for (int64_t t = 0; t < nt; ++t)
        for (int q = 0; q < nr; ++q) c.y[(t0 + t) * c.ys + rb + q] = acc[8 * t + q];
    }
  }
};

// ---- Prefill: 32-element blocks repacked, 8 rows × 8 blocks at a time ----

// As KRepacked, for the 32-element blocks: 8 rows' 8 blocks as [64 chunks of 4 K][8 rows][4 bytes],
// each block's 8 rows' exact totals, then the tile's FMAs into the reference's 16 partial sums
// (block i into sum i mod 16) with 8 rows side by side, and its halving tree at the end.
// Unsigned codes (Q4_0, Q4_1: ≤ 15; Q5_0, Q5_1: ≤ 31) sum a block's vpmaddubsw pairs in int16
// (8 · 3810, 4 · 7874 ≤ 32767); signed ones (Q8_0, IQ4_NL) take |w| against x with w's sign, one
// vpmaddwd per chunk (a pair reaches 2 · 128 · 127).
template <DType kType>
struct B32Repacked {
  using B = B32Tile<kType>;
  static constexpr int kGroup = B::kSigned ? 1 : B::kFive ? 4 : 8;  // chunks summed in int16
  alignas(32) uint8_t codes[64][32];                                // |w| for the signed codes
  alignas(32) int8_t sgn[B::kSigned ? 64 : 1][32];                  // the signed codes, for vpsignb
  alignas(32) float d[8][8], m[8][8];                               // [block][row]

  HERD_GA void pack(const uint8_t* w, int64_t rb, int64_t i0, int g, int nr) {
    __m256i v[8][8];  // [block][row]
    for (int q = 0; q < 8; ++q) {
      const auto* row = reinterpret_cast<const typename B::Block*>(w + q * rb) + i0;
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        if (q >= nr || j >= g) {  // rows past the matrix, blocks past the row: zero
          v[j][q] = _mm256_setzero_si256();
          d[j][q] = m[j][q] = 0;
          continue;
        }
        v[j][q] = B::codes(row[j]);
        d[j][q] = h2f(row[j].d);
        if constexpr (B::kMin) m[j][q] = h2f(row[j].m);
      }
    }
    for (int j = 0; j < 8; ++j) {
      transpose8(v[j]);
      for (int k = 0; k < 8; ++k) {
        __m256i c = v[j][k];
        if constexpr (B::kSigned) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(sgn[8 * j + k]), c);
          c = _mm256_sign_epi8(c, c);
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(codes[8 * j + k]), c);
      }
    }
  }

  // part: [tokens][16 partial sums][8 rows]; blocks i0 .. i0 + g − 1 for N tokens from token t.
  template <int N>
  HERD_GA void dot(const Ctx& c, int64_t i0, int g, int64_t t0, int64_t t, float* part) const {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int j = 0; j < g; ++j) {
      const int64_t i = i0 + j;
      __m256i tot[N];
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n) tot[n] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int h = 0; h < 8; h += kGroup) {
        __m256i a[N];
#pragma GCC unroll 8
        for (int ch = 0; ch < kGroup; ++ch) {
          const int C = 8 * j + h + ch;
          const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(codes[C]));
          __m256i ws;
          if constexpr (B::kSigned)
            ws = _mm256_load_si256(reinterpret_cast<const __m256i*>(sgn[C]));
#pragma GCC unroll 8
          for (int n = 0; n < N; ++n) {
            int32_t xv;
            std::memcpy(&xv, c.xq + (t0 + t + n - c.x0) * c.kpad + 32 * i + 4 * (h + ch), 4);
            __m256i xb = _mm256_set1_epi32(xv);
            if constexpr (B::kSigned) xb = _mm256_sign_epi8(xb, ws);
            const __m256i p = _mm256_maddubs_epi16(w, xb);
            a[n] = ch == 0 ? p : _mm256_add_epi16(a[n], p);
          }
        }
#pragma GCC unroll 8
        for (int n = 0; n < N; ++n)
          tot[n] = _mm256_add_epi32(tot[n], _mm256_madd_epi16(a[n], ones));
      }
      const __m256 dw = _mm256_load_ps(d[j]);
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n) {
        const int64_t tok = t0 + t + n;
        if constexpr (B::kOffset != 0) {  // − offset · Σq_x of the block (its two sums of 16)
          const int16_t* s16 = c.xs + tok * (c.kpad / 16) + 2 * i;
          const int32_t sx = int32_t(s16[0]) + s16[1];
          tot[n] = _mm256_sub_epi32(tot[n], _mm256_set1_epi32(B::kOffset * sx));
        }
        float* pp = part + ((t + n) * 16 + i % 16) * 8;
        __m256 p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[n]),
                                   _mm256_mul_ps(dw, _mm256_set1_ps(c.xd[tok * c.nd + i])),
                                   _mm256_load_ps(pp));
        if constexpr (B::kMin)
          p = _mm256_fmadd_ps(_mm256_set1_ps(c.xsy[tok * c.nd + i]), _mm256_load_ps(m[j]), p);
        _mm256_store_ps(pp, p);
      }
    }
  }

  HERD_GA static void run(const Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    thread_local B32Repacked pk;
    thread_local AlignedBuffer<float> partb;
    const int64_t nt = t1 - t0, nb = c.cols / 32;
    float* part = partb.ensure(size_t(nt * 16 * 8));
    for (int64_t rb = r0; rb < r1; rb += 8) {
      const int nr = int(std::min<int64_t>(8, r1 - rb));
      std::fill(part, part + nt * 16 * 8, 0.0f);
      for (int64_t i0 = 0; i0 < nb; i0 += 8) {
        const int g = int(std::min<int64_t>(8, nb - i0));
        pk.pack(c.w + rb * c.rb, c.rb, i0, g, nr);
        in_token_runs<4>(nt, [&]<int N>(int64_t t) { pk.template dot<N>(c, i0, g, t0, t, part); });
      }
      for (int64_t t = 0; t < nt; ++t) {  // gguf_sum16's halving tree, 8 rows side by side
        __m256 p[16];
        for (int l = 0; l < 16; ++l) p[l] = _mm256_load_ps(part + (t * 16 + l) * 8);
        for (int w = 8; w >= 1; w /= 2)
          for (int l = 0; l < w; ++l) p[l] = _mm256_add_ps(p[l], p[l + w]);
        alignas(32) float y[8];
        _mm256_store_ps(y, p[0]);
        for (int q = 0; q < nr; ++q) c.y[(t0 + t) * c.ys + rb + q] = y[q];
      }
    }
  }
};

// ---- F16 × f32 ----

struct F16Tile {
  using Ctx = gguf_simd::Ctx;
  // Four partial sums per token (8 elements each, interleaved over K), the same for every T, so
  // results do not depend on the batch.
  template <int T, int R>
  HERD_GA static void run(const Ctx& c, int64_t r, int64_t t0) {
    static_assert(R == 1);
    const auto* row = reinterpret_cast<const uint16_t*>(c.w + r * c.rb);
    __m256 acc[T][4];
    for (int t = 0; t < T; ++t)
      for (int u = 0; u < 4; ++u) acc[t][u] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= c.cols; i += 32)
      for (int u = 0; u < 4; ++u) {
        const __m256 w =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i + 8 * u)));
        for (int t = 0; t < T; ++t)
          acc[t][u] =
              _mm256_fmadd_ps(w, _mm256_loadu_ps(c.xf + (t0 + t) * c.kpad + i + 8 * u), acc[t][u]);
      }
    float tail[T] = {};
    for (; i < c.cols; ++i)  // x is zero-padded to kpad, the weight row is not
      for (int t = 0; t < T; ++t)
        tail[t] = std::fma(h2f(row[i]), c.xf[(t0 + t) * c.kpad + i], tail[t]);
    for (int t = 0; t < T; ++t) {
      const __m256 s =
          _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3]));
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_movehdup_ps(h));
      c.y[(t0 + t) * c.ys + r] = _mm_cvtss_f32(h) + tail[t];
    }
  }
};

template <class Tile>
void run_tiles(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
               int64_t t1, float* y, int64_t ys) {
  const Ctx c = gguf_simd::make_ctx(a, w, y, ys);
  if constexpr (requires { Tile::kRepackTokens; })
    if constexpr (Tile::kRepackTokens > 0)
      if (t1 - t0 >= Tile::kRepackTokens) {
        if constexpr (std::is_same_v<Tile, KTile<Tile::kType>>)
          return KRepacked<Tile::kType>::run(c, r0, r1, t0, t1);
        else
          return B32Repacked<Tile::kType>::run(c, r0, r1, t0, t1);
      }
  // Rows outer, up to 4 tokens per pass: a row's blocks stay in L1 across the token passes.
  BlockTable<Tile, 4, 1>::drive(c, r0, r1, t0, t1, 4, 1);
}

}  // namespace

Kernel gguf_avx2_kernel(DType t) {
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
    case DType::GGUF_IQ4_NL:
      return run_tiles<B32Tile<DType::GGUF_IQ4_NL>>;
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
    case DType::GGUF_Q8_K:
      return run_tiles<KTile<DType::GGUF_Q8_K>>;
    default:
      return nullptr;
  }
}

}  // namespace herd::gemm_detail
