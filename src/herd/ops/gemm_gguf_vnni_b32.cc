// GGUF 32-element blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) with AVX-512 VNNI: the decode
// tile, the 16-row repacked prefill path and their dispatch (gemm_gguf_vnni.h describes the
// scheme).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cmath>
#include <vector>

#include "herd/ops/gemm_gguf_vnni.h"

namespace herd::gemm_detail {
namespace gguf_vnni {
namespace {

// ---- 32-element blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): exact block totals in the reference's
// order ----

// Lane j = the sum of block j's 8 lanes, where d[p] holds block 2p in lanes 0-7 and block
// 2p + 1 in lanes 8-15 (exact in int32, any order). A transpose-and-add tree in 512 bits: 22
// instructions for the 16 totals, where two reduce8x8 of the halves took ~42 (vphaddd is three
// micro-ops).
[[gnu::always_inline]] HERD_GV inline __m512i reduce16x8(const __m512i* d) {
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

// Block j's total in lane j, where q[k] holds blocks 4k .. 4k + 3 in its 128-bit lanes (4 lanes
// each): a transposing tree within the 128-bit lanes, then one permute (10 instructions for 16
// totals; reduce16x8 takes 22 from 8 vectors of 2 blocks).
[[gnu::always_inline]] HERD_GV inline __m512i reduce16x4(const __m512i* q) {
  const __m512i a =
      _mm512_add_epi32(_mm512_unpacklo_epi32(q[0], q[1]), _mm512_unpackhi_epi32(q[0], q[1]));
  const __m512i b =
      _mm512_add_epi32(_mm512_unpacklo_epi32(q[2], q[3]), _mm512_unpackhi_epi32(q[2], q[3]));
  // Lane 4m + k: block 4k + m.
  const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
  return _mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), u);
}

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
  using Ctx = gguf_vnni::Ctx;
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

  // kQuad: 16 bytes of 4-bit codes per block (Q4_0, Q4_1, IQ4_NL). Where rows are whole quads of
  // 4 blocks, the decode tile takes a quad's 64 code bytes with one two-source word permute and
  // splits them into its 4 blocks' codes 0..15 and 16..31, against x permuted to that order once
  // per task: per pair of blocks, two 16-byte loads, their nibbles and three inserts took ~11
  // instructions (perf of Q4_0 in cache).
  static constexpr bool kQuad =
      kType == DType::GGUF_Q4_0 || kType == DType::GGUF_Q4_1 || kType == DType::GGUF_IQ4_NL;
  static constexpr bool kPermutedX = kQuad;
  static constexpr bool permutes(int64_t cols) { return kQuad && cols % 128 == 0; }
  // Per 128 elements (a quad): the 4 blocks' elements 0..15, then their elements 16..31.
  HERD_GV static void permute_x(const int8_t* x, int64_t cols, int8_t* out) {
    for (int64_t i = 0; i < cols; i += 128) {
      const __m512i a = _mm512_loadu_si512(x + i), b = _mm512_loadu_si512(x + i + 64);
      _mm512_storeu_si512(out + i, _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
      _mm512_storeu_si512(out + i + 64, _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    }
  }
  // Blocks j .. j + 3 (all present): lo = their codes 0..15, hi = 16..31, block j + m in 128-bit
  // lane m (IQ4_NL's looked up). The quad's bytes past the first 64 come from a masked load, so
  // nothing past the quad is read. Words: every block's qs starts on an even byte.
  HERD_GV static void load_quad(const Block* row, int j, __m512i& lo, __m512i& hi) {
    if constexpr (kQuad) {
      constexpr int S = int(sizeof(Block)), Q = int(offsetof(Block, qs));
      static_assert(S % 2 == 0 && Q % 2 == 0 && 4 * S > 64 && 4 * S <= 128);
      static constexpr struct Idx {
        alignas(64) int16_t v[32];
        constexpr Idx() : v() {
          for (int w = 0; w < 32; ++w) v[w] = int16_t(((w / 8) * S + Q) / 2 + w % 8);
        }
      } kIdx{};
      const auto* p = reinterpret_cast<const uint8_t*>(row + j);
      const __m512i a = _mm512_loadu_si512(p);
      const __m512i b = _mm512_maskz_loadu_epi8(~__mmask64(0) >> (128 - 4 * S), p + 64);
      const __m512i v = _mm512_permutex2var_epi16(a, _mm512_load_si512(kIdx.v), b);
      const __m512i m = _mm512_set1_epi8(0x0F);
      lo = _mm512_and_si512(v, m);
      hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
      if constexpr (kType == DType::GGUF_IQ4_NL) lo = iq4_lookup(lo), hi = iq4_lookup(hi);
    }
  }

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

  // One row's group of 16 blocks (g of them present) for T tokens. Always inlined, as is
  // reduce16x8: GCC kept both out of line for Q4_0 and Q4_1, and the block totals and the row's
  // accumulator then went through the stack every group (perf: 35% of a Q4_0 decode in
  // reduce16x8's stores and loads).
  template <int T, bool kFull, bool kQ>
  [[gnu::always_inline]] HERD_GV static void group(const Ctx& c, const Block* row, int64_t i0,
                                                   int g, int64_t t0, int64_t ahead, __m512* acc) {
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
    // kQ: wa[2k], wa[2k + 1] are quad k's lo and hi (load_quad); else wa[p] is the pair 2p, 2p + 1.
    __m512i wa[8];
    if constexpr (kQ) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        if (!kFull && 4 * k >= g) {
          wa[2 * k] = wa[2 * k + 1] = _mm512_setzero_si512();
          continue;
        }
        load_quad(row, 4 * k, wa[2 * k], wa[2 * k + 1]);
        if constexpr (kSigned)
          for (int h = 0; h < 2; ++h)
            wa[2 * k + h] = _mm512_xor_si512(wa[2 * k + h], _mm512_set1_epi8(char(0x80)));
      }
    } else {
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) {
        const __m512i w = load_pair<kFull>(row, 2 * p, g);
        wa[p] = kSigned ? _mm512_xor_si512(w, _mm512_set1_epi8(char(0x80))) : w;
      }
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
      const int8_t* x = c.xq + (t0 + t - c.x0) * c.kpad + 32 * i0;
      __m512i tot;  // block i0 + j's total in lane j (i0 is a multiple of 16)
      if constexpr (kQ) {
        __m512i v[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          if (!kFull && 4 * k >= g) {
            v[k] = _mm512_setzero_si512();
            continue;
          }
          v[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wa[2 * k],
                                                         _mm512_loadu_si512(x + 128 * k)),
                                     wa[2 * k + 1], _mm512_loadu_si512(x + 128 * k + 64));
        }
        tot = reduce16x4(v);
      } else {
        __m512i v[8];
#pragma GCC unroll 8
        for (int p = 0; p < 8; ++p) {
          if (!kFull && 2 * p >= g) {
            v[p] = _mm512_setzero_si512();
            continue;
          }
          v[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wa[p], _mm512_loadu_si512(x + 64 * p));
        }
        tot = reduce16x8(v);
      }
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
    permutes(c.cols) ? run_rows<T, R, true>(c, r, t0) : run_rows<T, R, false>(c, r, t0);
  }
  // kQ: x permuted by permute_x (run_tiles does it when permutes(cols)), codes taken by quads.
  template <int T, int R, bool kQ>
  HERD_GV static void run_rows(const Ctx& c, int64_t r, int64_t t0) {
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
          group<T, true, kQ>(c, row, i0, g, t0, R * c.rb, acc[q]);
        else
          group<T, false, kQ>(c, row, i0, g, t0, R * c.rb, acc[q]);
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
        in_token_runs<6>(n, [&]<int N>(int64_t t) {
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

}  // namespace
}  // namespace gguf_vnni

Kernel gguf_vnni_b32_kernel(DType t) {
  using namespace gguf_vnni;
  switch (t) {
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
    default:
      return nullptr;
  }
}

}  // namespace herd::gemm_detail
