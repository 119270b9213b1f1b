// prepare_acts: activations converted once per input for the weight format that reads them.
// Each row is converted on its own by the same code, so a token's prepared values (and hence its
// outputs) do not depend on the batch around it.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "herd/ops/gemm.h"
#include "herd/ops/gemm_gguf.h"
#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

namespace herd {

namespace {

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

// One row's groups of 128: scale = amax / 127, q = round-to-nearest-even(x · 127/amax), the same
// rule as quantize_row_q8g (so weights and activations quantize alike).
void quantize_row(const float* x, int64_t k, int64_t kpad, int8_t* q, float* scale, int32_t* sum,
                  int64_t gstride) {
  for (int64_t g = 0; g < kpad / kQuantGroup; ++g) {
    const int64_t b = g * kQuantGroup, m = std::clamp<int64_t>(k - b, 0, kQuantGroup);
    float amax = 0;
    for (int64_t i = 0; i < m; ++i) amax = std::max(amax, std::fabs(x[b + i]));
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    int32_t s = 0;
    for (int64_t i = 0; i < kQuantGroup; ++i) {
      const int v = i < m ? std::clamp(int(std::nearbyint(x[b + i] * inv)), -127, 127) : 0;
      q[b + i] = int8_t(v);
      s += v;
    }
    scale[g * gstride] = amax / 127.0f;
    sum[g * gstride] = s;
  }
}

// The lanes of vector j (16 floats) that lie within a group's first m elements.
inline __mmask16 lanes16(int64_t m, int j) {
  const int64_t left = m - 16 * j;
  return left >= 16 ? __mmask16(0xffff) : left <= 0 ? 0 : __mmask16((1u << left) - 1);
}

// The same rule with AVX-512: amax is exact, 127/amax is the same scalar, the product rounds the
// same, and cvtps_epi32 rounds to nearest even like nearbyint — so bitwise the scalar result.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) void quantize_row_avx512(
    const float* x, int64_t k, int64_t kpad, int8_t* q, float* scale, int32_t* sum,
    int64_t gstride) {
  // In passes of up to 16 groups: every group's amax first, then every group's codes. One group
  // at a time chained its reductions (max across lanes, the division, the sum across lanes) into
  // ~60 cycles per 128 elements in cache; across groups the passes are independent work.
  constexpr int64_t kPass = 16;
  const int64_t ng = kpad / kQuantGroup;
  for (int64_t g0 = 0; g0 < ng; g0 += kPass) {
    const int64_t g1 = std::min(ng, g0 + kPass);
    float amax[kPass];
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t b = g * kQuantGroup, m = std::clamp<int64_t>(k - b, 0, kQuantGroup);
      __m512 mx = _mm512_setzero_ps();
      for (int j = 0; j < 8; ++j) {
        mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes16(m, j), x + b + 16 * j)));
      }
      amax[g - g0] = _mm512_reduce_max_ps(mx);
    }
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t b = g * kQuantGroup, m = std::clamp<int64_t>(k - b, 0, kQuantGroup);
      const float am = amax[g - g0], inv = am > 0 ? 127.0f / am : 0.0f;
      __m512i s = _mm512_setzero_si512();
      for (int j = 0; j < 8; ++j) {
        const __m512 v = _mm512_maskz_loadu_ps(lanes16(m, j), x + b + 16 * j);
        __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(inv)));
        qi =
            _mm512_max_epi32(_mm512_min_epi32(qi, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
        s = _mm512_add_epi32(s, qi);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b + 16 * j), _mm512_cvtepi32_epi8(qi));
      }
      scale[g * gstride] = am / 127.0f;
      sum[g * gstride] = _mm512_reduce_add_epi32(s);
    }
  }
}

// The same rule with AVX2 (bitwise the scalar result, as the AVX-512 one): the scalar loop, with
// a libm nearbyint per element, was 3% of an AVX2 int4-all decode's samples. max(|x|, amax)
// keeps amax when x is NaN, as std::max does; 4 vectors' int32 codes go to bytes with two
// saturating packs (exact: within ±127) and a lane permute back to element order.
__attribute__((target("avx2,fma"))) void quantize_row_avx2(const float* x, int64_t k, int64_t kpad,
                                                           int8_t* q, float* scale, int32_t* sum,
                                                           int64_t gstride) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t g = 0; g < kpad / kQuantGroup; ++g) {
    const int64_t b = g * kQuantGroup, m = std::clamp<int64_t>(k - b, 0, kQuantGroup);
    __m256 v[16];
    __m256 mx = _mm256_setzero_ps();
    for (int j = 0; j < 16; ++j) {
      const __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(m - 8 * j)), lane);
      v[j] = _mm256_maskload_ps(x + b + 8 * j, mk);
      mx = _mm256_max_ps(_mm256_and_ps(v[j], abs_mask), mx);
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    __m256i s = _mm256_setzero_si256();
    for (int j = 0; j < 16; j += 4) {
      __m256i qi[4];
      for (int u = 0; u < 4; ++u) {
        qi[u] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j + u], _mm256_set1_ps(inv)));
        qi[u] = _mm256_max_epi32(_mm256_min_epi32(qi[u], _mm256_set1_epi32(127)),
                                 _mm256_set1_epi32(-127));
        s = _mm256_add_epi32(s, qi[u]);
      }
      const __m256i p =
          _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(q + b + 8 * j),
          _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    scale[g * gstride] = amax / 127.0f;
    sum[g * gstride] = _mm_cvtsi128_si32(t);
  }
}

// f32_to_bf16 (round to nearest even, NaN kept quiet) 16 at a time, bit for bit.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) void to_bf16_avx512(const float* x,
                                                                                  int64_t k,
                                                                                  uint16_t* d) {
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = k - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (k - i)) - 1);
    const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    _mm256_mask_storeu_epi16(d + i, m, _mm512_cvtepi32_epi16(r));
  }
}

}  // namespace

void prepare_acts(const float* x, int64_t n, int64_t x_stride, int64_t k, DType weight_dtype,
                  PreparedActs& out, ThreadPool* pool) {
  out.weight_dtype = weight_dtype;
  out.isa = active_isa();
  out.n = n;
  out.k = k;
  // Rows are converted independently by the same code, so a pool only changes who converts
  // which row: the result is bitwise the serial one. Worth a parallel section for prefill only.
  const bool par = pool && pool->size() > 1 && n >= 32;
  auto rows = [&](auto&& convert) {
    if (!par) return convert(int64_t(0), n);
    pool->parallel_for(size_t(n), 16,
                       [&](size_t b, size_t e, int) { convert(int64_t(b), int64_t(e)); });
  };
  const ActFormat act = format_traits(weight_dtype).act;
  if (act == ActFormat::kGguf) {
    gemm_detail::size_gguf_acts(n, k, out);
    return rows([&](int64_t t0, int64_t t1) {
      gemm_detail::prepare_gguf_rows(x, t0, t1, x_stride, k, out);
    });
  }
  out.kpad = round_up(std::max<int64_t>(k, 1), act == ActFormat::kQ8Group ? kQuantGroup : 32);
  const int64_t kp = out.kpad;
  switch (act) {
    case ActFormat::kF32: {
      float* d = out.f32.ensure(size_t(n * kp));
      rows([&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          std::memcpy(d + t * kp, x + t * x_stride, size_t(k) * 4);
          std::fill(d + t * kp + k, d + (t + 1) * kp, 0.0f);
        }
      });
      break;
    }
    case ActFormat::kBF16:
    case ActFormat::kBF16Rows16: {
      // BF16T on AMX reads 16-token tiles straight from these rows: zero rows up to a multiple
      // of 16 so a tail tile reads defined values (their outputs are dropped).
      const bool rows16 = act == ActFormat::kBF16Rows16;
      const int64_t padded = rows16 ? (n + 15) / 16 * 16 : n;
      uint16_t* d = out.bf16.ensure(size_t(padded * kp));
      std::fill(d + n * kp, d + padded * kp, uint16_t(0));
      const bool simd = out.isa >= Isa::kAvx512;
      rows([&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const float* xt = x + t * x_stride;
          uint16_t* dt = d + t * kp;
          if (simd)
            to_bf16_avx512(xt, k, dt);
          else
            for (int64_t i = 0; i < k; ++i) dt[i] = f32_to_bf16(xt[i]);
          std::fill(dt + k, dt + kp, uint16_t(0));
        }
      });
      if (out.isa == Isa::kAmx && !rows16) gemm_detail::amx_pack_bf16(out);
      break;
    }
    case ActFormat::kQ8Group: {
      const int64_t G = kp / kQuantGroup;
      int8_t* q = out.q.ensure(size_t(n * kp));
      float* sc = out.q_scale.ensure(size_t(G * n));
      int32_t* su = out.q_sum.ensure(size_t(G * n));
      const auto quant = out.isa >= Isa::kAvx512 ? quantize_row_avx512
                         : out.isa >= Isa::kAvx2 ? quantize_row_avx2
                                                 : quantize_row;
      rows([&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
          quant(x + t * x_stride, k, kp, q + t * kp, sc + t, su + t, n);
      });
      if (out.isa == Isa::kAmx) gemm_detail::amx_pack_int8(out);
      break;
    }
    case ActFormat::kGguf:  // returned above
    case ActFormat::kNone:
      assert(false && "prepare_acts: weight dtype without a product (quant/format_table.cc)");
  }
}

}  // namespace herd
