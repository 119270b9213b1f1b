// The fast attention's bf16 dot-product kernels (vdpbf16ps, AVX512_BF16: Zen 4/5, Cooper Lake,
// Sapphire Rapids), for bf16 KV caches with head_dim % 32 == 0. Included by attention_tiled.cc
// only, inside its anonymous namespace, after its f32 kernels; internal to ops/.
//
// The f32 kernels spend one FMA per (query head, key, element) on scores and again on P·V: half
// of a prefill's attention time. vdpbf16ps does two multiply-adds per f32 lane, so both products
// take half the instructions, on the bf16 bits the cache already holds:
// - scores: each query row is rounded to bf16 once per call (the queries' own rounding, as
//   llama.cpp's flash attention rounds Q to its K type), and each key block is re-laid from
//   [hd][16] into [hd/2][16] pairs (elements 2i and 2i+1 of one key in one 32-bit lane);
// - P·V: a step's probabilities are rounded to bf16 (l sums the rounded values, so the output
//   stays an exact convex combination of V rows), and two V rows are interleaved by unpacks.
//   unpacklo/hi work within 128-bit lanes, so the output accumulators hold each 32 elements
//   permuted (pair_lane below); o_out undoes it once per call.
// Every chain still runs in one fixed order per (query head, key) or (query head, element), so
// attention_fast.h's batch invariance holds; the rounding differs from the f32 kernels, by the
// bound tests/ops/test_attention_fast.cc states.
#pragma once

#define HERD_AVX512_BF16 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")))

// Whether attention_groups_partial takes these kernels for a view (and the AVX-512 target).
inline bool pairs_path(const KvView& kv) {
  return kv.layout.type == KvType::kBF16 && kv.layout.head_dim % 32 == 0 &&
         active_isa() >= Isa::kAvx512Vnni && cpu_features().avx512bf16;
}

// 32 bits at p (a bf16 pair) broadcast to every lane.
HERD_AVX512_BF16 inline __m512bh bcast_pair(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return (__m512bh)_mm512_set1_epi32(int32_t(v));
}

// rows query rows of hd floats (row r at q[r]) rounded to bf16 into qb (row r at qb + r*hd/2
// floats' space), as cvtneps_pbh rounds: to nearest even.
HERD_AVX512_BF16 void queries_to_pairs(const float* const* q, int64_t rows, int64_t hd, float* qb) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t d = 0; d < hd; d += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qb + r * hd / 2 + d / 2),
                          (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(q[r] + d)));
}

// A bf16 key block [hd][16] at k re-laid as [hd/2][16] pairs into kt: lane j of pair row i holds
// elements 2i (low half) and 2i+1 of key j. Rows 2i and 2i+1 are 64 consecutive bytes.
HERD_AVX512_BF16 void widen_pairs(const uint8_t* k, int64_t hd, float* kt) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
#pragma GCC unroll 4
  for (int64_t i = 0; i < hd / 2; ++i)
    _mm512_store_si512(kt + i * 16, _mm512_permutexvar_epi16(idx, _mm512_loadu_si512(k + i * 64)));
}

// score_tile on pairs: s[r][b*16 + j] = scale * (q_r . key j of block b), one vdpbf16ps chain per
// (row, key) over the hd/2 pairs in order.
template <int R, int NB>
HERD_AVX512_BF16 void score_tile_pairs(const float* const* q, float* const* s, const float* kt,
                                       int64_t kt_block, int64_t hd, float scale) {
  // Two chains per (row, key): even and odd pairs, added at the end. One chain of hd / 2
  // vdpbf16ps was a decode step's critical path (a step's scores wait for it, then its softmax
  // and P·V), longer than the step's other work could hide.
  __m512 acc[R][NB][2];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int b = 0; b < NB; ++b) acc[r][b][0] = acc[r][b][1] = _mm512_setzero_ps();
  for (int64_t i = 0; i < hd / 2; i += 2) {
#pragma GCC unroll 2
    for (int u = 0; u < 2; ++u) {
      __m512bh kv[NB];
#pragma GCC unroll 16
      for (int b = 0; b < NB; ++b)
        kv[b] = (__m512bh)_mm512_load_si512(kt + b * kt_block + (i + u) * 16);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m512bh qv = bcast_pair(q[r] + i + u);
#pragma GCC unroll 16
        for (int b = 0; b < NB; ++b) acc[r][b][u] = _mm512_dpbf16_ps(acc[r][b][u], qv, kv[b]);
      }
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int b = 0; b < NB; ++b)
      _mm512_store_ps(s[r] + b * 16, _mm512_mul_ps(_mm512_add_ps(acc[r][b][0], acc[r][b][1]), sc));
}

template <int NB>
HERD_AVX512_BF16 void score_rows_pairs(const float* const* q, float* const* s, int64_t rows,
                                       const float* kt, int64_t kt_block, int64_t hd, float scale) {
  // 6 rows × 2 blocks × 2 chains: 24 accumulators beside the key vectors and a query pair.
  constexpr int kR = 6;
  row_tiles<kR>(rows, [&](auto R, int64_t r) HERD_AVX512_BF16 {
    score_tile_pairs<decltype(R)::value, NB>(q + r, s + r, kt, kt_block, hd, scale);
  });
}

// Where element d (< 32) of a 32-element chunk sits in the two accumulators of pv_tile_pairs
// (0-15 the unpacklo one, 16-31 the unpackhi one): unpacklo_epi16 pairs elements 0-3 of each
// 128-bit lane (8 bf16), unpackhi elements 4-7.
constexpr int pair_lane(int d) {
  return (d % 8 < 4 ? 0 : 16) + d / 8 * 4 + d % 4;
}

// pv_tile on pairs: o[h][chunk] = o * alpha[h] + the step's keys, two per vdpbf16ps, for H heads
// and C chunks of 32 elements from d0, in pair_lane order; pb[h*16 + j] is key j's probability
// in bf16 (zero from cnt on).
template <int H, int C>
HERD_AVX512_BF16 void pv_tile_pairs(float* o, int64_t o_stride, const uint16_t* pb,
                                    const float* alpha, const uint8_t* const* vrow, int cnt,
                                    int64_t d0) {
  __m512 acc[H][C][2];
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    const __m512 a = _mm512_set1_ps(alpha[h]);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
      for (int u = 0; u < 2; ++u)
        acc[h][c][u] = _mm512_mul_ps(_mm512_load_ps(o + h * o_stride + d0 + 32 * c + 16 * u), a);
  }
  for (int j = 0; j < cnt; j += 2) {
    __m512bh v[C][2];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const int64_t off = (d0 + 32 * c) * 2;
      const __m512i a = _mm512_loadu_si512(vrow[j] + off);
      // An odd step's last key pairs with zeros (its partner's probability is zero too).
      const __m512i b =
          j + 1 < cnt ? _mm512_loadu_si512(vrow[j + 1] + off) : _mm512_setzero_si512();
      v[c][0] = (__m512bh)_mm512_unpacklo_epi16(a, b);
      v[c][1] = (__m512bh)_mm512_unpackhi_epi16(a, b);
    }
#pragma GCC unroll 16
    for (int h = 0; h < H; ++h) {
      const __m512bh p = bcast_pair(pb + h * 16 + j);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
        for (int u = 0; u < 2; ++u) acc[h][c][u] = _mm512_dpbf16_ps(acc[h][c][u], p, v[c][u]);
    }
  }
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
      for (int u = 0; u < 2; ++u)
        _mm512_store_ps(o + h * o_stride + d0 + 32 * c + 16 * u, acc[h][c][u]);
}

template <int H>
HERD_AVX512_BF16 void pv_heads_pairs(float* o, int64_t o_stride, const uint16_t* pb,
                                     const float* alpha, const uint8_t* const* vrow, int cnt,
                                     int64_t hd) {
  for (int64_t d0 = 0; d0 < hd; d0 += 64) {
    if (hd - d0 >= 64)
      pv_tile_pairs<H, 2>(o, o_stride, pb, alpha, vrow, cnt, d0);
    else
      pv_tile_pairs<H, 1>(o, o_stride, pb, alpha, vrow, cnt, d0);
  }
}

// softmax_step on pairs: the same running max and rescale as softmax_step; the probabilities
// are rounded to bf16 and both l and o take the rounded values.
HERD_AVX512_BF16 void softmax_step_pairs(State& st, int64_t t, const float* sc, const int32_t* idx,
                                         int cnt) {
  const int64_t G = st.G;
  const __mmask16 valid = lanes(cnt);
  uint16_t* pb = reinterpret_cast<uint16_t*>(st.p);  // [G][16] bf16 in p's space
  for (int64_t h = 0; h < G; ++h) {
    const int64_t row = t * G + h;
    const __m512 p = step_probs(st, row, sc + h * 32, valid, &st.alpha[h]);
    const __m256i b = (__m256i)_mm512_cvtneps_pbh(p);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb + h * 16), b);
    const __m512 pr = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
    float* l = st.l + row * 16;
    _mm512_store_ps(l, _mm512_fmadd_ps(_mm512_load_ps(l), _mm512_set1_ps(st.alpha[h]), pr));
  }
  find_v_rows<KvType::kBF16>(st, idx, cnt);
  float* o = st.o + t * G * st.hdp;
  // Up to 6 heads share each step's V loads and unpacks (4 · 6 accumulators, 4 V vectors and a
  // probability fit the 32 registers): Llama 4's 5 query heads per kv head take one tile, where
  // tiles of at most 4 read and unpacked V twice (bench_kernels AttentionDecodeLong, BENCHMARKS).
  row_tiles<6>(G, [&](auto H, int64_t h) HERD_AVX512_BF16 {
    pv_heads_pairs<decltype(H)::value>(o + h * st.hdp, st.hdp, pb + h * 16, st.alpha + h, st.vrow,
                                       cnt, st.hd);
  });
}

// hd elements of a pair-ordered accumulator row back in element order: each 32 are the 128-bit
// quarters of the unpacklo accumulator (lo) and the unpackhi one (hi) interleaved.
HERD_AVX512_BF16 void pairs_to_elements(const float* o, int64_t hd, float* out) {
  static_assert(pair_lane(4) == 16 && pair_lane(8) == 4 && pair_lane(31) == 31);
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i second =
      _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int64_t d0 = 0; d0 < hd; d0 += 32) {
    const __m512 lo = _mm512_load_ps(o + d0), hi = _mm512_load_ps(o + d0 + 16);
    _mm512_storeu_ps(out + d0, _mm512_permutex2var_ps(lo, first, hi));
    _mm512_storeu_ps(out + d0 + 16, _mm512_permutex2var_ps(lo, second, hi));
  }
}
