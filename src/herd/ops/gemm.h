// Fast products of activations with stored weights (DESIGN.md "Kernels"): the SIMD counterpart of
// ops/matmul (the f32 reference). Weights stay in their stored format; activations are prepared
// once per input (rounded to bf16 or quantized to int8 per group of 128) and reused by every
// weight that reads the same x (q/k/v; gate/up).
//
// Batch invariance: y[t, o] is bitwise the same whether row t is computed alone (decode) or in any
// batch, with any thread count. Every kernel of one ISA gives each output the same reduction order
// (same lanes across K, same horizontal sum), whatever the register blocking. Quantized formats
// are even identical across ISAs: the per-group integer dot is exact and groups are combined by
// one f32 FMA each, in group order (see gemm_internal.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "herd/base/dtype.h"
#include "herd/base/thread_pool.h"
#include "herd/ops/weight.h"

namespace herd {

// Dispatch targets, ordered: each includes what the ones before it need.
enum class Isa : uint8_t {
  kScalar,      // portable C++
  kAvx2,        // AVX2 + FMA (+F16C): 8-lane FMA, int8 via maddubs
  kAvx512,      // AVX-512 F/BW/VL/DQ: 16-lane FMA for float formats; int8 still AVX2
  kAvx512Vnni,  // + VNNI (vpdpbusd) for int8; + vdpbf16ps for bf16 when AVX512_BF16 is present
  kAmx,         // + AMX tiles: bf16 for every n, int8 for prefill
};
const char* isa_name(Isa isa);
Isa detected_isa();  // best target this CPU and OS support
Isa active_isa();    // what prepare_acts/gemm use: detected, lowered by HERD_ISA or force_isa
// Lowers (or restores) the active target; clamped to detected_isa(). Tests force every target.
void force_isa(Isa isa);
// Parses "scalar|avx2|avx512|avx512vnni|amx"; false if unknown.
bool parse_isa(const char* name, Isa* out);
// Whether Q8G / Q4G weights run 16 rows interleaved (Q8GI / Q4GI, quant/formats.h) on this
// target: every vector target but AMX, whose int8 tiles read the row-major codes.
inline bool interleaves_int_weights(Isa isa) {
  return isa >= Isa::kAvx2 && isa <= Isa::kAvx512Vnni;
}

// A growable 64-byte aligned array (AVX-512 loads, AMX tile rows). Never shrinks, so a buffer
// that has seen the largest batch allocates nothing in steady decode.
template <typename T>
class AlignedBuffer {
 public:
  T* data() { return p_.get(); }
  const T* data() const { return p_.get(); }
  T* ensure(size_t n) {
    if (n > cap_) {
      const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
      p_.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
      cap_ = n;
    }
    return p_.get();
  }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> p_;
  size_t cap_ = 0;
};

// Activations of n rows prepared for one weight format (and the ISA active at preparation).
struct PreparedActs {
  DType weight_dtype = DType::F32;
  Isa isa = Isa::kScalar;
  int64_t n = 0, k = 0;
  int64_t kpad = 0;  // row stride: k rounded up to 32 (bf16 / f32) or 128 (int8); zero padded
  // F32 weights: x as is.                                         [n, kpad]
  AlignedBuffer<float> f32;
  // BF16 / F8_E4M3 weights: x rounded to bf16 (round to nearest even). [n, kpad]
  AlignedBuffer<uint16_t> bf16;
  // Q8G / Q4G weights: x quantized per group of 128, scale = amax / 127, q = round(x / scale).
  AlignedBuffer<int8_t> q;  // [n, kpad]
  // Per group, transposed so a block of tokens is contiguous (SIMD and AMX epilogues).
  AlignedBuffer<float> q_scale;  // [groups, n]
  AlignedBuffer<int32_t> q_sum;  // [groups, n]: Σ q over the group (removes the weight bias)
  // AMX only: x in the tile-B layout, blocks of 16 rows with 2 (bf16) or 4 (int8) consecutive
  // K elements of each row side by side: [ceil(n/16)][kpad/2][16][2] u16 or [..][kpad/4][16][4] i8.
  AlignedBuffer<uint8_t> amx;
  // GGUF block weights (quant/gguf_blocks.h; F16 uses f32): x in q per block of 32 or 256 with
  // one scale per block [n, kpad / block] and the sums of each 16 q [n, kpad / 16].
  AlignedBuffer<float> blk_d;
  AlignedBuffer<int16_t> blk_sum;
  // Q4_1 / Q5_1 weights: ggml's Q8_1 s per 32-block (the min term's) [n, kpad / 32].
  AlignedBuffer<float> blk_s;

  int64_t groups() const { return kpad / 128; }
};

// Prepares x ([n, k] with row stride x_stride) for weights of `weight_dtype` (BF16, F32, Q8G, Q4G,
// F8_E4M3). Q8G- and Q4G-prepared activations are interchangeable. With a pool, the rows of a
// large batch are converted in parallel (bitwise the same result).
void prepare_acts(const float* x, int64_t n, int64_t x_stride, int64_t k, DType weight_dtype,
                  PreparedActs& out, ThreadPool* pool = nullptr);

// y[t, o] = Σ_i x[t, i] · W[o, i]   (W in nn.Linear layout [rows = out, cols = in]).
// BF16, F32, Q8G, Q4G, or F8_E4M3 with row_scale (W = fp8 · row_scale[o]). y has stride y_stride.
void gemm(ThreadPool& pool, const PreparedActs& a, const WeightRef& w, float* y, int64_t y_stride);

// Several independent products in ONE parallel section (q/k/v; every active expert plus the
// shared expert): a decode step then pays the pool's fixed cost per section a few times per
// layer instead of once per matrix, and small per-expert products of a prefill balance across
// threads together. Each job's result is bitwise what gemm() gives for it alone.
struct GemmJob {
  const PreparedActs* a = nullptr;
  WeightRef w;
  float* y = nullptr;
  int64_t y_stride = 0;
};
void gemm_multi(ThreadPool& pool, const GemmJob* jobs, size_t n_jobs);
// The same products on the calling thread only (tiny matrices such as the router, where waking
// the pool costs more than the work).
void gemm_serial(const PreparedActs& a, const WeightRef& w, float* y, int64_t y_stride);

}  // namespace herd
