// _mm512_cast*/extract leave upper lanes undefined, which GCC 12 reports as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "herd/ops/logit_scan.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <iterator>

#include "herd/ops/exp_avx2.h"
#include "herd/ops/exp_avx512.h"
#include "herd/ops/gemm.h"

#define HERD_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#define HERD_AVX2 __attribute__((target("avx2,fma")))

namespace herd {

namespace {

// A block's or the masses' lanes added in order, as logit_scan.h states.
template <class T>
T add_lanes(const T* lane) {
  T s = lane[0];
  for (int j = 1; j < kExpLanes; ++j) s += lane[j];
  return s;
}

// K floors as a template argument, so their accumulators stay in registers.
template <int K>
HERD_AVX512 void exp_sums_avx512(const float* x, int64_t n, float shift, float scale, float* out,
                                 const ExpSums& sums) {
  const __m512 s = _mm512_set1_ps(shift), c = _mm512_set1_ps(scale);
  __m512 floor[K + 1], mass[K + 1];
  for (int j = 0; j < K; ++j)
    floor[j] = _mm512_set1_ps(sums.floors[j]), mass[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n; b += kExpBlock) {
    const int64_t end = std::min(n, b + kExpBlock);
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();  // lanes 0-7, 8-15
    for (int64_t i = b; i < end; i += 16) {
      const __mmask16 m = end - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (end - i)) - 1);
      const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s), c);
      const __m512 e = _mm512_maskz_mov_ps(m, exp512(v));  // 0 past the end: adds nothing
      if (out) _mm512_mask_storeu_ps(out + i, m, e);
      lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
      hi = _mm512_add_pd(
          hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
      for (int j = 0; j < K; ++j)
        mass[j] = _mm512_mask_add_ps(mass[j], _mm512_mask_cmp_ps_mask(m, v, floor[j], _CMP_GE_OQ),
                                     mass[j], e);
    }
    if (sums.block_sums) {
      alignas(64) double lane[16];
      _mm512_store_pd(lane, lo);
      _mm512_store_pd(lane + 8, hi);
      sums.block_sums[b / kExpBlock] = add_lanes(lane);
    }
  }
  alignas(64) float lane[16];
  for (int j = 0; j < K; ++j) {
    _mm512_store_ps(lane, mass[j]);
    sums.mass[j] = add_lanes(lane);
  }
}

template <int K>
HERD_AVX2 void exp_sums_avx2(const float* x, int64_t n, float shift, float scale, float* out,
                             const ExpSums& sums) {
  const __m256 s = _mm256_set1_ps(shift), c = _mm256_set1_ps(scale);
  __m256 floor[K + 1], mass[K + 1][2];  // masses: lanes 0-7, 8-15
  for (int j = 0; j < K; ++j)
    floor[j] = _mm256_set1_ps(sums.floors[j]), mass[j][0] = mass[j][1] = _mm256_setzero_ps();
  alignas(32) float mlane[K + 1][16] = {};
  for (int64_t b = 0; b < n; b += kExpBlock) {
    const int64_t end = std::min(n, b + kExpBlock);
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                      _mm256_setzero_pd()};  // lanes 0-3, 4-7, 8-11, 12-15
    int64_t i = b;
    for (; i + 16 <= end; i += 16)
      for (int h = 0; h < 2; ++h) {
        const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * h), s), c);
        const __m256 e = exp256(v);
        if (out) _mm256_storeu_ps(out + i + 8 * h, e);
        acc[2 * h] = _mm256_add_pd(acc[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc[2 * h + 1] =
            _mm256_add_pd(acc[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        for (int j = 0; j < K; ++j)  // + 0 where below the floor: the same bits as skipping
          mass[j][h] =
              _mm256_add_ps(mass[j][h], _mm256_and_ps(e, _mm256_cmp_ps(v, floor[j], _CMP_GE_OQ)));
      }
    alignas(32) double lane[16];
    for (int q = 0; q < 4; ++q) _mm256_store_pd(lane + 4 * q, acc[q]);
    if (i < end) {  // the row's last, partial block: scalar, into the same lanes
      for (int j = 0; j < K; ++j) {
        _mm256_store_ps(mlane[j], mass[j][0]);
        _mm256_store_ps(mlane[j] + 8, mass[j][1]);
      }
      for (; i < end; ++i) {
        const float v = (x[i] - shift) * scale, e = exp_scalar(v);
        if (out) out[i] = e;
        lane[i % 16] += e;
        for (int j = 0; j < K; ++j)
          if (v >= sums.floors[j]) mlane[j][i % 16] += e;
      }
      for (int j = 0; j < K; ++j)
        mass[j][0] = _mm256_load_ps(mlane[j]), mass[j][1] = _mm256_load_ps(mlane[j] + 8);
    }
    if (sums.block_sums) sums.block_sums[b / kExpBlock] = add_lanes(lane);
  }
  for (int j = 0; j < K; ++j) {
    _mm256_store_ps(mlane[j], mass[j][0]);
    _mm256_store_ps(mlane[j] + 8, mass[j][1]);
    sums.mass[j] = add_lanes(mlane[j]);
  }
}

void exp_sums_scalar(const float* x, int64_t n, float shift, float scale, float* out,
                     const ExpSums& sums) {
  const int k = std::clamp(sums.n_floors, 0, kExpMaxFloors);
  float mlane[kExpMaxFloors][16] = {};
  for (int64_t b = 0; b < n; b += kExpBlock) {
    const int64_t end = std::min(n, b + kExpBlock);
    double lane[16] = {};
    for (int64_t i = b; i < end; ++i) {
      const float v = (x[i] - shift) * scale, e = exp_scalar(v);
      if (out) out[i] = e;
      lane[i % 16] += e;
      for (int j = 0; j < k; ++j)
        if (v >= sums.floors[j]) mlane[j][i % 16] += e;
    }
    if (sums.block_sums) sums.block_sums[b / kExpBlock] = add_lanes(lane);
  }
  for (int j = 0; j < k; ++j) sums.mass[j] = add_lanes(mlane[j]);
}

HERD_AVX512 float clean_max_avx512(const float* in, int64_t n, float* out) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 mx = ninf;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    __m512 v = _mm512_mask_loadu_ps(ninf, m, in + i);
    v = _mm512_mask_mov_ps(ninf, _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    if (out) _mm512_mask_storeu_ps(out + i, m, v);
    mx = _mm512_max_ps(mx, v);
  }
  return _mm512_reduce_max_ps(mx);
}

HERD_AVX2 float clean_max_avx2(const float* in, int64_t n, float* out) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 mx = ninf;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(in + i);
    v = _mm256_blendv_ps(ninf, v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    if (out) _mm256_storeu_ps(out + i, v);
    mx = _mm256_max_ps(mx, v);
  }
  alignas(32) float lane[8];
  _mm256_store_ps(lane, mx);
  float best = -INFINITY;
  for (float v : lane) best = v > best ? v : best;
  for (; i < n; ++i) {
    const float v = in[i] == in[i] ? in[i] : -INFINITY;
    if (out) out[i] = v;
    best = v > best ? v : best;
  }
  return best;
}

float clean_max_scalar(const float* in, int64_t n, float* out) {
  float best = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i] == in[i] ? in[i] : -INFINITY;
    if (out) out[i] = v;
    best = v > best ? v : best;
  }
  return best;
}

HERD_AVX512 int64_t first_index_of_avx512(const float* x, int64_t n, float v) {
  const __m512 t = _mm512_set1_ps(v);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __mmask16 eq = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, x + i), t, _CMP_EQ_OQ);
    if (eq) return i + __builtin_ctz(eq);
  }
  return -1;
}

HERD_AVX2 int64_t first_index_of_avx2(const float* x, int64_t n, float v) {
  const __m256 t = _mm256_set1_ps(v);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (const int eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_EQ_OQ)))
      return i + __builtin_ctz(unsigned(eq));
  for (; i < n; ++i)
    if (x[i] == v) return i;
  return -1;
}

HERD_AVX512 int64_t indices_at_least_avx512(const float* w, int64_t n, float tau, int32_t* idx) {
  const __m512 t = _mm512_set1_ps(tau);
  __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t k = 0;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __mmask16 ge = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, w + i), t, _CMP_GE_OQ);
    // Compress in a register and store all 16 lanes (a compress to memory is microcoded and
    // slow on Zen 4); the lanes past the kept ones are overwritten by the next store.
    _mm512_storeu_si512(idx + k, _mm512_maskz_compress_epi32(ge, iota));
    k += __builtin_popcount(ge);
    iota = _mm512_add_epi32(iota, _mm512_set1_epi32(16));
  }
  return k;
}

HERD_AVX2 int64_t indices_at_least_avx2(const float* w, int64_t n, float tau, int32_t* idx) {
  const __m256 t = _mm256_set1_ps(tau);
  int64_t k = 0, i = 0;
  for (; i + 8 <= n; i += 8)
    for (unsigned ge =
             unsigned(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(w + i), t, _CMP_GE_OQ)));
         ge; ge &= ge - 1)
      idx[k++] = int32_t(i + __builtin_ctz(ge));
  for (; i < n; ++i)
    if (w[i] >= tau) idx[k++] = int32_t(i);
  return k;
}

}  // namespace

float clean_max(const float* in, int64_t n, float* out) {
  const Isa isa = active_isa();
  if (isa >= Isa::kAvx512) return clean_max_avx512(in, n, out);
  if (isa == Isa::kAvx2) return clean_max_avx2(in, n, out);
  return clean_max_scalar(in, n, out);
}

int64_t first_index_of(const float* x, int64_t n, float v) {
  const Isa isa = active_isa();
  if (isa >= Isa::kAvx512) return first_index_of_avx512(x, n, v);
  if (isa == Isa::kAvx2) return first_index_of_avx2(x, n, v);
  for (int64_t i = 0; i < n; ++i)
    if (x[i] == v) return i;
  return -1;
}

int64_t indices_at_least(const float* w, int64_t n, float tau, int32_t* idx) {
  const Isa isa = active_isa();
  if (isa >= Isa::kAvx512) return indices_at_least_avx512(w, n, tau, idx);
  if (isa == Isa::kAvx2) return indices_at_least_avx2(w, n, tau, idx);
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i)
    if (w[i] >= tau) idx[k++] = int32_t(i);
  return k;
}

float exp_scalar(float x) {
  // exp512 step by step: fmaf is fused as vfmadd, nearbyintf rounds to nearest even as
  // roundscale, ldexpf rounds once as scalef. fmax/fmin return the bound for NaN, as max_ps does.
  x = std::fmin(std::fmax(x, -104.0f), 89.0f);
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = std::fma(-n, 0.693359375f, x);
  r = std::fma(-n, -2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p, r * r, r) + 1.0f;
  return std::ldexp(p, int(n));
}

void exp_sums(const float* x, int64_t n, float shift, float scale, float* out,
              const ExpSums& sums) {
  if (n <= 0) {
    for (int j = 0; j < std::clamp(sums.n_floors, 0, kExpMaxFloors); ++j) sums.mass[j] = 0;
    return;
  }
  using Fn = void (*)(const float*, int64_t, float, float, float*, const ExpSums&);
  static constexpr Fn kAvx512[] = {exp_sums_avx512<0>, exp_sums_avx512<1>, exp_sums_avx512<2>,
                                   exp_sums_avx512<3>, exp_sums_avx512<4>};
  static constexpr Fn kAvx2[] = {exp_sums_avx2<0>, exp_sums_avx2<1>, exp_sums_avx2<2>,
                                 exp_sums_avx2<3>, exp_sums_avx2<4>};
  static_assert(std::size(kAvx512) == kExpMaxFloors + 1 && std::size(kAvx2) == kExpMaxFloors + 1);
  const int k = std::clamp(sums.n_floors, 0, kExpMaxFloors);
  const Isa isa = active_isa();
  const Fn fn = isa >= Isa::kAvx512 ? kAvx512[k] : isa == Isa::kAvx2 ? kAvx2[k] : exp_sums_scalar;
  fn(x, n, shift, scale, out, sums);
}

}  // namespace herd
