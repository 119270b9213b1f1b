// Shared between the gemm dispatcher and the per-ISA kernel files; not part of the ops API.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "herd/ops/gemm.h"
#include "herd/quant/format_table.h"

namespace herd::gemm_detail {

// Computes y[t, o] for weight rows [r0, r1) and tokens [t0, t1) of the prepared batch.
using Kernel = void (*)(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1,
                        int64_t t0, int64_t t1, float* y, int64_t y_stride);

// The ops/ half of the format table (quant/format_table.h; ggml's type_traits_cpu): one
// dispatch target's product kernel per weight format, indexed by DType. Each ISA file returns a
// set holding the formats it implements; gemm.cc overlays them per target (later sets win), so a
// new format is one more entry in its own file's set.
class KernelSet {
 public:
  KernelSet() = default;
  KernelSet(std::initializer_list<std::pair<DType, Kernel>> entries) {
    for (const auto& [t, k] : entries) k_[size_t(t)] = k;
  }
  Kernel operator[](DType t) const { return k_[size_t(t)]; }
  // Every kernel `o` has replaces ours.
  KernelSet& overlay(const KernelSet& o) {
    for (size_t i = 0; i < k_.size(); ++i)
      if (o.k_[i]) k_[i] = o.k_[i];
    return *this;
  }

 private:
  std::array<Kernel, kDTypeCount> k_{};
};

// One set per ISA file (a file's functions carry that ISA's target attribute).
KernelSet scalar_kernels();        // every herd format: the portable fallback of every target
KernelSet avx2_kernels();          // F32, BF16, F8_E4M3, Q8G, Q4G
KernelSet avx2_il_kernels();       // Q8GI / Q4GI with vpmaddubsw (gemm_avx2_il.cc)
KernelSet avx512_kernels();        // float formats with AVX-512F
KernelSet avx512_bf16_kernels();   // the same, bf16 / fp8 with vdpbf16ps
KernelSet vnni_kernels();          // Q8G / Q4G with vpdpbusd
KernelSet vnni_il_kernels();       // Q8GI / Q4GI with vpdpbusd (gemm_vnni_il.cc)
KernelSet bf16t_dpbf16_kernels();  // BF16T with vdpbf16ps, no AMX (gemm_bf16_il.cc)
KernelSet amx_kernels();           // bf16 / fp8 / BF16T (every n) and Q8G / Q4G (VNNI for n<16)

// AMX activation layouts (gemm_amx.cc), filled by prepare_acts when the ISA is kAmx.
void amx_pack_bf16(PreparedActs& a);
void amx_pack_int8(PreparedActs& a);
// BF16 / BF16T batches of ≤ kAmxVecTokens on AMX machines, with AVX-512 (gemm_amx_vec.cc):
// bitwise what the tile kernels compute.
inline constexpr int64_t kAmxVecTokens = 4;
void amx_bf16_vec(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                  int64_t t1, float* y, int64_t ys);
// The VNNI int8 kernels, for AMX's small batches (bitwise the same results).
Kernel vnni_q8_kernel();
Kernel vnni_q4_kernel();

// One int8 product's operands as the Q8G / Q4G kernels read them, row-major (gemm_avx2.cc,
// gemm_vnni.cc) or 16 rows interleaved (gemm_avx2_il.cc, gemm_vnni_il.cc).
struct Int8Ctx {
  const int8_t* xq;
  int64_t kpad, n, groups;
  const float* x_scale;  // [groups, n]
  const int32_t* x_sum;  // [groups, n]
  const uint8_t* w;      // the slice's first row (block)
  int64_t w_stride;      // bytes per row, or per 16-row block when interleaved
  const float* w_scale;  // [rows, groups]; null when interleaved (the scales are inside)
  int64_t r_end;         // the task's end: interleaved tiles store no rows past it
  float* y;
  int64_t ys;
};
inline Int8Ctx int8_ctx(const PreparedActs& a, const WeightRef& w, int64_t w_stride, int64_t r_end,
                        float* y, int64_t ys) {
  return {a.q.data(),
          a.kpad,
          a.n,
          a.groups(),
          a.q_scale.data(),
          a.q_sum.data(),
          static_cast<const uint8_t*>(w.data),
          w_stride,
          w.group_scale,
          r_end,
          y,
          ys};
}

// The one rule every Q8G / Q4G path follows, so all of them agree bitwise: a group's integer dot
// (exact) minus the weight bias times Σq_x (exact) is converted to f32 and added with one FMA,
// groups in order. Scalar code spells it with std::fma; SIMD code with fmadd on the same values.
inline float q_group_fma(float acc, int32_t dot, float w_scale, float x_scale) {
  return std::fma(float(dot), w_scale * x_scale, acc);
}
inline int32_t weight_bias(DType t) {
  return t == DType::Q8G || t == DType::Q8GI ? 128 : 8;
}

// FP8 E4M3 -> f32 without a table: the 7 magnitude bits placed at f32's exponent/mantissa
// boundary give 2^(e-127)·1.m (or a denormal when e = 0), and ×2^120 rebiases both exactly.
// (0x7f / 0xff, the format's NaN, come out as ±480: checkpoints hold no NaN weights.)
inline constexpr float kFp8Rebias = 0x1p120f;

// f.template operator()<N>(t) over nt tokens in runs of at most kMax (the repacked prefill dots
// keep a run's accumulators in registers), as even as they can be: each run loads every code
// chunk once, so 8 tokens in runs of 6 go as 4 + 4, not 6 + 2.
template <int N, class F>
inline void token_run(int64_t len, int64_t t, F& f) {
  if constexpr (N == 1)
    f.template operator()<1>(t);
  else if (len == N)
    f.template operator()<N>(t);
  else
    token_run<N - 1>(len, t, f);
}
template <int kMax, class F>
inline void in_token_runs(int64_t nt, F&& f) {
  const int64_t runs = (nt + kMax - 1) / kMax;
  int64_t t = 0;
  for (int64_t r = 0; r < runs; ++r) {
    const int64_t len = nt / runs + (r < nt % runs ? 1 : 0);
    token_run<kMax>(len, t, f);
    t += len;
  }
}

// Decode tiles read their R rows in turns, a few cache lines of each row per step, which the
// hardware prefetchers follow poorly on short rows: the bench preset's 1024-wide rows are a few
// hundred bytes, so each row's first lines were demand misses (perf annotate: the samples on the
// instructions after the weight loads). A tile asks for the next tile's rows at the same position
// as it goes, into L1 when a tile is at most kNearPrefetchBytes (its prefetches then do not hold
// L1's miss buffers against what is still to be read), else into L2. An asm statement, because
// GCC 12's dead-code elimination can drop _mm_prefetch once inlined (attention_tiled_state.h).
inline constexpr int64_t kNearPrefetchBytes = 4096;
// The kBytes from p, a line per 64 bytes (the callers' spans start on lines when rows do). A
// compile-time span: the prefetches sit in the tiles' inner loops, where a loop and an alignment
// computation per call cost the in-cache decode up to 40% (bench_kernels DecodeHot).
template <int64_t kBytes>
inline void prefetch_span(const uint8_t* p, bool near) {
  for (int64_t o = 0; o < kBytes; o += 64) {
    if (near)
      asm volatile("prefetcht0 %0" : : "m"(p[o]));
    else
      asm volatile("prefetcht1 %0" : : "m"(p[o]));
  }
}

// Register blocks: Tile::run<T, R>(ctx, r, t) computes a T-token × R-row block. BlockTable holds
// every T ≤ TM, R ≤ RM instantiation so tails use the same code path with smaller blocks.
template <class Tile, int TM, int RM>
struct BlockTable {
  using Fn = void (*)(const typename Tile::Ctx&, int64_t, int64_t);
  template <size_t... I>
  static constexpr std::array<Fn, TM * RM> make(std::index_sequence<I...>) {
    return {&Tile::template run<int(I / RM) + 1, int(I % RM) + 1>...};
  }
  static constexpr std::array<Fn, TM* RM> fns = make(std::make_index_sequence<TM * RM>{});
  static Fn get(int64_t t, int64_t r) { return fns[size_t((t - 1) * RM + (r - 1))]; }

  // Row blocks of rb ≤ RM outer (the block's weight rows stay in L1 across token blocks),
  // token blocks of tb ≤ TM inner.
  static void drive(const typename Tile::Ctx& c, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                    int64_t tb, int64_t rb) {
    for (int64_t r = r0; r < r1; r += rb) {
      const int64_t nr = r1 - r < rb ? r1 - r : rb;
      for (int64_t t = t0; t < t1; t += tb) get(t1 - t < tb ? t1 - t : tb, nr)(c, r, t);
    }
  }
  // The same for tiles whose R counts blocks of 16 interleaved rows (r0 a multiple of 16; the
  // tile masks rows past the matrix's end itself).
  static void drive_blocks(const typename Tile::Ctx& c, int64_t r0, int64_t r1, int64_t t0,
                           int64_t t1, int64_t tb, int64_t nb) {
    const int64_t blocks = (r1 - r0 + 15) / 16;
    for (int64_t b = 0; b < blocks; b += nb) {
      const int64_t k = blocks - b < nb ? blocks - b : nb;
      for (int64_t t = t0; t < t1; t += tb) get(t1 - t < tb ? t1 - t : tb, k)(c, r0 + 16 * b, t);
    }
  }
  // drive_blocks with each block's first token tile taken from PfTable: the same tile that also
  // prefetches the blocks after its own, which memory then delivers while the block's other
  // token tiles compute (or, with one token tile, while this one does).
  template <class PfTable>
  static void drive_blocks_prefetching(const typename Tile::Ctx& c, int64_t r0, int64_t r1,
                                       int64_t t0, int64_t t1, int64_t tb, int64_t nb) {
    const int64_t blocks = (r1 - r0 + 15) / 16;
    for (int64_t b = 0; b < blocks; b += nb) {
      const int64_t k = blocks - b < nb ? blocks - b : nb, r = r0 + 16 * b;
      PfTable::get(t1 - t0 < tb ? t1 - t0 : tb, k)(c, r, t0);
      for (int64_t t = t0 + tb; t < t1; t += tb) get(t1 - t < tb ? t1 - t : tb, k)(c, r, t);
    }
  }
};

}  // namespace herd::gemm_detail
