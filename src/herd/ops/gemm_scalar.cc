// Portable kernels (Isa::kScalar): the fallback on CPUs without AVX2 and the plainest statement of
// what each format computes. Float formats sum products in 16 interleaved lanes + a fixed tree
// (like dot_f32); Q8G / Q4G follow q_group_fma exactly, as every SIMD path does.
#include <cstring>

#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

namespace herd::gemm_detail {

namespace {

constexpr int kLanes = 16;

float lane_tree(float* acc) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

// Σ_i x[i] · wv(i) over i < k with x already f32.
template <class W>
float dot_lanes(const float* x, int64_t k, W wv) {
  float acc[kLanes] = {};
  for (int64_t i = 0; i < k; ++i) acc[i % kLanes] += x[i] * wv(i);
  return lane_tree(acc);
}

template <class RowDot>
void each_output(const PreparedActs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1, float* y,
                 int64_t ys, RowDot dot) {
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t r = r0; r < r1; ++r) y[t * ys + r] = dot(t, r);
}

void f32_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                int64_t t1, float* y, int64_t ys) {
  const float* W = static_cast<const float*>(w.data);
  each_output(a, r0, r1, t0, t1, y, ys, [&](int64_t t, int64_t r) {
    const float* wr = W + r * w.cols;
    return dot_lanes(a.f32.data() + t * a.kpad, a.k, [&](int64_t i) { return wr[i]; });
  });
}

// x (bf16) as f32 into a stack buffer per call would need K-sized storage; converting on the fly
// is exact and cheap enough for the fallback.
template <class WElem>
void bf16_like(const PreparedActs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1, float* y,
               int64_t ys, WElem welem, const float* row_scale) {
  each_output(a, r0, r1, t0, t1, y, ys, [&](int64_t t, int64_t r) {
    const uint16_t* xt = a.bf16.data() + t * a.kpad;
    float acc[kLanes] = {};
    for (int64_t i = 0; i < a.k; ++i) acc[i % kLanes] += bf16_to_f32(xt[i]) * welem(r, i);
    const float d = lane_tree(acc);
    return row_scale ? d * row_scale[r] : d;
  });
}

void bf16_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                 int64_t t1, float* y, int64_t ys) {
  const uint16_t* W = static_cast<const uint16_t*>(w.data);
  bf16_like(
      a, r0, r1, t0, t1, y, ys,
      [&](int64_t r, int64_t i) { return bf16_to_f32(W[r * w.cols + i]); }, nullptr);
}

void bf16t_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                  int64_t t1, float* y, int64_t ys) {
  const uint16_t* W = static_cast<const uint16_t*>(w.data);
  bf16_like(
      a, r0, r1, t0, t1, y, ys,
      [&](int64_t r, int64_t i) { return bf16_to_f32(W[tiled_index(r, i, w.cols)]); }, nullptr);
}

void fp8_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                int64_t t1, float* y, int64_t ys) {
  const uint8_t* W = static_cast<const uint8_t*>(w.data);
  float table[256];
  for (int i = 0; i < 256; ++i) table[i] = fp8_e4m3_to_f32(uint8_t(i));
  bf16_like(
      a, r0, r1, t0, t1, y, ys, [&](int64_t r, int64_t i) { return table[W[r * w.cols + i]]; },
      w.row_scale);
}

template <DType kType>
void quant_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                  int64_t t1, float* y, int64_t ys) {
  const int64_t G = a.groups(), rb = packed_row_bytes(kType, w.cols);
  const int32_t bias = weight_bias(kType);
  const uint8_t* W = static_cast<const uint8_t*>(w.data);
  each_output(a, r0, r1, t0, t1, y, ys, [&](int64_t t, int64_t r) {
    const int8_t* xq = a.q.data() + t * a.kpad;
    const uint8_t* wr = W + r * rb;
    float acc = 0;
    for (int64_t g = 0; g < G; ++g) {
      int32_t dot = 0;
      for (int64_t i = 0; i < kQuantGroup; ++i) {
        int32_t code;
        if constexpr (kType == DType::Q8G) {
          code = wr[g * kQuantGroup + i];
        } else {
          const uint8_t b = wr[g * (kQuantGroup / 2) + i % (kQuantGroup / 2)];
          code = i < kQuantGroup / 2 ? (b & 15) : (b >> 4);
        }
        dot += code * xq[g * kQuantGroup + i];
      }
      dot -= bias * a.q_sum.data()[g * a.n + t];
      acc = q_group_fma(acc, dot, w.group_scale[r * G + g], a.q_scale.data()[g * a.n + t]);
    }
    return acc;
  });
}

// Q8GI / Q4GI: the same sums with codes and scales read from the interleaved blocks.
template <DType kType>
void quant_il_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                     int64_t t1, float* y, int64_t ys) {
  const int64_t G = a.groups();
  const int32_t bias = weight_bias(kType);
  const uint8_t* W = static_cast<const uint8_t*>(w.data);
  each_output(a, r0, r1, t0, t1, y, ys, [&](int64_t t, int64_t r) {
    const int8_t* xq = a.q.data() + t * a.kpad;
    float acc = 0;
    for (int64_t g = 0; g < G; ++g) {
      int32_t dot = 0;
      for (int64_t i = 0; i < kQuantGroup; ++i)
        dot += il_code(W, kType, w.cols, r, g * kQuantGroup + i) * xq[g * kQuantGroup + i];
      dot -= bias * a.q_sum.data()[g * a.n + t];
      acc = q_group_fma(acc, dot, il_scale(W, kType, w.cols, r, g), a.q_scale.data()[g * a.n + t]);
    }
    return acc;
  });
}

}  // namespace

KernelSet scalar_kernels() {
  return {{DType::F32, f32_kernel},
          {DType::BF16, bf16_kernel},
          {DType::BF16T, bf16t_kernel},
          {DType::F8_E4M3, fp8_kernel},
          {DType::Q8G, quant_kernel<DType::Q8G>},
          {DType::Q4G, quant_kernel<DType::Q4G>},
          {DType::Q8GI, quant_il_kernel<DType::Q8GI>},
          {DType::Q4GI, quant_il_kernel<DType::Q4GI>}};
}

}  // namespace herd::gemm_detail
