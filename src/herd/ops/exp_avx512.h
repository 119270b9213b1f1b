// A vectorized exp shared by the fast path's attention (scores) and SwiGLU.
#pragma once

#include <immintrin.h>

namespace herd {

// exp(x) within ~2 ulp of std::exp: x = n*ln2 + r with |r| <= ln2/2 (ln2 split in two so r is
// exact to f32), Cephes' expf polynomial for e^r, scalef for 2^n (which rounds to denormals, 0
// and inf correctly). x is clamped to [-104, 89]: e^x rounds to 0 below and to inf above, so
// -inf gives 0 (never inf - inf) and large x gives inf.
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);  // exp(0) == 1 exactly: n = 0, r = 0, p = 1
}

}  // namespace herd
