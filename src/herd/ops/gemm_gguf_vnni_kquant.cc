// GGUF K-quants (Q2_K .. Q6_K), IQ4_XS and Q8_K with AVX-512 VNNI: the decode tile, the 16-row
// repacked prefill path and their dispatch (gemm_gguf_vnni.h describes the scheme).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cmath>
#include <vector>

#include "herd/ops/gemm_gguf_vnni.h"

namespace herd::gemm_detail {
namespace gguf_vnni {
namespace {

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
HERD_GV inline __m512i scaled_dot16(const KBlock& b, const int8_t* x) {
  const __m512i zero = _mm512_setzero_si512();
  return _mm512_add_epi32(scaled_part<kSigned>(b, x, 2, scaled_part<kSigned>(b, x, 0, zero)),
                          scaled_part<kSigned>(b, x, 3, scaled_part<kSigned>(b, x, 1, zero)));
}
template <bool kSigned = false>
HERD_GV inline __m256i scaled_dot(const KBlock& b, const int8_t* x) {
  const __m512i ai = scaled_dot16<kSigned>(b, x);
  return _mm256_add_epi32(_mm512_castsi512_si256(ai), _mm512_extracti64x4_epi64(ai, 1));
}

// [Σ a, Σ b, Σ c, Σ d] of four vectors' 16 lanes (exact in int32, any order): a transposing
// tree, 13 instructions where a 512 → 256 fold per vector and three vphaddd (three micro-ops
// each) took ~20.
HERD_GV inline __m128i sum4x16(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  // Per 128-bit lane: [a, b, c, d] partial sums.
  const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}
// The same for 8 lanes.
HERD_GV inline __m128i sum4x8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
  const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
  const __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
  return _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
}

template <DType kType>
inline constexpr int64_t kKBytes = kType == DType::GGUF_Q6_K     ? sizeof(GgufQ6_K)
                                   : kType == DType::GGUF_Q5_K   ? sizeof(GgufQ5_K)
                                   : kType == DType::GGUF_Q2_K   ? sizeof(GgufQ2_K)
                                   : kType == DType::GGUF_Q3_K   ? sizeof(GgufQ3_K)
                                   : kType == DType::GGUF_IQ4_XS ? sizeof(GgufIQ4_XS)
                                                                 : sizeof(GgufQ4_K);

// The repacked prefill path (below), which KTile hands tasks of kRepackTokens or more.
template <DType kType>
HERD_GV void k_repacked(const Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1);

// One row × T tokens (decode, small batches). A superblock's scaled integer dot and its mins /
// offsets are summed exactly to two int32 (8 superblocks' sums reduced together), then added with
// the reference's two FMAs in its order: so results equal gguf_dot_row (and the repacked path
// below) bit for bit.
template <DType kTypeArg>
struct KTile {
  using Ctx = gguf_vnni::Ctx;
  static constexpr int kRows = 4;
  static constexpr DType kType = kTypeArg;
  // Q4_K / Q5_K read x in the codes' memory order (permute_k4_x), saving 4 shuffles per
  // superblock and row.
  static constexpr bool kPermutedX = kType == DType::GGUF_Q4_K || kType == DType::GGUF_Q5_K;
  static constexpr bool permutes(int64_t) { return true; }
  HERD_GV static void permute_x(const int8_t* x, int64_t cols, int8_t* out) {
    permute_k4_x(x, cols / 256, out);
  }
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
  // together in one tile (run_lanes), for independent chains.
  template <int T, int R>
  HERD_GV static void run(const Ctx& c, int64_t r, int64_t t0) {
    const bool near = R * c.rb <= kNearPrefetch;
    if constexpr (T == 1) {
      if (c.cols > 256 * G) {
        for (int q = 0; q < R; ++q)
          near ? run_row<true>(c, r + q, t0, R) : run_row<false>(c, r + q, t0, R);
        return;
      }
    }
    if (R > 1 && c.cols > 256 * G) {
      for (int q = 0; q < R; ++q)
        near ? run_impl<T, 1, true>(c, r + q, t0, R) : run_impl<T, 1, false>(c, r + q, t0, R);
    } else if constexpr (R == 4 && T == 1) {
      near ? run_lanes<true>(c, r, t0) : run_lanes<false>(c, r, t0);
    } else {
      near ? run_impl<T, R, true>(c, r, t0, R) : run_impl<T, R, false>(c, r, t0, R);
    }
  }
  // One token over 4 rows of at most G superblocks, read in address order (row by row): each
  // row's superblock totals are reduced 4 at a time in registers (sum4x16), a 4 × 4 transpose
  // turns them into the 4 rows' totals per superblock, and the reference's two FMAs run in the 4
  // lanes of one vector (bit for bit the scalar chains of run_impl). run_impl's 4 × 8 vectors of
  // totals went through the stack and its loops kept their pointers in spills:
  // GgufDecode/N/1024/1024/1/1/0 in cache, Zen 4, 1 thread, alternated runs: see BENCHMARKS.md.
  // Superblock by superblock over the 4 rows (4 streams) was faster in cache but up to twice as
  // slow from memory (16 experts' [2048, 1024], 2 threads: Q6_K 0.90 -> 1.85 ms).
  template <bool kNear>
  HERD_GV static void run_lanes(const Ctx& c, int64_t r, int64_t t0) {
    const int64_t nb = c.cols / 256, rb = c.rb;
    const int8_t* const xq = c.xq + (t0 - c.x0) * c.kpad;
    const int16_t* const xs = c.xs + t0 * (c.kpad / 16);
    const float* const xd = c.xd + t0 * c.nd;
    const uint8_t* const w0 = c.w + r * rb;
    // The next tile's bytes (4 rows on), as run_impl prefetches them.
    const uintptr_t next = reinterpret_cast<uintptr_t>(w0) + uintptr_t(4 * rb);
    alignas(16) float dd[G][4], dm[G][4];
    __m128i sv[4][G / 4], mv[4][G / 4];  // [row][superblocks 4h .. 4h + 3]
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const uint8_t* const row = w0 + q * rb;
#pragma GCC unroll 2
      for (int h = 0; h < G / 4; ++h) {
        if (4 * h >= nb) break;
        __m512i a[4];
        __m256i o[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          const int64_t i = 4 * h + j;
          if (i >= nb) {
            a[j] = _mm512_setzero_si512(), o[j] = _mm256_setzero_si256();
            continue;
          }
          prefetch_ahead<kKBytes<kType>, kNear>(next + uintptr_t((q * nb + i) * kKBytes<kType>));
          KBlock b;
          unpack_k<kType, kPermutedX>(row + i * kKBytes<kType>, b);
          dd[i][q] = b.d, dm[i][q] = b.dmin;
          o[j] = _mm256_madd_epi16(
              b.off, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + 16 * i)));
          a[j] = scaled_dot16<kSignedCodes<kType>>(b, xq + 256 * i);
          if constexpr (kSignedScale<kType>)
            a[j] = _mm512_sub_epi32(a[j], _mm512_zextsi256_si512(o[j]));
        }
        sv[q][h] = sum4x16(a[0], a[1], a[2], a[3]);
        if constexpr (!kSignedScale<kType>) mv[q][h] = sum4x8(o[0], o[1], o[2], o[3]);
      }
    }
    __m128 accv = _mm_setzero_ps();
#pragma GCC unroll 2
    for (int h = 0; h < G / 4; ++h) {
      if (4 * h >= nb) break;
      __m128 s[4] = {_mm_castsi128_ps(sv[0][h]), _mm_castsi128_ps(sv[1][h]),
                     _mm_castsi128_ps(sv[2][h]), _mm_castsi128_ps(sv[3][h])};
      _MM_TRANSPOSE4_PS(s[0], s[1], s[2], s[3]);  // s[j]: the 4 rows' totals of superblock 4h + j
      __m128 m[4];
      if constexpr (!kSignedScale<kType>) {
        m[0] = _mm_castsi128_ps(mv[0][h]), m[1] = _mm_castsi128_ps(mv[1][h]);
        m[2] = _mm_castsi128_ps(mv[2][h]), m[3] = _mm_castsi128_ps(mv[3][h]);
        _MM_TRANSPOSE4_PS(m[0], m[1], m[2], m[3]);
      }
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const int64_t i = 4 * h + j;
        if (i >= nb) break;
        const __m128 xdj = _mm_set1_ps(xd[i]);
        accv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(s[j])),
                            _mm_mul_ps(_mm_load_ps(dd[i]), xdj), accv);
        if constexpr (!kSignedScale<kType>)
          accv = _mm_fnmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(m[j])),
                               _mm_mul_ps(_mm_load_ps(dm[i]), xdj), accv);
      }
    }
    _mm_storeu_ps(c.y + t0 * c.ys + r, accv);
  }
  // One token, one row of any length (a tile's rows of more than G superblocks, in turn): its
  // superblock totals reduced 4 at a time in registers (sum4x16), then the reference's two FMAs
  // per superblock in order. run_impl<1, 1> kept 8 superblocks' totals on the stack.
  template <bool kNear>
  HERD_GV static void run_row(const Ctx& c, int64_t r, int64_t t0, int64_t ahead) {
    const int64_t nb = c.cols / 256;
    const int8_t* const xq = c.xq + (t0 - c.x0) * c.kpad;
    const int16_t* const xs = c.xs + t0 * (c.kpad / 16);
    const float* const xd = c.xd + t0 * c.nd;
    const uint8_t* const row = c.w + r * c.rb;
    const uintptr_t next = reinterpret_cast<uintptr_t>(row) + uintptr_t(ahead * c.rb);
    float acc = 0.0f;
    for (int64_t i0 = 0; i0 < nb; i0 += 4) {
      __m512i a[4];
      __m256i o[4];
      float d[4] = {}, dm[4] = {};
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const int64_t i = i0 + j;
        if (i >= nb) {
          a[j] = _mm512_setzero_si512(), o[j] = _mm256_setzero_si256();
          continue;
        }
        prefetch_ahead<kKBytes<kType>, kNear>(next + uintptr_t(i * kKBytes<kType>));
        KBlock b;
        unpack_k<kType, kPermutedX>(row + i * kKBytes<kType>, b);
        d[j] = b.d, dm[j] = b.dmin;
        o[j] = _mm256_madd_epi16(b.off,
                                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + 16 * i)));
        a[j] = scaled_dot16<kSignedCodes<kType>>(b, xq + 256 * i);
        if constexpr (kSignedScale<kType>)
          a[j] = _mm512_sub_epi32(a[j], _mm512_zextsi256_si512(o[j]));
      }
      alignas(16) int32_t s[4], m[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(s), sum4x16(a[0], a[1], a[2], a[3]));
      if constexpr (!kSignedScale<kType>)
        _mm_store_si128(reinterpret_cast<__m128i*>(m), sum4x8(o[0], o[1], o[2], o[3]));
      const int g = int(std::min<int64_t>(4, nb - i0));
      for (int j = 0; j < g; ++j) {
        const float xdj = xd[i0 + j];
        acc = std::fma(float(s[j]), d[j] * xdj, acc);
        if constexpr (!kSignedScale<kType>) acc = std::fma(float(m[j]), -(dm[j] * xdj), acc);
      }
    }
    c.y[t0 * c.ys + r] = acc;
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
    float acc[R][T] = {};
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
    for (int q = 0; q < R; ++q)
      for (int t = 0; t < T; ++t) c.y[(t0 + t) * c.ys + r + q] = acc[q][t];
  }
};

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
    // Per row: its codes (4 vectors), and its scales and offsets as int32 lanes, so that one
    // 16 × 16 transpose each turns rows into the 16-row lanes the dots read (row by row, they
    // were ~30 scalar stores per row: a third of the pack).
    __m512i v[4][16], sv[16], ov[16];
    for (int q = 0; q < 16; ++q) {
      if (q >= nr) {  // rows past the matrix: zero codes and scales
        for (int z = 0; z < 4; ++z) v[z][q] = _mm512_setzero_si512();
        sv[q] = ov[q] = _mm512_setzero_si512();
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
      // off[p]: the int16 pair of the sums of 16 number 2p and 2p + 1, as one int32.
      __m512i sc32;
      if constexpr (kSub == 16 || kSignedCodes<kType>)
        sc32 = _mm512_cvtepi16_epi32(b.s16);
      else
        sc32 = _mm512_cvtepu8_epi32(unpack_scale_min_k4(blk + 4));  // the 8 scales, then mins
      if constexpr (kSub == 8) {  // scales in lanes 0..7, offsets in 8..15: one transpose
        sv[q] = _mm512_inserti64x4(sc32, b.off, 1);
      } else {
        sv[q] = sc32, ov[q] = _mm512_zextsi256_si512(b.off);
      }
      d[q] = b.d, dmin[q] = b.dmin;
    }
    for (int z = 0; z < 4; ++z) {
      transpose16(v[z]);
      for (int k = 0; k < 16; ++k) _mm512_store_si512(codes + (16 * z + k) * 64, v[z][k]);
    }
    transpose16(sv);
    for (int s = 0; s < kSub; ++s) _mm512_store_si512(sc[s], sv[s]);
    if constexpr (kSub == 8) {
      for (int p = 0; p < 8; ++p) _mm512_store_si512(off[p], sv[8 + p]);
    } else {
      transpose16(ov);
      for (int p = 0; p < 8; ++p) _mm512_store_si512(off[p], ov[p]);
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

// Tokens tok .. tok + N − 1 (batch rows) over the whole panel of 16 packed rows: the N
// accumulators stay in registers across the superblocks, which add in the reference's order.
template <int N, DType kType>
HERD_GV inline void k_repacked_run(const Ctx& c, const KRepacked<kType>* pks, int64_t nb,
                                   int64_t tok, int64_t rb, int nr) {
  const int8_t* x[N];
  const int16_t* bs[N];
  const float* xd[N];
  __m512 acc[N];
  for (int n = 0; n < N; ++n) {
    x[n] = c.xq + (tok + n) * c.kpad;
    bs[n] = c.xs + (tok + n) * (c.kpad / 16);
    xd[n] = c.xd + (tok + n) * c.nd;
    acc[n] = _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < nb; ++i) {
    const int8_t* xi[N];
    const int16_t* bsi[N];
    float xdi[N];
    for (int n = 0; n < N; ++n) xi[n] = x[n] + 256 * i, bsi[n] = bs[n] + 16 * i, xdi[n] = xd[n][i];
    pks[i].template dot<N>(xi, bsi, xdi, acc);
  }
  const __mmask16 m = nr == 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1);
  for (int n = 0; n < N; ++n) _mm512_mask_storeu_ps(c.y + (tok + n) * c.ys + rb, m, acc[n]);
}

template <DType kType>
HERD_GV void k_repacked(const Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  // A panel of 16 rows is packed whole first (K = 1024: 21 KiB; 8192: 170 KiB, in L2), then the
  // task's tokens run through it in groups of up to 6 with their sums in registers. Superblock
  // by superblock, the 16 × 6 sums went through memory once per superblock, and each
  // superblock's pack hopped across the 16 rows.
  thread_local std::vector<KRepacked<kType>> pks;
  const int64_t nb = c.cols / 256;
  if (pks.size() < size_t(nb)) pks.resize(size_t(nb));
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int nr = int(std::min<int64_t>(16, r1 - rb));
    for (int64_t i = 0; i < nb; ++i) {
      // The next superblock of the 16 rows (16 streams a row apart), fetched while this one is
      // packed.
      if (i + 1 < nb)
        for (int q = 0; q < nr; ++q)
          prefetch_ahead<kKBytes<kType>, true>(
              reinterpret_cast<uintptr_t>(c.w + (rb + q) * c.rb + (i + 1) * kKBytes<kType>));
      pks[size_t(i)].pack(c.w + rb * c.rb, c.rb, i, nr);
    }
    in_token_runs<6>(
        t1 - t0, [&]<int N>(int64_t t) { k_repacked_run<N>(c, pks.data(), nb, t0 + t, rb, nr); });
  }
}

// Q8_K stored as a weight: 256 int8 codes, f32 d.
struct Q8KTile {
  using Ctx = gguf_vnni::Ctx;
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

}  // namespace
}  // namespace gguf_vnni

Kernel gguf_vnni_kquant_kernel(DType t) {
  using namespace gguf_vnni;
  switch (t) {
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
      return run_tiles<Q8KTile>;
    default:
      return nullptr;
  }
}

}  // namespace herd::gemm_detail
