// Element types of stored tensors and scalar conversions between them.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace herd {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  F8_E4M3,
  I8,
  U8,
  I16,
  I32,
  I64,
  F64,
  BOOL,
  Q8G,
  Q4G,
  BF16T,
  Q8GI,  // Q8G / Q4G interleaved 16 rows at a time (quant/formats.h), for AVX-512 VNNI
  Q4GI,
  // llama.cpp's GGUF block formats, byte for byte as ggml lays them out (ggml-common.h), so a
  // GGUF's tensors run from the mmap with no conversion. Q8_K is the activation format of the
  // K-quants' dot products; GGUF files may also store it.
  GGUF_Q8_0,
  GGUF_Q4_0,
  GGUF_Q4_1,
  GGUF_Q5_0,
  GGUF_Q5_1,
  GGUF_Q5_K,
  GGUF_Q4_K,
  GGUF_Q6_K,
  GGUF_Q2_K,
  GGUF_Q3_K,
  GGUF_IQ4_NL,
  GGUF_IQ4_XS,
  GGUF_Q8_K
};

inline bool is_gguf_block(DType t) {
  return t >= DType::GGUF_Q8_0 && t <= DType::GGUF_Q8_K;
}

// Bytes per element; 0 for packed block formats (their size comes from quant/).
size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // safetensors spelling: "BF16", "F8_E4M3", ...
// Parses a safetensors dtype name; false if unknown (GGUF block names are not safetensors').
bool parse_dtype(std::string_view name, DType* out);

inline float bf16_to_f32(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN stays NaN (what torch's .to(bfloat16) does).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

// Rounds an f32 to the nearest bf16 value, kept as f32 (the reference rounds activations so).
inline float round_bf16(float f) {
  return bf16_to_f32(f32_to_bf16(f));
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// OCP FP8 E4M3 "fn" variant (no infinities, 0x7f/0xff are NaN, max 448).
float fp8_e4m3_to_f32(uint8_t v);
uint8_t f32_to_fp8_e4m3(float f);

}  // namespace herd
