// BF16T (16-row tiles, quant/formats.h) with AVX512_BF16 on machines without AMX. A K pair of a
// block's 16 rows is one 64-byte vector; vdpbf16ps against the pair of x broadcast adds each row's
// two products into its own f32 lane: no transposes and no horizontal sums. Each output walks
// its K pairs in one fixed order, split over two accumulators (even and odd pairs) that are added
// once at the end, whatever the number of tokens or rows computed with it: batch invariant.
// (On AMX machines BF16T goes to the tile unit and its bitwise vector twin instead.)
//
// Tiles of T tokens × NB row blocks reuse each weight vector from a register across the tokens
// (decode with several sequences, prefill).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cassert>
#include <cstring>

#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

#define HERD_BF16IL __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

namespace herd::gemm_detail {

namespace {

struct Bf16IlCtx {
  const uint16_t* x;  // [n, kpad] bf16
  int64_t kpad;
  const uint8_t* w;     // the slice's first block
  int64_t block_bytes;  // kpad / 2 · 64
  int64_t r_end;        // rows past this are not stored
  float* y;
  int64_t ys;
};

// kPrefetch: also prefetch into L2 the blocks after the tile's own (the next tile's), a line per
// weight vector loaded.
template <bool kPrefetch = false>
struct Bf16IlTile {
  using Ctx = Bf16IlCtx;

  template <int T, int NB>
  HERD_BF16IL static void run(const Ctx& c, int64_t r0, int64_t t0) {
    const uint8_t* wb[NB];
    for (int b = 0; b < NB; ++b) wb[b] = c.w + (r0 / 16 + b) * c.block_bytes;
    // The next tile's blocks, or (past the task's end) these blocks again: a line already in L1.
    const uint8_t* pf[NB];
    for (int b = 0; b < NB; ++b)
      pf[b] = r0 + 16 * (b + NB) < c.r_end ? wb[b] + NB * c.block_bytes : wb[b];
    const uint16_t* xp[T];
    for (int t = 0; t < T; ++t) xp[t] = c.x + (t0 + t) * c.kpad;
    __m512 acc[NB][T][2];
    for (int b = 0; b < NB; ++b)
      for (int t = 0; t < T; ++t) acc[b][t][0] = acc[b][t][1] = _mm512_setzero_ps();
    const int64_t pairs = c.kpad / 2;  // a multiple of 16
    for (int64_t p0 = 0; p0 < pairs; p0 += 8) {
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        const int64_t p = p0 + j;
#pragma GCC unroll 2
        for (int b = 0; b < NB; ++b) {
          const uint8_t* wp = wb[b] + p * 64;
          if (T == 1) _mm_prefetch(reinterpret_cast<const char*>(wp + 2048), _MM_HINT_T0);
          if constexpr (kPrefetch)
            _mm_prefetch(reinterpret_cast<const char*>(pf[b] + p * 64), _MM_HINT_T1);
          const __m512bh w = (__m512bh)_mm512_loadu_si512(wp);
#pragma GCC unroll 8
          for (int t = 0; t < T; ++t) {
            int32_t xv;
            std::memcpy(&xv, xp[t] + 2 * p, 4);
            acc[b][t][j % 2] =
                _mm512_dpbf16_ps(acc[b][t][j % 2], w, (__m512bh)_mm512_set1_epi32(xv));
          }
        }
      }
    }
    for (int b = 0; b < NB; ++b) {
      const int64_t r = r0 + 16 * b, left = c.r_end - r;
      if (left <= 0) break;
      const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
      for (int t = 0; t < T; ++t)
        _mm512_mask_storeu_ps(c.y + (t0 + t) * c.ys + r, m,
                              _mm512_add_ps(acc[b][t][0], acc[b][t][1]));
    }
  }
};

void kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
            int64_t t1, float* y, int64_t ys) {
  assert(r0 % 16 == 0 && a.kpad == tiled_kpad(w.cols));
  const Bf16IlCtx c{
      a.bf16.data(), a.kpad, static_cast<const uint8_t*>(w.data), a.kpad / 2 * 64, r1, y, ys};
  using Table = BlockTable<Bf16IlTile<>, 6, 2>;
  using PfTable = BlockTable<Bf16IlTile<true>, 6, 2>;
  const int64_t n = t1 - t0;
  // Decode (T ≤ 4): each row block streams once for all tokens. Prefill: 32 rows × 6 tokens
  // (24 accumulators), the panel staying in L1 across the task's token blocks.
  const int64_t tb = n <= 4 ? n : 6, nb = n <= 2 ? 1 : 2;
  // From 3 tokens on, the next blocks are prefetched (as the VNNI tiles, gemm_vnni_il.cc).
  if (n <= 2) return Table::drive_blocks(c, r0, r1, t0, t1, tb, nb);
  Table::template drive_blocks_prefetching<PfTable>(c, r0, r1, t0, t1, tb, nb);
}

}  // namespace

KernelSet bf16t_dpbf16_kernels() {
  return {{DType::BF16T, kernel}};
}

}  // namespace herd::gemm_detail
