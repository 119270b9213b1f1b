// AVX-512 kernels for the float formats (F32, BF16, F8_E4M3). One register-blocked tile template
// serves decode (1 token × 8 rows sharing each activation load) and prefill (4 tokens × 4-6 rows
// sharing weight and activation loads). Every (token, row) accumulator walks K in the same 16
// lanes and ends in the same _mm512_reduce_add_ps tree, so the blocking never changes a result.
//
// BF16 with AVX512_BF16: vdpbf16ps multiplies bf16 pairs and accumulates in f32. Without it, bf16
// is widened to f32 exactly (a shift) and multiplied with FMA. FP8 E4M3 widens to f32 the same way
// (gemm_internal.h kFp8Rebias) and, for vdpbf16ps, narrows exactly to bf16; its row scale
// multiplies the finished dot product.
// GCC 12's intrinsic headers start some results from _mm512_undefined_*(), which its
// -W(maybe-)uninitialized misreads when inlined into target-attributed functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "herd/ops/gemm_fp8.h"
#include "herd/ops/gemm_internal.h"

#define HERD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define HERD_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

namespace herd::gemm_detail {

namespace {

struct Ctx {
  const void* x;  // prepared activations: f32 or bf16, rows of kpad
  int64_t kpad, k;
  const uint8_t* w;  // weight rows
  int64_t w_row_bytes;
  const float* row_scale;
  float* y;
  int64_t ys;
};

HERD_AVX512 inline __m512 fp8_to_f32(__m128i b) {
  const __m512i v = _mm512_cvtepu8_epi32(b);
  const __m512i mag = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x7f)), 20);
  const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x80)), 24);
  const __m512 f = _mm512_mul_ps(_mm512_castsi512_ps(mag), _mm512_set1_ps(kFp8Rebias));
  return _mm512_or_ps(f, _mm512_castsi512_ps(sign));
}
HERD_AVX512 inline __m512 bf16_to_f32(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
HERD_AVX512 inline __mmask32 tail_mask(int64_t n) {
  return n >= 32 ? ~__mmask32(0) : (__mmask32(1) << n) - 1;
}

// Policies: step = K elements per accumulation step; X / Wv = loaded operand types.
struct F32Fma {
  static constexpr int kStep = 16, kWBytes = 4, kXBytes = 4;
  using X = __m512;
  using Wv = __m512;
  HERD_AVX512 static X load_x(const void* x, int64_t i) {
    return _mm512_load_ps(static_cast<const float*>(x) + i);
  }
  HERD_AVX512 static Wv load_w(const uint8_t* w, int64_t i, int64_t n) {
    return _mm512_maskz_loadu_ps(__mmask16(tail_mask(n)), reinterpret_cast<const float*>(w) + i);
  }
  HERD_AVX512 static __m512 madd(__m512 acc, X x, Wv w) { return _mm512_fmadd_ps(x, w, acc); }
};

struct Pair {
  __m512 lo, hi;
};
struct Bf16Fma {
  static constexpr int kStep = 32, kWBytes = 2, kXBytes = 2;
  using X = Pair;
  using Wv = Pair;
  HERD_AVX512 static Pair widen(__m512i v) {
    return {bf16_to_f32(_mm512_castsi512_si256(v)), bf16_to_f32(_mm512_extracti64x4_epi64(v, 1))};
  }
  HERD_AVX512 static X load_x(const void* x, int64_t i) {
    return widen(_mm512_load_si512(static_cast<const uint16_t*>(x) + i));
  }
  HERD_AVX512 static Wv load_w(const uint8_t* w, int64_t i, int64_t n) {
    return widen(_mm512_maskz_loadu_epi16(tail_mask(n), reinterpret_cast<const uint16_t*>(w) + i));
  }
  HERD_AVX512 static __m512 madd(__m512 acc, X x, Wv w) {
    return _mm512_fmadd_ps(x.hi, w.hi, _mm512_fmadd_ps(x.lo, w.lo, acc));
  }
};
struct Fp8Fma : Bf16Fma {
  static constexpr int kWBytes = 1;
  HERD_AVX512 static Wv load_w(const uint8_t* w, int64_t i, int64_t n) {
    const __m256i b = _mm256_maskz_loadu_epi8(tail_mask(n), w + i);
    return {fp8_to_f32(_mm256_castsi256_si128(b)), fp8_to_f32(_mm256_extracti128_si256(b, 1))};
  }
};

struct Bf16Dp {
  static constexpr int kStep = 32, kWBytes = 2, kXBytes = 2;
  using X = __m512i;
  using Wv = __m512i;
  HERD_AVX512BF16 static X load_x(const void* x, int64_t i) {
    return _mm512_load_si512(static_cast<const uint16_t*>(x) + i);
  }
  HERD_AVX512BF16 static Wv load_w(const uint8_t* w, int64_t i, int64_t n) {
    return _mm512_maskz_loadu_epi16(tail_mask(n), reinterpret_cast<const uint16_t*>(w) + i);
  }
  HERD_AVX512BF16 static __m512 madd(__m512 acc, X x, Wv w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w);
  }
};
struct Fp8Dp : Bf16Dp {
  static constexpr int kWBytes = 1;
  HERD_AVX512BF16 static Wv load_w(const uint8_t* w, int64_t i, int64_t n) {
    return fp8x32_to_bf16(_mm256_maskz_loadu_epi8(tail_mask(n), w + i));
  }
};

#define HERD_DEFINE_TILE(NAME, ATTR)                                                              \
  template <class P>                                                                              \
  struct NAME {                                                                                   \
    using Ctx = gemm_detail::Ctx;                                                                 \
    template <int T, int R>                                                                       \
    ATTR static void run(const Ctx& c, int64_t r0, int64_t t0) {                                  \
      __m512 acc[T][R];                                                                           \
      const uint8_t* wp[R];                                                                       \
      const char* xp[T];                                                                          \
      _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) wp[r] = c.w + (r0 + r) * c.w_row_bytes; \
      _Pragma("GCC unroll 4") for (int t = 0; t < T; ++t) {                                       \
        xp[t] = static_cast<const char*>(c.x) + (t0 + t) * c.kpad * P::kXBytes;                   \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) acc[t][r] = _mm512_setzero_ps();      \
      }                                                                                           \
      for (int64_t i = 0; i < c.k; i += P::kStep) {                                               \
        const int64_t left = c.k - i;                                                             \
        if (T == 1) { /* decode: same position of the next row block, see gemm_vnni.cc */         \
          _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) _mm_prefetch(                       \
              reinterpret_cast<const char*>(wp[r] + R * c.w_row_bytes + i * P::kWBytes),          \
              _MM_HINT_T1);                                                                       \
        }                                                                                         \
        typename P::Wv wv[R];                                                                     \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) wv[r] = P::load_w(wp[r], i, left);    \
        _Pragma("GCC unroll 4") for (int t = 0; t < T; ++t) {                                     \
          const typename P::X xv = P::load_x(xp[t], i);                                           \
          _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) acc[t][r] =                         \
              P::madd(acc[t][r], xv, wv[r]);                                                      \
        }                                                                                         \
      }                                                                                           \
      _Pragma("GCC unroll 4") for (int t = 0; t < T; ++t) {                                       \
        float* yt = c.y + (t0 + t) * c.ys + r0;                                                   \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {                                     \
          const float d = _mm512_reduce_add_ps(acc[t][r]);                                        \
          yt[r] = c.row_scale ? d * c.row_scale[r0 + r] : d;                                      \
        }                                                                                         \
      }                                                                                           \
    }                                                                                             \
  };

// The same tile twice: a function's target must cover everything inlined into it, and the
// AVX-512F-only variant must not be compiled for AVX512_BF16 (it runs where that is absent).
HERD_DEFINE_TILE(TileF, HERD_AVX512)
HERD_DEFINE_TILE(TileBf, HERD_AVX512BF16)

template <class P, template <class> class Tl, int PT, int PR>
void kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1, int64_t t0,
            int64_t t1, float* y, int64_t ys) {
  const void* x = P::kWBytes == 4 ? static_cast<const void*>(a.f32.data())
                                  : static_cast<const void*>(a.bf16.data());
  const Ctx c{x,           a.kpad, a.k, static_cast<const uint8_t*>(w.data), w.cols * P::kWBytes,
              w.row_scale, y,      ys};
  using Table = BlockTable<Tl<P>, 4, 8>;
  if (t1 - t0 == 1)
    Table::drive(c, r0, r1, t0, t1, 1, 8);
  else
    Table::drive(c, r0, r1, t0, t1, PT, PR);
}

}  // namespace

KernelSet avx512_kernels() {
  return {{DType::F32, kernel<F32Fma, TileF, 4, 6>},
          {DType::BF16, kernel<Bf16Fma, TileF, 4, 4>},
          {DType::F8_E4M3, kernel<Fp8Fma, TileF, 4, 4>}};
}

KernelSet avx512_bf16_kernels() {
  return avx512_kernels().overlay(
      {{DType::BF16, kernel<Bf16Dp, TileBf, 4, 6>}, {DType::F8_E4M3, kernel<Fp8Dp, TileBf, 4, 6>}});
}

}  // namespace herd::gemm_detail
