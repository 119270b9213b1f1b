#include "herd/base/dtype.h"

#include <cmath>

namespace herd {

namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;
};
constexpr DTypeInfo kInfo[] = {
    {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},
    {DType::I16, "I16", 2},
    {DType::I32, "I32", 4},
    {DType::I64, "I64", 8},
    {DType::F64, "F64", 8},
    {DType::BOOL, "BOOL", 1},
    // herd's packed formats (quant/): size per element is not a whole number of bytes.
    {DType::Q8G, "HERD_Q8G", 0},
    {DType::Q4G, "HERD_Q4G", 0},
    {DType::BF16T, "HERD_BF16T", 0},
    {DType::Q8GI, "HERD_Q8GI", 0},
    {DType::Q4GI, "HERD_Q4GI", 0},
    // GGUF block formats: named as ggml names them.
    {DType::GGUF_Q8_0, "Q8_0", 0},
    {DType::GGUF_Q4_0, "Q4_0", 0},
    {DType::GGUF_Q4_1, "Q4_1", 0},
    {DType::GGUF_Q5_0, "Q5_0", 0},
    {DType::GGUF_Q5_1, "Q5_1", 0},
    {DType::GGUF_Q5_K, "Q5_K", 0},
    {DType::GGUF_Q4_K, "Q4_K", 0},
    {DType::GGUF_Q6_K, "Q6_K", 0},
    {DType::GGUF_Q2_K, "Q2_K", 0},
    {DType::GGUF_Q3_K, "Q3_K", 0},
    {DType::GGUF_IQ4_NL, "IQ4_NL", 0},
    {DType::GGUF_IQ4_XS, "IQ4_XS", 0},
    {DType::GGUF_Q8_K, "Q8_K", 0},
};
}  // namespace

size_t dtype_size(DType t) {
  for (const auto& i : kInfo)
    if (i.type == t) return i.size;
  return 0;
}

std::string_view dtype_name(DType t) {
  for (const auto& i : kInfo)
    if (i.type == t) return i.name;
  return "?";
}

bool parse_dtype(std::string_view name, DType* out) {
  for (const auto& i : kInfo)
    // GGUF block types never appear in a safetensors header; a file naming one is malformed.
    if (i.name == name && !is_gguf_block(i.type)) {
      *out = i.type;
      return true;
    }
  return false;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = std::ldexp(float(man), -24);
    return sign ? -f : f;
  }
  uint32_t u =
      exp == 31 ? (sign | 0x7f800000u | (man << 13)) : (sign | ((exp + 112) << 23) | (man << 13));
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00;
  if (a < 6.103515625e-05f) {  // subnormal: multiples of 2^-24, round to nearest even
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));
  }
  uint32_t v = u & 0x7fffffffu;
  v += 0xfffu + ((v >> 13) & 1);
  return sign | uint16_t(((v >> 23) - 112) << 10 | ((v >> 13) & 0x3ff));
}

float fp8_e4m3_to_f32(uint8_t v) {
  int sign = v & 0x80;
  int exp = (v >> 3) & 0xf;
  int man = v & 7;
  float f;
  if (exp == 0xf && man == 7) return std::nanf("");
  if (exp == 0)
    f = std::ldexp(float(man), -9);
  else
    f = std::ldexp(1.0f + man / 8.0f, exp - 7);
  return sign ? -f : f;
}

uint8_t f32_to_fp8_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  uint8_t sign = std::signbit(f) ? 0x80 : 0;
  float a = std::fmin(std::fabs(f), 448.0f);  // saturate, as torch's float8_e4m3fn cast
  // Brute force nearest-even over the 127 finite magnitudes: simple and exact.
  uint8_t best = 0;
  float best_d = INFINITY;
  for (int c = 0; c < 127; ++c) {
    float d = std::fabs(fp8_e4m3_to_f32(uint8_t(c)) - a);
    if (d < best_d || (d == best_d && (c & 1) == 0 && (best & 1))) {
      best_d = d;
      best = uint8_t(c);
    }
  }
  return sign | best;
}

}  // namespace herd
