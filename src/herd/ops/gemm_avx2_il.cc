// Q8GI / Q4GI (16 rows interleaved, quant/formats.h) with AVX2: the layout the VNNI kernels read
// (gemm_vnni_il.cc), taken as two 32-byte halves of 8 rows. One vpmaddubsw of a half against 4
// bytes of x broadcast adds each row's 4 products into its own pair of int16 lanes, so a group
// leaves 8 rows' exact dots in the 8 int32 lanes after one vpmaddwd: no horizontal sum and no
// repacking per call (the row-major Q4G prefill tile transposes 8 rows' groups before every use,
// 13% of a 16-sequence int4-all decode step on a Zen 3). Each group's exact total minus the bias
// (Q4GI: 8 · Σq_x; Q8GI's codes are made signed first) then takes one FMA with w_scale · x_scale
// per lane, groups in order (q_group_fma): the same bits as every other Q8G / Q4G path.
//
// Q4GI: codes 0..15 against |x| ≤ 127 (act_quant.cc), so 4 chunks' 8 vpmaddubsw (8 · 2 · 15 ·
// 127 ≤ 32767) add up in int16 before one vpmaddwd. Q8GI: AVX2 has no u8 × s8 product that holds
// 255 · 127 · 2, so the codes become signed (xor 0x80) and go in as |w| against x with w's sign
// (a pair reaches 2 · 127 · 127), one vpmaddwd per chunk.
//
// A tile is T ≤ 4 tokens × one 16-row block; the block's two halves run one after the other
// (a group's 8 lines are in L1 for the second half), so 2T int16 and int32 accumulators, the
// unpacked codes and the broadcast x fit AVX2's 16 registers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cassert>
#include <cstring>

#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

#define HERD_AVX2 __attribute__((target("avx2,fma")))

namespace herd::gemm_detail {

namespace {

HERD_AVX2 inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

template <DType kType>
struct Avx2IlTile {
  static constexpr bool k4 = kType == DType::Q4GI;
  static constexpr int kChunks = k4 ? 16 : 32;  // 64-byte chunks per group
  static constexpr int64_t kCodeBytes = kChunks * 64;
  static constexpr int64_t kRecord = kCodeBytes + 64;

  // Half h (rows 8h..8h+7) of the group record at rec: each token's 8 exact group dots before
  // the bias (x: the first token's 128 activations of the group, the next ones kpad apart; one
  // base and a stride, where an array of T pointers had GCC 12 step them as a vector).
  template <int T>
  HERD_AVX2 __attribute__((always_inline)) static inline void half_dots(const uint8_t* rec,
                                                                        const int8_t* x,
                                                                        int64_t kpad, int h,
                                                                        __m256i (&dot)[T]) {
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) dot[t] = _mm256_setzero_si256();
    if constexpr (k4) {
      const __m256i nib = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 1
      for (int q = 0; q < 4; ++q) {  // 4 chunks' 8 products per int16 sum
        __m256i a[T];
#pragma GCC unroll 4
        for (int cc = 0; cc < 4; ++cc) {
          const int ch = 4 * q + cc;
          const __m256i v =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + ch * 64 + 32 * h));
          const __m256i lo = _mm256_and_si256(v, nib);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
#pragma GCC unroll 4
          for (int t = 0; t < T; ++t) {
            const int8_t* xc = x + t * kpad + 8 * ch;
            const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(xc)),
                                               _mm256_maddubs_epi16(hi, bcast4(xc + 4)));
            a[t] = cc == 0 ? p : _mm256_add_epi16(a[t], p);
            // Kept a running sum: GCC 12 reassociated the 8 products into a tree, computing all
            // of them first and spilling them (180 stack accesses in the 4-token tile).
            asm("" : "+x"(a[t]));
          }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t)
          dot[t] = _mm256_add_epi32(dot[t], _mm256_madd_epi16(a[t], ones));
      }
    } else {
#pragma GCC unroll 4
      for (int ch = 0; ch < kChunks; ++ch) {
        const __m256i w = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + ch * 64 + 32 * h)),
            _mm256_set1_epi8(char(0x80)));
        const __m256i aw = _mm256_sign_epi8(w, w);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t)
          dot[t] = _mm256_add_epi32(
              dot[t], _mm256_madd_epi16(_mm256_maddubs_epi16(
                                            aw, _mm256_sign_epi8(bcast4(x + t * kpad + 4 * ch), w)),
                                        ones));
      }
    }
  }

  // T tokens from t0 × the 16-row block at r0 (a multiple of 16 within the slice).
  template <int T>
  HERD_AVX2 static void run(const Int8Ctx& c, int64_t r0, int64_t t0) {
    const uint8_t* wb = c.w + (r0 / 16) * c.w_stride;
    const int8_t* xp = c.xq + t0 * c.kpad;
    alignas(32) float acc[T][16] = {};
    for (int64_t g = 0; g < c.groups; ++g) {
      const uint8_t* rec = wb + g * kRecord;
      const float* xs = c.x_scale + g * c.n + t0;
      const int32_t* xsum = c.x_sum + g * c.n + t0;
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        __m256i dot[T];
        half_dots<T>(rec, xp + g * kQuantGroup, c.kpad, h, dot);
        const __m256 ws = _mm256_loadu_ps(reinterpret_cast<const float*>(rec + kCodeBytes) + 8 * h);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          if constexpr (k4) dot[t] = _mm256_sub_epi32(dot[t], _mm256_set1_epi32(xsum[t] << 3));
          float* pa = acc[t] + 8 * h;
          _mm256_store_ps(
              pa, _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[t]),
                                  _mm256_mul_ps(ws, _mm256_set1_ps(xs[t])), _mm256_load_ps(pa)));
        }
      }
    }
    const int64_t rows = c.r_end - r0 < 16 ? c.r_end - r0 : 16;
    for (int t = 0; t < T; ++t)
      std::memcpy(c.y + (t0 + t) * c.ys + r0, acc[t], size_t(rows) * sizeof(float));
  }
};

template <DType kType>
void kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
            int64_t t1, float* y, int64_t ys) {
  assert(r0 % 16 == 0);
  using Tile = Avx2IlTile<kType>;
  const Int8Ctx c = int8_ctx(a, w, a.groups() * Tile::kRecord, r1, y, ys);
  // Each block once for all of a decode task's tokens (≤ 4); prefill tasks in token runs of ≤ 4
  // per block, the block's records staying in L1 across the runs.
  for (int64_t r = r0; r < r1; r += 16)
    in_token_runs<4>(t1 - t0, [&]<int N>(int64_t t) { Tile::template run<N>(c, r, t0 + t); });
}

}  // namespace

KernelSet avx2_il_kernels() {
  return {{DType::Q8GI, kernel<DType::Q8GI>}, {DType::Q4GI, kernel<DType::Q4GI>}};
}

}  // namespace herd::gemm_detail
