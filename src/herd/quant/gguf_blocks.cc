// Scalar layouts, dequantization and the reference dot products of the GGUF block formats.
// Dequantization spells each value as ggml's to_float does (same operations, same order), so the
// two agree bit for bit; the library is built for the portable baseline, which never contracts
// them into FMAs.
#include "herd/quant/gguf_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace herd {

namespace {

inline float h2f(uint16_t h) {
  return f16_to_f32(h);
}

template <typename B>
const B* blocks(const void* row) {
  return static_cast<const B*>(row);
}

// Q6_K: element e (0..255) of a block as its unsigned 6-bit code (layout in the header).
inline int q6_code(const GgufQ6_K& b, int e) {
  const int h = e / 128, j = (e % 128) / 32, l = e % 32;
  const uint8_t lo = b.ql[64 * h + l + 32 * (j & 1)];
  const int low4 = j < 2 ? lo & 0x0F : lo >> 4;
  return low4 | (((b.qh[32 * h + l] >> (2 * j)) & 3) << 4);
}
// Q2_K / Q3_K: element e's 2-bit code, and Q3_K's third bit.
inline int q2_code(const uint8_t* qs, int e) {
  const int h = e / 128, j = (e % 128) / 32, l = e % 32;
  return (qs[32 * h + l] >> (2 * j)) & 3;
}
inline int q3_high(const uint8_t* hmask, int e) {
  const int h = e / 128, j = (e % 128) / 32, l = e % 32;
  return (hmask[l] >> (4 * h + j)) & 1;
}
// Q4_K / Q5_K: element e's low 4 bits.
inline int k4_code(const uint8_t* qs, int e) {
  const int c = e / 64, l = e % 64;
  return l < 32 ? qs[32 * c + l] & 0x0F : qs[32 * c + l - 32] >> 4;
}
inline int q5_high(const uint8_t* qh, int e) {
  const int c = e / 64, l = e % 64;
  return (qh[l % 32] >> (2 * c + (l >= 32))) & 1;
}
// Q4_0 / Q4_1: element j (0..31) of a block's 16 bytes.
inline int nib32(const uint8_t* qs, int j) {
  return j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4;
}
// Q5_0 / Q5_1: element j's 5-bit code (qh is stored little-endian, as ggml memcpys it).
inline int code5(const uint8_t* qh, const uint8_t* qs, int j) {
  return nib32(qs, j) | (((qh[j / 8] >> (j % 8)) & 1) << 4);
}

}  // namespace

int64_t gguf_block_elems(DType t) {
  switch (t) {
    case DType::GGUF_Q8_0:
    case DType::GGUF_Q4_0:
    case DType::GGUF_Q4_1:
    case DType::GGUF_Q5_0:
    case DType::GGUF_Q5_1:
    case DType::GGUF_IQ4_NL:
      return 32;
    case DType::GGUF_Q4_K:
    case DType::GGUF_Q5_K:
    case DType::GGUF_Q6_K:
    case DType::GGUF_Q2_K:
    case DType::GGUF_Q3_K:
    case DType::GGUF_IQ4_XS:
    case DType::GGUF_Q8_K:
      return 256;
    default:
      return 1;
  }
}

int64_t gguf_block_bytes(DType t) {
  switch (t) {
    case DType::GGUF_Q8_0:
      return sizeof(GgufQ8_0);
    case DType::GGUF_Q4_0:
      return sizeof(GgufQ4_0);
    case DType::GGUF_Q4_1:
      return sizeof(GgufQ4_1);
    case DType::GGUF_Q5_0:
      return sizeof(GgufQ5_0);
    case DType::GGUF_Q5_1:
      return sizeof(GgufQ5_1);
    case DType::GGUF_Q4_K:
      return sizeof(GgufQ4_K);
    case DType::GGUF_Q5_K:
      return sizeof(GgufQ5_K);
    case DType::GGUF_Q6_K:
      return sizeof(GgufQ6_K);
    case DType::GGUF_Q2_K:
      return sizeof(GgufQ2_K);
    case DType::GGUF_Q3_K:
      return sizeof(GgufQ3_K);
    case DType::GGUF_IQ4_NL:
      return sizeof(GgufIQ4_NL);
    case DType::GGUF_IQ4_XS:
      return sizeof(GgufIQ4_XS);
    case DType::GGUF_Q8_K:
      return sizeof(GgufQ8_K);
    default:
      return 2;  // F16
  }
}

void gguf_dequantize_row(DType t, const void* row, int64_t cols, float* y) {
  const int64_t nb = cols / gguf_block_elems(t);
  switch (t) {
    case DType::F16: {
      const auto* p = static_cast<const uint8_t*>(row);
      for (int64_t i = 0; i < cols; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        y[i] = h2f(h);
      }
      return;
    }
    case DType::GGUF_Q8_0:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ8_0& b = blocks<GgufQ8_0>(row)[i];
        const float d = h2f(b.d);
        for (int j = 0; j < 32; ++j) y[32 * i + j] = float(b.qs[j]) * d;
      }
      return;
    case DType::GGUF_Q4_0:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ4_0& b = blocks<GgufQ4_0>(row)[i];
        const float d = h2f(b.d);
        for (int j = 0; j < 32; ++j) y[32 * i + j] = float(nib32(b.qs, j) - 8) * d;
      }
      return;
    case DType::GGUF_Q4_1:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ4_1& b = blocks<GgufQ4_1>(row)[i];
        const float d = h2f(b.d), m = h2f(b.m);
        for (int j = 0; j < 32; ++j) y[32 * i + j] = float(nib32(b.qs, j)) * d + m;
      }
      return;
    case DType::GGUF_Q5_0:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ5_0& b = blocks<GgufQ5_0>(row)[i];
        const float d = h2f(b.d);
        for (int j = 0; j < 32; ++j) y[32 * i + j] = float(code5(b.qh, b.qs, j) - 16) * d;
      }
      return;
    case DType::GGUF_Q5_1:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ5_1& b = blocks<GgufQ5_1>(row)[i];
        const float d = h2f(b.d), m = h2f(b.m);
        for (int j = 0; j < 32; ++j) y[32 * i + j] = float(code5(b.qh, b.qs, j)) * d + m;
      }
      return;
    case DType::GGUF_Q4_K:
    case DType::GGUF_Q5_K:
      for (int64_t i = 0; i < nb; ++i) {
        const bool q5 = t == DType::GGUF_Q5_K;
        const GgufQ4_K* b4 = q5 ? nullptr : &blocks<GgufQ4_K>(row)[i];
        const GgufQ5_K* b5 = q5 ? &blocks<GgufQ5_K>(row)[i] : nullptr;
        const float d = h2f(q5 ? b5->d : b4->d), dmin = h2f(q5 ? b5->dmin : b4->dmin);
        const uint8_t* sc = q5 ? b5->scales : b4->scales;
        const uint8_t* qs = q5 ? b5->qs : b4->qs;
        for (int s = 0; s < 8; ++s) {
          uint8_t a, m;
          gguf_scale_min_k4(sc, s, &a, &m);
          const float d1 = d * float(a), m1 = dmin * float(m);
          for (int l = 0; l < 32; ++l) {
            const int e = 32 * s + l;
            const int u = k4_code(qs, e) + (q5 ? 16 * q5_high(b5->qh, e) : 0);
            y[256 * i + e] = d1 * float(u) - m1;
          }
        }
      }
      return;
    case DType::GGUF_Q6_K:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ6_K& b = blocks<GgufQ6_K>(row)[i];
        const float d = h2f(b.d);
        for (int e = 0; e < 256; ++e)
          y[256 * i + e] = d * float(b.scales[e / 16]) * float(q6_code(b, e) - 32);
      }
      return;
    case DType::GGUF_Q2_K:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ2_K& b = blocks<GgufQ2_K>(row)[i];
        const float d = h2f(b.d), dmin = h2f(b.dmin);
        for (int e = 0; e < 256; ++e) {
          const uint8_t sc = b.scales[e / 16];
          const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
          y[256 * i + e] = dl * float(q2_code(b.qs, e)) - ml;
        }
      }
      return;
    case DType::GGUF_Q3_K:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ3_K& b = blocks<GgufQ3_K>(row)[i];
        const float d = h2f(b.d);
        int8_t sc[16];
        gguf_scales_q3k(b.scales, sc);
        for (int e = 0; e < 256; ++e) {
          const int u = q2_code(b.qs, e) + 4 * q3_high(b.hmask, e);
          y[256 * i + e] = (d * float(sc[e / 16])) * float(u - 4);
        }
      }
      return;
    case DType::GGUF_IQ4_NL:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufIQ4_NL& b = blocks<GgufIQ4_NL>(row)[i];
        const float d = h2f(b.d);
        for (int j = 0; j < 32; ++j) y[32 * i + j] = d * float(kIq4nlValues[nib32(b.qs, j)]);
      }
      return;
    case DType::GGUF_IQ4_XS:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufIQ4_XS& b = blocks<GgufIQ4_XS>(row)[i];
        const float d = h2f(b.d);
        for (int s = 0; s < 8; ++s) {
          const float dl = d * float(gguf_scale_iq4xs(b, s));
          for (int j = 0; j < 32; ++j)
            y[256 * i + 32 * s + j] = dl * float(kIq4nlValues[nib32(b.qs + 16 * s, j)]);
        }
      }
      return;
    case DType::GGUF_Q8_K:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ8_K& b = blocks<GgufQ8_K>(row)[i];
        for (int j = 0; j < 256; ++j) y[256 * i + j] = b.d * float(b.qs[j]);
      }
      return;
    default:
      return;
  }
}

int64_t gguf_act_block(DType t) {
  return t == DType::F16 ? 0 : gguf_block_elems(t);
}

void quantize_gguf_act_row(const float* x, int64_t k, int64_t kpad, int64_t block, int8_t* q,
                           float* d, int16_t* sums, float* s) {
  for (int64_t b = 0; b < kpad; b += block) {
    const int64_t m = std::clamp<int64_t>(k - b, 0, block);
    float* qd = &d[b / block];
    if (block == 256) {  // Q8_K: quantize_row_q8_K_ref (the signed max, the first of largest |x|)
      float amax = 0, max = 0;
      for (int64_t i = 0; i < m; ++i)
        if (std::fabs(x[b + i]) > amax) {
          amax = std::fabs(x[b + i]);
          max = x[b + i];
        }
      const float iscale = amax > 0 ? -127.0f / max : 0.0f;
      for (int64_t i = 0; i < block; ++i)
        q[b + i] =
            int8_t(i < m ? std::clamp(int(std::nearbyint(iscale * x[b + i])), -127, 127) : 0);
      *qd = amax > 0 ? 1.0f / iscale : 0.0f;
    } else {  // Q8_0 / Q8_1: quantize_row_q8_0 (d kept as f16, q from the f32 127 / amax)
      float amax = 0;
      for (int64_t i = 0; i < m; ++i) amax = std::max(amax, std::fabs(x[b + i]));
      const float inv = amax > 0 ? 127.0f / amax : 0.0f;
      int sum = 0;
      for (int64_t i = 0; i < block; ++i) {
        q[b + i] = int8_t(i < m ? std::clamp(int(std::nearbyint(x[b + i] * inv)), -127, 127) : 0);
        sum += q[b + i];
      }
      *qd = h2f(f32_to_f16(amax / 127.0f));
      if (s) s[b / block] = h2f(f32_to_f16(float(sum) * (amax / 127.0f)));  // quantize_row_q8_1
    }
  }
  for (int64_t s = 0; s < kpad / 16; ++s) {
    int v = 0;
    for (int i = 0; i < 16; ++i) v += q[16 * s + i];
    sums[s] = int16_t(v);
  }
}

float gguf_sum16(float* p) {
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) p[l] = p[l] + p[l + w];
  return p[0];
}

// Per block: the integer dot of the codes (exact), then one FMA per scale term into the f32
// accumulator, blocks in order (the 32-blocks: into 16 partial sums, see there). The SIMD kernels
// compute the same integers and the same FMAs in the same order: bitwise equal (F16 aside).
float gguf_dot_row(DType t, const void* row, int64_t cols, const float* x, const int8_t* q,
                   const float* d, const int16_t* sums, const float* s) {
  const int64_t nb = cols / gguf_block_elems(t);
  float acc = 0;
  switch (t) {
    case DType::F16: {
      const auto* p = static_cast<const uint8_t*>(row);
      for (int64_t i = 0; i < cols; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        acc = std::fma(h2f(h), x[i], acc);
      }
      return acc;
    }
    case DType::GGUF_Q8_0:
    case DType::GGUF_Q4_0:
    case DType::GGUF_Q4_1:
    case DType::GGUF_Q5_0:
    case DType::GGUF_Q5_1:
    case DType::GGUF_IQ4_NL: {
      // 16 partial sums, block i into sum i mod 16, then the halving tree (so SIMD code keeps
      // them in one vector's lanes, or in 16 vectors whose lanes are rows, and agrees bitwise).
      float part[16] = {};
      for (int64_t i = 0; i < nb; ++i) {
        const int8_t* xq = q + 32 * i;
        const int32_t xs = int32_t(sums[2 * i]) + sums[2 * i + 1];
        float& p = part[i % 16];
        int32_t dot = 0;
        if (t == DType::GGUF_Q8_0) {
          const GgufQ8_0& b = blocks<GgufQ8_0>(row)[i];
          for (int j = 0; j < 32; ++j) dot += int32_t(b.qs[j]) * xq[j];
          p = std::fma(float(dot), h2f(b.d) * d[i], p);
        } else if (t == DType::GGUF_Q4_0) {
          const GgufQ4_0& b = blocks<GgufQ4_0>(row)[i];
          for (int j = 0; j < 32; ++j) dot += nib32(b.qs, j) * xq[j];
          p = std::fma(float(dot - 8 * xs), h2f(b.d) * d[i], p);
        } else if (t == DType::GGUF_Q4_1) {
          const GgufQ4_1& b = blocks<GgufQ4_1>(row)[i];
          for (int j = 0; j < 32; ++j) dot += nib32(b.qs, j) * xq[j];
          p = std::fma(float(dot), h2f(b.d) * d[i], p);
          p = std::fma(s[i], h2f(b.m), p);
        } else if (t == DType::GGUF_IQ4_NL) {
          const GgufIQ4_NL& b = blocks<GgufIQ4_NL>(row)[i];
          for (int j = 0; j < 32; ++j) dot += kIq4nlValues[nib32(b.qs, j)] * xq[j];
          p = std::fma(float(dot), h2f(b.d) * d[i], p);
        } else if (t == DType::GGUF_Q5_0) {
          const GgufQ5_0& b = blocks<GgufQ5_0>(row)[i];
          for (int j = 0; j < 32; ++j) dot += code5(b.qh, b.qs, j) * xq[j];
          p = std::fma(float(dot - 16 * xs), h2f(b.d) * d[i], p);
        } else {
          const GgufQ5_1& b = blocks<GgufQ5_1>(row)[i];
          for (int j = 0; j < 32; ++j) dot += code5(b.qh, b.qs, j) * xq[j];
          p = std::fma(float(dot), h2f(b.d) * d[i], p);
          p = std::fma(s[i], h2f(b.m), p);
        }
      }
      return gguf_sum16(part);
    }
    case DType::GGUF_Q4_K:
    case DType::GGUF_Q5_K:
      for (int64_t i = 0; i < nb; ++i) {
        const bool q5 = t == DType::GGUF_Q5_K;
        const GgufQ4_K* b4 = q5 ? nullptr : &blocks<GgufQ4_K>(row)[i];
        const GgufQ5_K* b5 = q5 ? &blocks<GgufQ5_K>(row)[i] : nullptr;
        const uint8_t* sc = q5 ? b5->scales : b4->scales;
        const uint8_t* qs = q5 ? b5->qs : b4->qs;
        const int8_t* xq = q + 256 * i;
        int32_t dot = 0, mins = 0;
        for (int s = 0; s < 8; ++s) {
          uint8_t a, m;
          gguf_scale_min_k4(sc, s, &a, &m);
          int32_t sd = 0;
          for (int l = 0; l < 32; ++l) {
            const int e = 32 * s + l;
            sd += (k4_code(qs, e) + (q5 ? 16 * q5_high(b5->qh, e) : 0)) * xq[e];
          }
          dot += a * sd;
          mins += m * (int32_t(sums[16 * i + 2 * s]) + sums[16 * i + 2 * s + 1]);
        }
        const float dd = h2f(q5 ? b5->d : b4->d) * d[i], dm = h2f(q5 ? b5->dmin : b4->dmin) * d[i];
        acc = std::fma(float(dot), dd, acc);
        acc = std::fma(float(mins), -dm, acc);
      }
      return acc;
    case DType::GGUF_Q6_K:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ6_K& b = blocks<GgufQ6_K>(row)[i];
        const int8_t* xq = q + 256 * i;
        int32_t dot = 0;
        for (int s = 0; s < 16; ++s) {
          int32_t sd = 0;
          for (int l = 0; l < 16; ++l) sd += q6_code(b, 16 * s + l) * xq[16 * s + l];
          dot += b.scales[s] * (sd - 32 * sums[16 * i + s]);
        }
        acc = std::fma(float(dot), h2f(b.d) * d[i], acc);
      }
      return acc;
    case DType::GGUF_Q2_K:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ2_K& b = blocks<GgufQ2_K>(row)[i];
        const int8_t* xq = q + 256 * i;
        int32_t dot = 0, mins = 0;
        for (int s = 0; s < 16; ++s) {
          int32_t sd = 0;
          for (int l = 0; l < 16; ++l) sd += q2_code(b.qs, 16 * s + l) * xq[16 * s + l];
          dot += (b.scales[s] & 0xF) * sd;
          mins += (b.scales[s] >> 4) * int32_t(sums[16 * i + s]);
        }
        acc = std::fma(float(dot), h2f(b.d) * d[i], acc);
        acc = std::fma(float(mins), -(h2f(b.dmin) * d[i]), acc);
      }
      return acc;
    case DType::GGUF_Q3_K:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ3_K& b = blocks<GgufQ3_K>(row)[i];
        const int8_t* xq = q + 256 * i;
        int8_t sc[16];
        gguf_scales_q3k(b.scales, sc);
        int32_t dot = 0;
        for (int s = 0; s < 16; ++s) {
          int32_t sd = 0;
          for (int l = 0; l < 16; ++l) {
            const int e = 16 * s + l;
            sd += (q2_code(b.qs, e) + 4 * q3_high(b.hmask, e)) * xq[e];
          }
          dot += sc[s] * (sd - 4 * sums[16 * i + s]);
        }
        acc = std::fma(float(dot), h2f(b.d) * d[i], acc);
      }
      return acc;
    case DType::GGUF_IQ4_XS:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufIQ4_XS& b = blocks<GgufIQ4_XS>(row)[i];
        const int8_t* xq = q + 256 * i;
        int32_t dot = 0;
        for (int s = 0; s < 8; ++s) {
          int32_t sd = 0;
          for (int j = 0; j < 32; ++j) sd += kIq4nlValues[nib32(b.qs + 16 * s, j)] * xq[32 * s + j];
          dot += gguf_scale_iq4xs(b, s) * sd;
        }
        acc = std::fma(float(dot), h2f(b.d) * d[i], acc);
      }
      return acc;
    case DType::GGUF_Q8_K:
      for (int64_t i = 0; i < nb; ++i) {
        const GgufQ8_K& b = blocks<GgufQ8_K>(row)[i];
        int32_t dot = 0;
        for (int j = 0; j < 256; ++j) dot += int32_t(b.qs[j]) * q[256 * i + j];
        acc = std::fma(float(dot), b.d * d[i], acc);
      }
      return acc;
    default:
      return 0;
  }
}

}  // namespace herd
