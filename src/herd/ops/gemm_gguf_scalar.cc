// GGUF block formats and F16: activation preparation, the portable kernel (the per-row reference
// dot product of quant/gguf_blocks.cc) and the choice of kernel per ISA.
#include <algorithm>
#include <cassert>
#include <cstring>

#include "herd/ops/gemm_gguf.h"
#include "herd/quant/gguf_blocks.h"

namespace herd::gemm_detail {

namespace {

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

void scalar_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                   int64_t t1, float* y, int64_t ys) {
  const int64_t rb = gguf_row_bytes(w.dtype, w.cols), blk = gguf_act_block(w.dtype);
  const int64_t nd = blk ? a.kpad / blk : 0, ns = a.kpad / 16;
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = blk ? nullptr : a.f32.data() + t * a.kpad;
    const int8_t* q = blk ? a.q.data() + t * a.kpad : nullptr;
    const float* d = blk ? a.blk_d.data() + t * nd : nullptr;
    const int16_t* s = blk ? a.blk_sum.data() + t * ns : nullptr;
    const float* sy = gguf_act_has_s(w.dtype) ? a.blk_s.data() + t * nd : nullptr;
    for (int64_t r = r0; r < r1; ++r)
      y[t * ys + r] = gguf_dot_row(w.dtype, base + r * rb, w.cols, x, q, d, s, sy);
  }
}

}  // namespace

void size_gguf_acts(int64_t n, int64_t k, PreparedActs& out) {
  const int64_t blk = gguf_act_block(out.weight_dtype);
  // GGUF rows are whole blocks (the loader rejects any other shape); kernels rely on it.
  assert(k % gguf_block_elems(out.weight_dtype) == 0);
  if (blk == 0) {  // F16: f32 activations
    out.kpad = round_up(std::max<int64_t>(k, 1), 32);
    out.f32.ensure(size_t(n * out.kpad));
    return;
  }
  const int64_t kp = out.kpad = round_up(std::max<int64_t>(k, 1), std::max<int64_t>(blk, 64));
  out.q.ensure(size_t(n * kp));
  out.blk_d.ensure(size_t(n * (kp / blk)));
  out.blk_sum.ensure(size_t(n * (kp / 16)));
  if (gguf_act_has_s(out.weight_dtype)) out.blk_s.ensure(size_t(n * (kp / blk)));
}

void prepare_gguf_rows(const float* x, int64_t t0, int64_t t1, int64_t x_stride, int64_t k,
                       PreparedActs& out) {
  const int64_t blk = gguf_act_block(out.weight_dtype), kp = out.kpad;
  if (blk == 0) {
    float* d = out.f32.data();
    for (int64_t t = t0; t < t1; ++t) {
      std::memcpy(d + t * kp, x + t * x_stride, size_t(k) * 4);
      std::fill(d + t * kp + k, d + (t + 1) * kp, 0.0f);
    }
    return;
  }
  int8_t* q = out.q.data();
  float* d = out.blk_d.data();
  int16_t* s = out.blk_sum.data();
  float* sy = gguf_act_has_s(out.weight_dtype) ? out.blk_s.data() : nullptr;
  const auto quant = out.isa >= Isa::kAvx512Vnni ? quantize_gguf_act_row_avx512
                     : out.isa >= Isa::kAvx2     ? quantize_gguf_act_row_avx2
                                                 : quantize_gguf_act_row;
  for (int64_t t = t0; t < t1; ++t)
    quant(x + t * x_stride, k, kp, blk, q + t * kp, d + t * (kp / blk), s + t * (kp / 16),
          sy ? sy + t * (kp / blk) : nullptr);
}

Kernel gguf_scalar_kernel(DType t) {
  return is_gguf_kernel_type(t) ? scalar_kernel : nullptr;
}

Kernel gguf_kernel(Isa isa, DType t) {
  if (isa >= Isa::kAvx512Vnni)
    if (const Kernel k = gguf_vnni_kernel(t)) return k;
  if (isa >= Isa::kAvx2)
    if (const Kernel k = gguf_avx2_kernel(t)) return k;
  return gguf_scalar_kernel(t);
}

}  // namespace herd::gemm_detail
