// Q8GI / Q4GI (16 rows interleaved, quant/formats.h) with AVX-512 VNNI. One 64-byte weight vector
// holds 4 consecutive K of 16 rows; vpdpbusd against 4 bytes of x broadcast adds each row's 4
// products to its own int32 lane. A group's 128 K leave 16 rows' exact group dots in one vector:
// no horizontal sum anywhere. The bias (128 or 8 times Σq_x) is removed in integers and each lane
// takes one FMA per group with w_scale · x_scale (q_group_fma), groups in order: the results equal
// the scalar, AVX2, row-major VNNI and AMX paths bit for bit, whatever the blocking.
//
// Register blocking: a tile is T tokens × NB blocks of 16 rows. Each weight vector is loaded once
// and used by T vpdpbusd (x broadcast straight from memory), so multi-token decode and prefill
// reuse the weights from registers. Small tiles (decode) split the K chunks over A independent
// accumulators so vpdpbusd's latency does not bound a single-row-block stream. A task's blocks
// are one contiguous stream, which the hardware prefetcher follows: software prefetches 4, 8 or
// 16 records ahead were 10-20% slower on Zen 4 (BENCHMARKS.md, issue 11) for one token. Tiles of
// 3 tokens and more do prefetch the blocks after theirs (kernel() says why).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cassert>
#include <cstring>

#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

#define HERD_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma")))

namespace herd::gemm_detail {

namespace {

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// kPrefetch: while the tile reads its blocks, prefetch into L2 the same bytes of the blocks that
// follow them (the next tile's) within the task, one line per weight vector loaded.
template <DType kType, bool kPrefetch = false>
struct IlTile {
  using Ctx = Int8Ctx;
  static constexpr int kShift = kType == DType::Q8GI ? 7 : 3;     // log2 of the weight bias
  static constexpr int kChunks = kType == DType::Q8GI ? 32 : 16;  // 64-byte vectors per group
  static constexpr int64_t kCodeBytes = kChunks * 64;
  static constexpr int64_t kRecord = kCodeBytes + 64;

  // T tokens from t0, NB row blocks from row r0 (a multiple of 16 within the slice).
  template <int T, int NB>
  HERD_VNNI static void run(const Ctx& c, int64_t r0, int64_t t0) {
    constexpr int A = T * NB == 1 ? 4 : T * NB == 2 ? 2 : 1;  // accumulators per (token, block)
    const __m512i nib = _mm512_set1_epi8(0x0F);
    const uint8_t* wb[NB];
    for (int b = 0; b < NB; ++b) wb[b] = c.w + (r0 / 16 + b) * c.w_stride;
    // The next tile's blocks, or (past the task's end) these blocks again: a line already in L1.
    const uint8_t* pf[NB];
    for (int b = 0; b < NB; ++b)
      pf[b] = r0 + 16 * (b + NB) < c.r_end ? wb[b] + NB * c.w_stride : wb[b];
    const int8_t* xp[T];
    for (int t = 0; t < T; ++t) xp[t] = c.xq + (t0 + t) * c.kpad;
    __m512 facc[NB][T];
    for (int b = 0; b < NB; ++b)
      for (int t = 0; t < T; ++t) facc[b][t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < c.groups; ++g) {
      __m512i acc[NB][T][A];
      for (int b = 0; b < NB; ++b)
        for (int t = 0; t < T; ++t)
          for (int a = 0; a < A; ++a) acc[b][t][a] = _mm512_setzero_si512();
      const int8_t* xg[T];
      for (int t = 0; t < T; ++t) xg[t] = xp[t] + g * kQuantGroup;
#pragma GCC unroll 32
      for (int ch = 0; ch < kChunks; ++ch) {
        const int a = ch % A;
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) {
          const uint8_t* p = wb[b] + g * kRecord + ch * 64;
          if constexpr (kPrefetch) {
            _mm_prefetch(reinterpret_cast<const char*>(pf[b] + g * kRecord + ch * 64), _MM_HINT_T1);
            if (ch == 0)
              _mm_prefetch(reinterpret_cast<const char*>(pf[b] + g * kRecord + kCodeBytes),
                           _MM_HINT_T1);
          }
          if constexpr (kType == DType::Q8GI) {
            const __m512i w = _mm512_loadu_si512(p);
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t)
              acc[b][t][a] =
                  _mm512_dpbusd_epi32(acc[b][t][a], w, _mm512_set1_epi32(load_i32(xg[t] + ch * 4)));
          } else {
            const __m512i v = _mm512_loadu_si512(p);
            const __m512i lo = _mm512_and_si512(v, nib);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
              acc[b][t][a] = _mm512_dpbusd_epi32(acc[b][t][a], lo,
                                                 _mm512_set1_epi32(load_i32(xg[t] + ch * 8)));
              acc[b][t][a] = _mm512_dpbusd_epi32(acc[b][t][a], hi,
                                                 _mm512_set1_epi32(load_i32(xg[t] + ch * 8 + 4)));
            }
          }
        }
      }
      const float* xs = c.x_scale + g * c.n + t0;
      const int32_t* xsum = c.x_sum + g * c.n + t0;
      for (int b = 0; b < NB; ++b) {
        const __m512 wsc =
            _mm512_loadu_ps(reinterpret_cast<const float*>(wb[b] + g * kRecord + kCodeBytes));
        for (int t = 0; t < T; ++t) {
          __m512i dot = acc[b][t][0];
          for (int a = 1; a < A; ++a) dot = _mm512_add_epi32(dot, acc[b][t][a]);
          dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(xsum[t] << kShift));
          facc[b][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                       _mm512_mul_ps(wsc, _mm512_set1_ps(xs[t])), facc[b][t]);
        }
      }
    }
    for (int b = 0; b < NB; ++b) {
      const int64_t r = r0 + 16 * b, left = c.r_end - r;
      if (left <= 0) break;
      const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
      for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(c.y + (t0 + t) * c.ys + r, m, facc[b][t]);
    }
  }
};

// Tiles of up to 6 tokens × 2 row blocks: 12 int and 12 f32 accumulators fit in the 32 vector
// registers with the weight vectors.
template <DType kType>
void kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
            int64_t t1, float* y, int64_t ys) {
  assert(r0 % 16 == 0);
  const Int8Ctx c = int8_ctx(a, w, a.groups() * IlTile<kType>::kRecord, r1, y, ys);
  using Table = BlockTable<IlTile<kType>, 6, 2>;
  using PfTable = BlockTable<IlTile<kType, true>, 6, 2>;
  const int64_t n = t1 - t0;
  // Decode (T ≤ 4): every row block streams once, all tokens at a time; one block at a time for
  // one or two tokens (a single stream from memory, several accumulators per row: measured
  // faster on the Zen 5 with continuous batching's 1-3 tokens per expert). Prefill: 2 blocks
  // (32 rows) × 6 tokens, the panel staying in L1 across the task's token blocks.
  const int64_t tb = n <= 4 ? n : 6, nb = n <= 2 ? 1 : 2;
  // From 3 tokens on (two row blocks a tile) the next blocks are prefetched: without it, each
  // block of an expert with 4 tokens or of a 16-token step waited on memory (bench_kernels,
  // cold, 2 threads: Decode/6/2048/1024/4/16 840 → 530 µs, /8/16 1030 → 720 µs,
  // DecodeHot/6/32768/1024/16/1/1 1290 → 1170 µs). One or two tokens stream one block at a
  // time, which the hardware prefetcher follows alone.
  if (n <= 2) return Table::drive_blocks(c, r0, r1, t0, t1, tb, nb);
  Table::template drive_blocks_prefetching<PfTable>(c, r0, r1, t0, t1, tb, nb);
}

}  // namespace

KernelSet vnni_il_kernels() {
  return {{DType::Q8GI, kernel<DType::Q8GI>}, {DType::Q4GI, kernel<DType::Q4GI>}};
}

}  // namespace herd::gemm_detail
