// llama.cpp's GGUF tensor block formats, byte for byte as ggml lays them out (ggml-common.h), so
// a GGUF's tensors are read from the mmap as they are; and the activation formats their dot
// products take. This file is the per-type interface the gemm dispatch uses:
//   gguf_block_elems / gguf_block_bytes / gguf_row_bytes   layout
//   gguf_dequantize_row                                   f32 values (embeddings, references)
//   gguf_act_block + quantize_gguf_act_row                activation format of the dot product
//   gguf_dot_row                                          scalar reference dot product
// and ops/gemm_gguf_{scalar,vnni}.cc hold the kernels per ISA.
//
// Element order within a block (what dequantize gives, what the dot products pair with x):
//  Q8_0  32 × int8 q; w = d·q.
//  Q4_0  byte j (0..15) holds element j (low nibble) and j + 16 (high); w = d·(u − 8).
//  Q4_1  the same nibbles; w = d·u + m.
//  Q5_0  Q4_0's nibbles plus a fifth bit: bit j of the little-endian uint32 qh for element j;
//        w = d·(u − 16). (llama-quantize's fallback for Q4_K rows not a multiple of 256.)
//  Q5_1  the same codes; w = d·u + m (the fallback for Q5_K).
//  Q4_K  256 = 8 sub-blocks of 32 with 6-bit scale s_i and min m_i packed in 12 bytes; qs byte
//        32c + l holds element 64c + l (low nibble) and 64c + 32 + l (high); w = d·s_i·u −
//        dmin·m_i.
//  Q5_K  Q4_K plus a fifth bit: qh byte l, bit 2c for element 64c + l, bit 2c + 1 for 64c + 32 + l.
//  Q6_K  16 sub-blocks of 16 with int8 scales; half h (128 elements) takes ql[64h .. 64h + 63] and
//        qh[32h .. 32h + 31]: element 128h + 32j + l (j 0..3, l 0..31) has low 4 bits from
//        ql[64h + l + 32·(j & 1)] (low nibble for j < 2, high for j ≥ 2) and high 2 bits from
//        qh[32h + l] >> 2j; w = d·s_i·(u − 32).
//  Q2_K  16 sub-blocks of 16, scales[i] = 4-bit scale s_i | 4-bit min m_i << 4; element
//        128h + 32j + l (h 0..1, j 0..3, l 0..31) is (qs[32h + l] >> 2j) & 3; w = d·s_i·u −
//        dmin·m_i.
//  Q3_K  Q2_K's 2-bit codes plus a third bit, hmask[l] bit 4h + j (set: +4); 16 6-bit scales
//        S_i packed in 12 bytes (gguf_scales_q3k); w = d·(S_i − 32)·(u − 4), u = 0..7.
//  IQ4_NL  Q4_0's nibbles as indices into the 16 int8 values kIq4nlValues; w = d·v[u].
//        (llama-quantize's fallback for rows that are no multiple of 256 in the IQ types' files;
//        Q2_K / Q3_K rows fall back to Q4_0.)
//  IQ4_XS  256 = 8 sub-blocks of 32, each IQ4_NL's nibble layout (qs[16i .. 16i + 15]) with a
//        6-bit scale L_i (low 4 bits in scales_l nibble i, high 2 in scales_h bits 2i, 2i + 1);
//        w = d·(L_i − 32)·v[u].
//  Q8_K  f32 d, 256 × int8, 16 int16 sums of 16; w = d·q (the K-quants' activation format).
//
// Activations for the integer formats are one int8 row per token (x quantized per block of the
// dot product's width: 32 for Q8_0 and Q4_0 .. Q5_1, 256 for the K-quants and Q8_K), one f32 scale
// per block and the int16 sums of each 16 consecutive q (they remove the formats' offsets and
// mins). The codes and scales are bitwise those of ggml's CPU from_float for the weight type's
// vec_dot_type, so the integer block dots are the ones llama.cpp computes:
//  32-blocks (Q8_0; Q8_1 has the same q and d): q = round-to-nearest-even(x · (127 / max|x|)),
//    d = the f16 rounding of max|x| / 127 (ggml stores d as f16);
//  256-blocks (Q8_K): with `max` the first x of largest |x|, iscale = −127 / max,
//    q = round-to-nearest-even(iscale · x), d = 1 / iscale (f32, negative when max > 0).
//  Q8_1 (Q4_1 / Q5_1) also has s = the f16 rounding of Σq · (max|x| / 127), d before its f16
//    rounding; the min term of the dot is m·s, as ggml computes it.
// Not matched: F16, whose ggml dot takes f16 activations (herd keeps them f32).
#pragma once

#include <cstdint>

#include "herd/base/dtype.h"

namespace herd {

struct GgufQ8_0 {
  uint16_t d;  // f16
  int8_t qs[32];
};
struct GgufQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
struct GgufQ4_1 {
  uint16_t d, m;
  uint8_t qs[16];
};
struct GgufQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct GgufQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct GgufQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct GgufQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct GgufQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
struct GgufQ2_K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d, dmin;
};
struct GgufQ3_K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
struct GgufIQ4_NL {
  uint16_t d;
  uint8_t qs[16];
};
struct GgufIQ4_XS {
  uint16_t d, scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};
// ggml's kvalues_iq4nl: the non-linear 4-bit grid of IQ4_NL / IQ4_XS.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};
// IQ4_XS: sub-block i's scale minus 32.
inline int gguf_scale_iq4xs(const GgufIQ4_XS& b, int i) {
  return (((b.scales_l[i / 2] >> (4 * (i % 2))) & 0xF) | (((b.scales_h >> (2 * i)) & 3) << 4)) - 32;
}
struct GgufQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};
static_assert(sizeof(GgufQ8_0) == 34 && sizeof(GgufQ4_0) == 18 && sizeof(GgufQ4_1) == 20);
static_assert(sizeof(GgufQ5_0) == 22 && sizeof(GgufQ5_1) == 24 && alignof(GgufQ5_0) == 2);
static_assert(sizeof(GgufQ4_K) == 144 && sizeof(GgufQ5_K) == 176 && sizeof(GgufQ6_K) == 210);
static_assert(sizeof(GgufQ8_K) == 292 && sizeof(GgufQ2_K) == 84 && sizeof(GgufQ3_K) == 110);
static_assert(sizeof(GgufIQ4_NL) == 18 && sizeof(GgufIQ4_XS) == 136);

// F16 or a GGUF block format with kernels here.
inline bool is_gguf_kernel_type(DType t) {
  return t == DType::F16 || is_gguf_block(t);
}
// Elements per block (1 for F16) and bytes per block.
int64_t gguf_block_elems(DType t);
int64_t gguf_block_bytes(DType t);
// Bytes of a row of `cols` elements (cols a multiple of the block, which GGUF guarantees).
inline int64_t gguf_row_bytes(DType t, int64_t cols) {
  return cols / gguf_block_elems(t) * gguf_block_bytes(t);
}

// Q4_K / Q5_K: the 6-bit scale and min of sub-block i (0..7) from the 12 packed bytes.
inline void gguf_scale_min_k4(const uint8_t* s, int i, uint8_t* scale, uint8_t* min) {
  if (i < 4) {
    *scale = s[i] & 63;
    *min = s[i + 4] & 63;
  } else {
    *scale = uint8_t((s[i + 4] & 0x0F) | ((s[i - 4] >> 6) << 4));
    *min = uint8_t((s[i + 4] >> 4) | ((s[i] >> 6) << 4));
  }
}

// Q3_K: the 16 signed scales S_i − 32 from the 12 packed bytes (ggml's kmask bit algebra).
inline void gguf_scales_q3k(const uint8_t* s, int8_t* out) {
  uint32_t a0 = 0, a1 = 0, t = 0;
  for (int b = 0; b < 4; ++b) {
    a0 |= uint32_t(s[b]) << (8 * b);
    a1 |= uint32_t(s[4 + b]) << (8 * b);
    t |= uint32_t(s[8 + b]) << (8 * b);
  }
  const uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f;
  const uint32_t w[4] = {(a0 & k2) | ((t & k1) << 4), (a1 & k2) | (((t >> 2) & k1) << 4),
                         ((a0 >> 4) & k2) | (((t >> 4) & k1) << 4),
                         ((a1 >> 4) & k2) | (((t >> 6) & k1) << 4)};
  for (int i = 0; i < 16; ++i) out[i] = int8_t(int((w[i / 4] >> (8 * (i % 4))) & 0xFF) - 32);
}

// One row of `cols` elements to f32; bitwise what ggml's to_float gives.
void gguf_dequantize_row(DType t, const void* row, int64_t cols, float* out);

// herd's quantizers into Q8_0 / Q4_0 blocks (gguf_quantize.cc; `--quant q8_0 / q4_0`): per
// block the least-squared-error scale among a few around ggml's own choice (which is one of the
// candidates). cols must be a multiple of 32; the last argument (block scales of the group
// formats) is unused: the format table's from_float signature.
void quantize_row_gguf_q8_0(const float* x, int64_t cols, uint8_t* dst, float* unused);
void quantize_row_gguf_q4_0(const float* x, int64_t cols, uint8_t* dst, float* unused);

// Activation block of the dot product: 32 (Q8_0, Q4_0 .. Q5_1), 256 (K-quants, Q8_K), 0 for F16
// (f32 activations).
int64_t gguf_act_block(DType t);
// Whether t's dot product takes Q8_1 activations, whose per-block s the min term uses (Q4_1, Q5_1).
inline bool gguf_act_has_s(DType t) {
  return t == DType::GGUF_Q4_1 || t == DType::GGUF_Q5_1;
}
// Quantizes x[0, k) (zero padded to kpad, a multiple of `block`) into q[kpad], d[kpad / block] and
// sums[kpad / 16]; with s (32-blocks only) also Q8_1's s[kpad / 32].
void quantize_gguf_act_row(const float* x, int64_t k, int64_t kpad, int64_t block, int8_t* q,
                           float* d, int16_t* sums, float* s = nullptr);

// Σ_i w[i]·x[i] for one weight row of type t (cols elements) and one activation row in t's
// format (f32 x for F16). The reference every kernel is tested against: per block an exact
// integer dot, combined in block order with one FMA per scale term (the 32-blocks: block i
// into partial sum i mod 16, then gguf_sum16).
// s: Q8_1's per-block s, for the types gguf_act_has_s names (nullptr otherwise).
float gguf_dot_row(DType t, const void* row, int64_t cols, const float* x, const int8_t* q,
                   const float* d, const int16_t* sums, const float* s);
// The 32-blocks' final sum of their 16 partial sums (p is overwritten): p[l] += p[l + w] for w = 8,
// 4, 2, 1.
float gguf_sum16(float* p);

}  // namespace herd
