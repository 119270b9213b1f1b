// AVX2 + FMA kernels (Haswell / Zen 1 and later): all formats. Float formats use the same tile
// shape as gemm_avx512.cc with 8 lanes; int8 uses maddubs/madd with the sign trick (weights made
// signed by removing their bias, |w| × sign(x, w) keeps maddubs' int16 pair sums from saturating),
// then q_group_fma per group, so Q8G / Q4G results equal every other path's bit for bit.
// GCC 12's intrinsic headers start some results from _mm512_undefined_*(), which its
// -W(maybe-)uninitialized misreads when inlined into target-attributed functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

#define HERD_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace herd::gemm_detail {

namespace {

struct Ctx {
  const void* x;
  int64_t kpad, k;
  const uint8_t* w;
  int64_t w_row_bytes;
  const float* row_scale;
  float* y;
  int64_t ys;
};

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

template <DType kW>
struct FTile {
  using Ctx = gemm_detail::Ctx;
  template <int T, int R>
  HERD_AVX2 static void run(const Ctx& c, int64_t r0, int64_t t0) {
    __m256 acc[T][R];
    const uint8_t* wp[R];
    for (int r = 0; r < R; ++r) wp[r] = c.w + (r0 + r) * c.w_row_bytes;
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) acc[t][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < c.k; i += 8) {
      __m256 wv[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) wv[r] = load_w<kW>(wp[r], i, c.k - i);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        __m256 xv;
        if constexpr (kW == DType::F32)
          xv = _mm256_load_ps(static_cast<const float*>(c.x) + (t0 + t) * c.kpad + i);
        else
          xv = widen_bf16(_mm_load_si128(reinterpret_cast<const __m128i*>(
              static_cast<const uint16_t*>(c.x) + (t0 + t) * c.kpad + i)));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[t][r] = _mm256_fmadd_ps(xv, wv[r], acc[t][r]);
      }
    }
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
  const void* x = kW == DType::F32 ? static_cast<const void*>(a.f32.data())
                                   : static_cast<const void*>(a.bf16.data());
  const int64_t eb = kW == DType::F32 ? 4 : kW == DType::BF16 ? 2 : 1;
  const Ctx c{x,           a.kpad,
              a.k,         static_cast<const uint8_t*>(w.data),
              w.cols * eb, kW == DType::F8_E4M3 ? w.row_scale : nullptr,
              y,           ys};
  using Table = BlockTable<FTile<kW>, 3, 4>;
  Table::drive(c, r0, r1, t0, t1, t1 - t0 == 1 ? 1 : 3, 4);
}

// ---- Q8G / Q4G ----

struct QCtx {
  const int8_t* xq;
  int64_t kpad, n, groups;
  const float* x_scale;  // [groups, n]
  const uint8_t* w;
  int64_t w_row_bytes;
  const float* w_scale;
  float* y;
  int64_t ys;
};

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

template <DType kType>
struct QTile {
  using Ctx = QCtx;
  template <int T, int R>
  HERD_AVX2 static void run(const Ctx& c, int64_t r0, int64_t t0) {
    float acc[T][R] = {};
    const __m256i bias = _mm256_set1_epi8(kType == DType::Q8G ? char(0x80) : 8);
    const __m256i nib = _mm256_set1_epi8(0x0F);
    for (int64_t g = 0; g < c.groups; ++g) {
      __m256i d[T][R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        // Signed weights in x order: 4 vectors of 32 elements (0-31, 32-63, 64-95, 96-127).
        __m256i wv[4];
        const uint8_t* p = c.w + (r0 + r) * c.w_row_bytes;
        if constexpr (kType == DType::Q8G) {
#pragma GCC unroll 4
          for (int j = 0; j < 4; ++j)  // xor 0x80 = subtract the 128 bias in two's complement
            wv[j] = _mm256_xor_si256(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + g * 128 + 32 * j)), bias);
        } else {
          const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + g * 64));
          const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + g * 64 + 32));
          wv[0] = _mm256_sub_epi8(_mm256_and_si256(b0, nib), bias);
          wv[1] = _mm256_sub_epi8(_mm256_and_si256(b1, nib), bias);
          wv[2] = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(b0, 4), nib), bias);
          wv[3] = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(b1, 4), nib), bias);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          const int8_t* xp = c.xq + (t0 + t) * c.kpad + g * 128;
          __m256i s = dot32(wv[0], _mm256_load_si256(reinterpret_cast<const __m256i*>(xp)));
#pragma GCC unroll 4
          for (int j = 1; j < 4; ++j)
            s = _mm256_add_epi32(
                s, dot32(wv[j], _mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 32 * j))));
          d[t][r] = s;
        }
      }
      // Every loop over the vectors of a group is unrolled: at -O2 GCC 12 left the small ones
      // rolled, so wv and d went through the stack by computed addresses.
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t)
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r)
          acc[t][r] = q_group_fma(acc[t][r], hsum8i(d[t][r]), c.w_scale[(r0 + r) * c.groups + g],
                                  c.x_scale[g * c.n + t0 + t]);
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) c.y[(t0 + t) * c.ys + r0 + r] = acc[t][r];
  }
};

template <DType kType>
void quant_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
                  int64_t t1, float* y, int64_t ys) {
  const QCtx c{a.q.data(),
               a.kpad,
               a.n,
               a.groups(),
               a.q_scale.data(),
               static_cast<const uint8_t*>(w.data),
               packed_row_bytes(kType, w.cols),
               w.group_scale,
               y,
               ys};
  using Table = BlockTable<QTile<kType>, 2, 4>;
  Table::drive(c, r0, r1, t0, t1, t1 - t0 == 1 ? 1 : 2, t1 - t0 == 1 ? 4 : 2);
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
