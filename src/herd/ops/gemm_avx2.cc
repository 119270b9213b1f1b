// AVX2 + FMA kernels (Haswell / Zen 1 and later): all formats. Float formats use the same tile
// shape as gemm_avx512.cc with 8 lanes; int8 uses maddubs/madd with the sign trick (weights made
// signed by removing their bias, |w| × sign(x, w) keeps maddubs' int16 pair sums from saturating),
// then q_group_fma per group, so Q8G / Q4G results equal every other path's bit for bit.
// GCC 12's intrinsic headers start some results from _mm512_undefined_*(), which its
// -W(maybe-)uninitialized misreads when inlined into target-attributed functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "herd/ops/gemm_internal.h"
#include "herd/ops/int8_avx2.h"
#include "herd/quant/formats.h"

#define HERD_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace herd::gemm_detail {

namespace {

using int8_avx2::reduce8x8;
using int8_avx2::transpose8;

struct Ctx {
  const void* x;  // f32 [.., kpad]: token t's row at x + (t − x0) · kpad
  int64_t x0;
  int64_t kpad, k;
  const uint8_t* w;
  int64_t w_row_bytes;
  const float* row_scale;
  float* y;
  int64_t ys;
  bool stream;      // a task of at most kStreamTokens tokens: its rows are read once, from memory
  int64_t t_first;  // the task's first token
};
constexpr int64_t kStreamTokens = 4;

HERD_AVX2 inline __m256 widen_bf16(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
HERD_AVX2 inline __m256 fp8_to_f32(__m128i b) {
  const __m256i v = _mm256_cvtepu8_epi32(b);
  const __m256i mag = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x7f)), 20);
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x80)), 24);
  const __m256 f = _mm256_mul_ps(_mm256_castsi256_ps(mag), _mm256_set1_ps(kFp8Rebias));
  return _mm256_or_ps(f, _mm256_castsi256_ps(sign));
}
HERD_AVX2 inline void widen_bf16_row(const uint16_t* h, int64_t n, float* f) {  // n: multiple of 8
  for (int64_t i = 0; i < n; i += 8)
    _mm256_store_ps(f + i, widen_bf16(_mm_load_si128(reinterpret_cast<const __m128i*>(h + i))));
}
HERD_AVX2 inline float hsum8(__m256 v) {  // fixed tree: halves, then quarters, then pairs
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 weights at element i as f32; the K tail (n < 8) goes through a zero-padded copy.
template <DType kW>
HERD_AVX2 inline __m256 load_w(const uint8_t* row, int64_t i, int64_t n) {
  constexpr int eb = kW == DType::F32 ? 4 : kW == DType::BF16 ? 2 : 1;
  alignas(32) uint8_t tmp[32] = {};
  const uint8_t* p = row + i * eb;
  if (n < 8) p = static_cast<const uint8_t*>(std::memcpy(tmp, p, size_t(n * eb)));
  if constexpr (kW == DType::F32) return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  if constexpr (kW == DType::BF16)
    return widen_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return fp8_to_f32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// x as f32 rows [t][kpad] (BF16 / F8 weights: the bf16 activations widened once per task, exact),
// so the tile's FMAs load x as they go: with x widened in the loop (and the K tail's copy in it)
// GCC 12 kept the accumulators on the stack, one store each per 8 K (perf annotate, Prefill/0).
template <DType kW>
struct FTile {
  using Ctx = gemm_detail::Ctx;
  // 8 K of every (token, row); inlined with n = 8, the tail's copy drops out of the main loop.
  template <int T, int R>
  HERD_AVX2 __attribute__((always_inline)) static inline void step(const uint8_t* const* wp,
                                                                   const float* xf, int64_t kpad,
                                                                   int64_t i, int64_t n,
                                                                   __m256 (&acc)[T][R]) {
    __m256 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = load_w<kW>(wp[r], i, n);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        acc[t][r] = _mm256_fmadd_ps(_mm256_load_ps(xf + t * kpad + i), wv[r], acc[t][r]);
  }
  template <int T, int R>
  HERD_AVX2 static void run(const Ctx& c, int64_t r0, int64_t t0) {
    __m256 acc[T][R];
    const uint8_t* wp[R];
    const float* xf = static_cast<const float*>(c.x) + (t0 - c.x0) * c.kpad;
    for (int r = 0; r < R; ++r) wp[r] = c.w + (r0 + r) * c.w_row_bytes;
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) acc[t][r] = _mm256_setzero_ps();
    int64_t i = 0;
    // Decode and a few tokens (an expert's in a batched decode step, c.stream): a line of the
    // next tile's rows per line read (prefetch_span). Bench_kernels Decode/0/2048/1024/T/16/1,
    // three rounds: T = 2 5.3–5.9 → 3.9–4.2 ms, T = 4 4.9–6.2 → 4.0–5.3 ms. Not for larger token
    // counts, whose tiles come back to the same rows (hot prefill 1.3–2× slower with it).
    // Larger tasks: the first token block of each row block asks for the next row block, so
    // the weights' one trip from memory overlaps that block's FMAs.
    if (T == 1 || c.stream || t0 == c.t_first) {
      constexpr int64_t eb = kW == DType::F32 ? 4 : kW == DType::BF16 ? 2 : 1, kLine = 64 / eb;
      const int64_t ahead = R * c.w_row_bytes;
      const bool near = ahead <= kNearPrefetchBytes;
      for (; i + kLine <= c.k; i += kLine) {
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) prefetch_span<64>(wp[r] + ahead + i * eb, near);
#pragma GCC unroll 8
        for (int64_t j = 0; j < kLine; j += 8) step<T, R>(wp, xf, c.kpad, i + j, 8, acc);
      }
    }
    for (; i + 8 <= c.k; i += 8) step<T, R>(wp, xf, c.kpad, i, 8, acc);
    // The K tail: weights through a zero-padded copy, x is zero-padded to kpad.
    if (i < c.k) step<T, R>(wp, xf, c.kpad, i, c.k - i, acc);
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) {
        const float d = hsum8(acc[t][r]);
        c.y[(t0 + t) * c.ys + r0 + r] = c.row_scale ? d * c.row_scale[r0 + r] : d;
      }
  }
};

template <DType kW>
void float_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                  int64_t t1, float* y, int64_t ys) {
  const void* x = a.f32.data();
  int64_t x0 = 0;
  if constexpr (kW != DType::F32) {  // the task's bf16 rows widened to f32 once
    thread_local AlignedBuffer<float> xb;
    float* xf = xb.ensure(size_t((t1 - t0) * a.kpad));
    for (int64_t t = t0; t < t1; ++t)
      widen_bf16_row(a.bf16.data() + t * a.kpad, a.kpad, xf + (t - t0) * a.kpad);
    x = xf, x0 = t0;
  }
  const int64_t eb = kW == DType::F32 ? 4 : kW == DType::BF16 ? 2 : 1;
  const Ctx c{x,
              x0,
              a.kpad,
              a.k,
              static_cast<const uint8_t*>(w.data),
              w.cols * eb,
              kW == DType::F8_E4M3 ? w.row_scale : nullptr,
              y,
              ys,
              t1 - t0 <= kStreamTokens,
              t0};
  // Prefill tiles of 4 tokens × 3 rows: 12 accumulators, 3 weight vectors and x fill the 16
  // registers (3 × 4 needs 17: GCC kept one accumulator on the stack, a store-to-load chain per
  // 8 K that took 60% of the samples). Decode: 1 token × 4 rows.
  using Table = BlockTable<FTile<kW>, 4, 4>;
  if (t1 - t0 == 1)
    Table::drive(c, r0, r1, t0, t1, 1, 4);
  else
    Table::drive(c, r0, r1, t0, t1, 4, 3);
}

// ---- Q8G / Q4G ----

HERD_AVX2 inline __m256i dot32(__m256i w_signed, __m256i x) {
  const __m256i p =
      _mm256_maddubs_epi16(_mm256_sign_epi8(w_signed, w_signed), _mm256_sign_epi8(x, w_signed));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}
HERD_AVX2 inline int32_t hsum8i(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Decode, 1 token × 4 rows: two groups' 8 dot vectors (Tile::group_dot, whose lanes sum to the
// group's total before the bias Tile::kBias · Σq) reduced side by side (vphaddd), where a
// horizontal sum per row and group was 7 of the ~34 instructions a Q4G group took, and the
// q_group_fma of both groups as 4-lane FMAs, group g before g + 1 in each row's lane.
template <class Tile>
HERD_AVX2 void run_pairs(const Int8Ctx& c, int64_t r0, int64_t t0) {
  __m128 acc = _mm_setzero_ps();
  // The next tile's rows at the same position, a tile ahead (prefetch_span).
  const uint8_t* ahead = c.w + (r0 + 4) * c.w_stride;
  const bool near = 4 * c.w_stride <= kNearPrefetchBytes;
  for (int64_t g = 0; g < c.groups; g += 2) {
    const bool two = g + 1 < c.groups;
    __m256i d[8];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      prefetch_span<2 * Tile::kGroupBytes>(ahead + r * c.w_stride + g * Tile::kGroupBytes, near);
      d[r] = Tile::group_dot(c, r0 + r, g, t0);
      d[4 + r] = two ? Tile::group_dot(c, r0 + r, g + 1, t0) : _mm256_setzero_si256();
    }
    const int32_t* qs = c.x_sum + g * c.n + t0;
    const float* xs = c.x_scale + g * c.n + t0;
    const float* ws = c.w_scale + r0 * c.groups + g;
    const int64_t G = c.groups;
    // Lanes 0..3: group g of rows r0..r0+3; 4..7: group g + 1.
    const __m256i tot = _mm256_sub_epi32(
        reduce8x8(d), _mm256_set_m128i(_mm_set1_epi32(two ? Tile::kBias * qs[c.n] : 0),
                                       _mm_set1_epi32(Tile::kBias * qs[0])));
    const __m256 f = _mm256_cvtepi32_ps(tot);
    const __m128 s0 =
        _mm_mul_ps(_mm_setr_ps(ws[0], ws[G], ws[2 * G], ws[3 * G]), _mm_set1_ps(xs[0]));
    acc = _mm_fmadd_ps(_mm256_castps256_ps128(f), s0, acc);
    if (two) {
      const __m128 s1 = _mm_mul_ps(_mm_setr_ps(ws[1], ws[G + 1], ws[2 * G + 1], ws[3 * G + 1]),
                                   _mm_set1_ps(xs[c.n]));
      acc = _mm_fmadd_ps(_mm256_extractf128_ps(f, 1), s1, acc);
    }
  }
  alignas(16) float y[4];
  _mm_store_ps(y, acc);
  for (int r = 0; r < 4; ++r) c.y[t0 * c.ys + r0 + r] = y[r];
}

// 2 tokens × 4 rows (an expert's few tokens in a batched decode step): each row's group unpacked
// once for both tokens, the 8 dot vectors reduced together (lanes [token][row]) and one 8-lane
// q_group_fma per group, where run_groups took a horizontal sum per token, row and group.
template <class Tile>
HERD_AVX2 void run_duo(const Int8Ctx& c, int64_t r0, int64_t t0) {
  __m256 acc = _mm256_setzero_ps();
  const uint8_t* ahead = c.w + (r0 + 4) * c.w_stride;  // prefetch_span
  const bool near = 4 * c.w_stride <= kNearPrefetchBytes;
  const int64_t G = c.groups;
  for (int64_t g = 0; g < G; ++g) {
    __m256i d[8];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      prefetch_span<Tile::kGroupBytes>(ahead + r * c.w_stride + g * Tile::kGroupBytes, near);
      __m256i wv[4];
      Tile::codes(c.w + (r0 + r) * c.w_stride + g * Tile::kGroupBytes, wv);
      d[r] = Tile::dot(wv, c.xq + t0 * c.kpad + g * 128);
      d[4 + r] = Tile::dot(wv, c.xq + (t0 + 1) * c.kpad + g * 128);
    }
    const int32_t* qs = c.x_sum + g * c.n + t0;
    const float* xs = c.x_scale + g * c.n + t0;
    const float* ws = c.w_scale + r0 * G + g;
    const __m128 w4 = _mm_setr_ps(ws[0], ws[G], ws[2 * G], ws[3 * G]);
    const __m256i tot = _mm256_sub_epi32(
        reduce8x8(d),
        _mm256_set_m128i(_mm_set1_epi32(Tile::kBias * qs[1]), _mm_set1_epi32(Tile::kBias * qs[0])));
    const __m256 s = _mm256_mul_ps(_mm256_set_m128(w4, w4),
                                   _mm256_set_m128(_mm_set1_ps(xs[1]), _mm_set1_ps(xs[0])));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot), s, acc);
  }
  alignas(32) float y[8];
  _mm256_store_ps(y, acc);
  for (int t = 0; t < 2; ++t)
    for (int r = 0; r < 4; ++r) c.y[(t0 + t) * c.ys + r0 + r] = y[4 * t + r];
}

// T tokens × R rows, group by group: Tile::codes unpacks a row's group (Tile::kGroupBytes),
// Tile::dot gives 8 int32 lanes summing to its total before the bias Tile::kBias · Σq, and
// q_group_fma takes each exact total. Every loop over a group's vectors is unrolled: at -O2
// GCC 12 left the small ones rolled, so the vectors went through the stack by computed addresses.
template <class Tile, int T, int R>
HERD_AVX2 void run_groups(const Int8Ctx& c, int64_t r0, int64_t t0) {
  float acc[T][R] = {};
  // Decode-sized tiles (T ≤ 2: one token, or the expert products' few) prefetch the next tile's
  // rows (prefetch_span); larger token blocks come back to these rows before the next ones.
  const uint8_t* ahead = c.w + (r0 + R) * c.w_stride;
  const bool near = R * c.w_stride <= kNearPrefetchBytes;
  for (int64_t g = 0; g < c.groups; ++g) {
    __m256i d[T][R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      if (T <= 2)
        prefetch_span<Tile::kGroupBytes>(ahead + r * c.w_stride + g * Tile::kGroupBytes, near);
      __m256i wv[4];
      Tile::codes(c.w + (r0 + r) * c.w_stride + g * Tile::kGroupBytes, wv);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) d[t][r] = Tile::dot(wv, c.xq + (t0 + t) * c.kpad + g * 128);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const int32_t bias = Tile::kBias * c.x_sum[g * c.n + t0 + t];
      const float xs = c.x_scale[g * c.n + t0 + t];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        acc[t][r] =
            q_group_fma(acc[t][r], hsum8i(d[t][r]) - bias, c.w_scale[(r0 + r) * c.groups + g], xs);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r) c.y[(t0 + t) * c.ys + r0 + r] = acc[t][r];
}

// Q8G's tile: signed codes (the 128 bias removed by xor), the sign trick.
// (run_pairs measured no faster here: a Q8G decode streams near the probe's bandwidth already.)
struct Q8Tile {
  using Ctx = Int8Ctx;
  static constexpr int32_t kBias = 0;
  static constexpr int64_t kGroupBytes = 128;
  // A group's 128 signed codes at p, in x order: 4 vectors of 32 elements.
  HERD_AVX2 static void codes(const uint8_t* p, __m256i* wv) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)  // xor 0x80 = subtract the 128 bias in two's complement
      wv[j] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * j)),
                               _mm256_set1_epi8(char(0x80)));
  }
  HERD_AVX2 static __m256i dot(const __m256i* wv, const int8_t* xp) {
    __m256i s = dot32(wv[0], _mm256_load_si256(reinterpret_cast<const __m256i*>(xp)));
#pragma GCC unroll 4
    for (int j = 1; j < 4; ++j)
      s = _mm256_add_epi32(
          s, dot32(wv[j], _mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 32 * j))));
    return s;
  }

  template <int T, int R>
  HERD_AVX2 static void run(const Ctx& c, int64_t r0, int64_t t0) {
    run_groups<Q8Tile, T, R>(c, r0, t0);
  }
};

// Q4G's decode tile: its codes stay unsigned (0..15) against x, where the sign trick cost two
// vpsignb and a bias subtraction per vector; a group's 4 vectors' pairs add up in int16 (4 · 2 ·
// 15 · 127 ≤ 32767), one vpmaddwd per group, and the bias 8 goes through Σq of the group
// (x_sum). The same exact totals, then q_group_fma: the QTile's bits.
struct Q4Tile {
  using Ctx = Int8Ctx;
  static constexpr int32_t kBias = 8;
  static constexpr int64_t kGroupBytes = 64;
  // A group's 128 codes at p (64 bytes): elements 0-31, 32-63 in the low nibbles, 64-95, 96-127
  // in the high ones.
  HERD_AVX2 static void codes(const uint8_t* p, __m256i* wv) {
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    wv[0] = _mm256_and_si256(b0, nib), wv[1] = _mm256_and_si256(b1, nib);
    wv[2] = _mm256_and_si256(_mm256_srli_epi16(b0, 4), nib);
    wv[3] = _mm256_and_si256(_mm256_srli_epi16(b1, 4), nib);
  }
  // The 8 int32 lanes whose sum is Σ u·x over the group (xp: its 128 activations).
  HERD_AVX2 static __m256i dot(const __m256i* wv, const int8_t* xp) {
    __m256i a =
        _mm256_maddubs_epi16(wv[0], _mm256_load_si256(reinterpret_cast<const __m256i*>(xp)));
#pragma GCC unroll 4
    for (int j = 1; j < 4; ++j)
      a = _mm256_add_epi16(
          a, _mm256_maddubs_epi16(
                 wv[j], _mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 32 * j))));
    return _mm256_madd_epi16(a, _mm256_set1_epi16(1));
  }
  HERD_AVX2 static __m256i group_dot(const Ctx& c, int64_t row, int64_t g, int64_t tok) {
    __m256i wv[4];
    codes(c.w + row * c.w_stride + g * 64, wv);
    return dot(wv, c.xq + tok * c.kpad + g * 128);
  }

  template <int T, int R>
  HERD_AVX2 static void run(const Ctx& c, int64_t r0, int64_t t0) {
    if constexpr (T == 1 && R == 4)
      run_pairs<Q4Tile>(c, r0, t0);
    else if constexpr (T == 2 && R == 4)
      run_duo<Q4Tile>(c, r0, t0);
    else
      run_groups<Q4Tile, T, R>(c, r0, t0);
  }
};

// Prefill (tasks of kRepackTokens or more): 8 rows' group of 128 repacked as [32 chunks of 4 K]
// [8 rows][4 bytes] once and reused by every token of the task: one vpmaddubsw of a chunk against
// 4 broadcast bytes of x serves 8 rows, with no horizontal sum per token. Q4G keeps its codes
// unsigned (0..15): 8 chunks' pairs add up in int16 exactly (8 · 2 · 15 · 127 ≤ 32767) and the
// bias goes through Σq of the group (8 · x_sum). Q8G takes |w| against x with w's sign (a pair
// reaches 2 · 128 · 127), one vpmaddwd per chunk. Each group's exact total then takes
// q_group_fma, 8 rows side by side: the tile's bits.
template <DType kType>
struct QRepacked {
  static constexpr bool k4 = kType == DType::Q4G;
  static constexpr int kGroup = k4 ? 8 : 1;  // chunks summed in int16
  alignas(32) uint8_t codes[32][32];         // Q8G: |w|
  alignas(32) int8_t sgn[k4 ? 1 : 32][32];   // Q8G: the signed codes, for vpsignb
  alignas(32) float ws[8];

  HERD_AVX2 void pack(const Int8Ctx& c, int64_t rb, int64_t g, int nr) {
    __m256i v[4][8];  // [vector of 32 codes][row]
    for (int q = 0; q < 8; ++q) {
      if (q >= nr) {
        for (int z = 0; z < 4; ++z) v[z][q] = _mm256_setzero_si256();
        ws[q] = 0;
        continue;
      }
      const uint8_t* p = c.w + (rb + q) * c.w_stride;
      if constexpr (k4) {
        __m256i wv[4];
        Q4Tile::codes(p + g * 64, wv);
        for (int z = 0; z < 4; ++z) v[z][q] = wv[z];
      } else {
        __m256i wv[4];
        Q8Tile::codes(p + g * 128, wv);
        for (int z = 0; z < 4; ++z) v[z][q] = wv[z];
      }
      ws[q] = c.w_scale[(rb + q) * c.groups + g];
    }
    for (int z = 0; z < 4; ++z) {
      transpose8(v[z]);
      for (int k = 0; k < 8; ++k) {
        __m256i cv = v[z][k];
        if constexpr (!k4) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(sgn[8 * z + k]), cv);
          cv = _mm256_sign_epi8(cv, cv);
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(codes[8 * z + k]), cv);
      }
    }
  }

  // acc: [tokens][8 rows]; group g for N tokens from token t of the task.
  template <int N>
  HERD_AVX2 void dot(const Int8Ctx& c, int64_t g, int64_t t0, int64_t t, float* acc) const {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i tot[N];
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) tot[n] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int h = 0; h < 32; h += kGroup) {
      __m256i a[N];
#pragma GCC unroll 8
      for (int ch = 0; ch < kGroup; ++ch) {
        const int C = h + ch;
        const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(codes[C]));
        __m256i wsg;
        if constexpr (!k4) wsg = _mm256_load_si256(reinterpret_cast<const __m256i*>(sgn[C]));
#pragma GCC unroll 8
        for (int n = 0; n < N; ++n) {
          int32_t xv;
          std::memcpy(&xv, c.xq + (t0 + t + n) * c.kpad + g * 128 + 4 * C, 4);
          __m256i xb = _mm256_set1_epi32(xv);
          if constexpr (!k4) xb = _mm256_sign_epi8(xb, wsg);
          const __m256i p = _mm256_maddubs_epi16(w, xb);
          a[n] = ch == 0 ? p : _mm256_add_epi16(a[n], p);
        }
      }
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n) tot[n] = _mm256_add_epi32(tot[n], _mm256_madd_epi16(a[n], ones));
    }
    const __m256 wsv = _mm256_load_ps(ws);
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) {
      const int64_t tok = t0 + t + n;
      if constexpr (k4)  // the codes' bias 8 times Σq of the group
        tot[n] = _mm256_sub_epi32(tot[n], _mm256_set1_epi32(8 * c.x_sum[g * c.n + tok]));
      float* pa = acc + (t + n) * 8;
      _mm256_store_ps(pa,
                      _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[n]),
                                      _mm256_mul_ps(wsv, _mm256_set1_ps(c.x_scale[g * c.n + tok])),
                                      _mm256_load_ps(pa)));
    }
  }

  HERD_AVX2 static void run(const Int8Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    thread_local QRepacked pk;
    thread_local AlignedBuffer<float> accb;
    const int64_t nt = t1 - t0;
    float* acc = accb.ensure(size_t(nt * 8));
    for (int64_t rb = r0; rb < r1; rb += 8) {
      const int nr = int(std::min<int64_t>(8, r1 - rb));
      std::fill(acc, acc + nt * 8, 0.0f);
      for (int64_t g = 0; g < c.groups; ++g) {
        pk.pack(c, rb, g, nr);
        in_token_runs<4>(nt, [&]<int N>(int64_t t) { pk.template dot<N>(c, g, t0, t, acc); });
      }
      for (int64_t t = 0; t < nt; ++t)
        for (int q = 0; q < nr; ++q) c.y[(t0 + t) * c.ys + rb + q] = acc[t * 8 + q];
    }
  }
};

template <DType kType>
void quant_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                  int64_t t1, float* y, int64_t ys) {
  const Int8Ctx c = int8_ctx(a, w, packed_row_bytes(kType, w.cols), r1, y, ys);
  // From this many tokens the repack pays (bench_kernels Prefill and Decode, same run, Zen 3: at
  // 8 tokens 1.2–1.9× the tiles' time; Q4G 1024² × 512 9.6 → 5.3–6.4 ms, [2048, 1024] × 32
  // 1.2 → 0.70–0.84 ms; Q8G, whose sign trick keeps a vpmaddwd per chunk, 8.2–8.7 → 7.1–7.9 ms).
  constexpr int64_t kRepackTokens = kType == DType::Q4G ? 12 : 16;
  if (t1 - t0 >= kRepackTokens) return QRepacked<kType>::run(c, r0, r1, t0, t1);
  using Table = BlockTable<std::conditional_t<kType == DType::Q4G, Q4Tile, Q8Tile>, 2, 4>;
  Table::drive(c, r0, r1, t0, t1, t1 - t0 == 1 ? 1 : 2,
               t1 - t0 == 1 || kType == DType::Q4G ? 4 : 2);
}

}  // namespace

KernelSet avx2_kernels() {
  return {{DType::F32, float_kernel<DType::F32>},
          {DType::BF16, float_kernel<DType::BF16>},
          {DType::F8_E4M3, float_kernel<DType::F8_E4M3>},
          {DType::Q8G, quant_kernel<DType::Q8G>},
          {DType::Q4G, quant_kernel<DType::Q4G>}};
}

}  // namespace herd::gemm_detail
