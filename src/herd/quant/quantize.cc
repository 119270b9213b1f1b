#include "herd/quant/quantize.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "herd/quant/formats.h"

namespace herd {

std::optional<QuantMode> parse_quant_mode(std::string_view name) {
  if (name == "bf16") return QuantMode::kBF16;
  if (name == "int8") return QuantMode::kInt8;
  if (name == "int4") return QuantMode::kInt4;
  if (name == "int4-all") return QuantMode::kInt4All;
  if (name == "q8_0") return QuantMode::kQ8_0;
  if (name == "q4_0") return QuantMode::kQ4_0;
  return std::nullopt;
}

std::string_view quant_mode_name(QuantMode m) {
  switch (m) {
    case QuantMode::kBF16:
      return "bf16";
    case QuantMode::kInt8:
      return "int8";
    case QuantMode::kInt4:
      return "int4";
    case QuantMode::kInt4All:
      return "int4-all";
    case QuantMode::kQ8_0:
      return "q8_0";
    case QuantMode::kQ4_0:
      return "q4_0";
  }
  return "?";
}

DType run_dtype(QuantMode m, WeightClass c) {
  if (c == WeightClass::kEmbedding || c == WeightClass::kRouter) return DType::BF16;
  switch (m) {
    case QuantMode::kBF16:
      return DType::BF16;
    case QuantMode::kInt8:
      return DType::Q8G;
    case QuantMode::kInt4:
      // Meta's int4_mixed (spec §2.3): only the MoE experts, routed and shared.
      return c == WeightClass::kExpert || c == WeightClass::kShared ? DType::Q4G : DType::BF16;
    case QuantMode::kInt4All:
      return DType::Q4G;
    case QuantMode::kQ8_0:
      return DType::GGUF_Q8_0;
    case QuantMode::kQ4_0:
      return DType::GGUF_Q4_0;
  }
  return DType::BF16;
}

int64_t encoded_row_bytes(DType t, int64_t cols) {
  return format_row_bytes(t, cols);
}

namespace {

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5·2^23 leaves no fraction bits, so
// the FPU's default rounding does the work. Same result as std::nearbyint (which the scalar
// quantizers of formats.cc call, not inlined without SSE4.1) and vectorizable.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

// The group's codes before biasing, exactly as formats.cc computes them: v = x · (qmax / amax).
template <int kLo, int kHi>
__attribute__((always_inline)) inline void group_codes(const float* x, int64_t n, float inv,
                                                       int32_t* q) {
  for (int64_t i = 0; i < n; ++i) {
    const int v = int(round_even(x[i] * inv));
    q[i] = v < kLo ? kLo : (v > kHi ? kHi : v);
  }
  for (int64_t i = n; i < kQuantGroup; ++i) q[i] = 0;  // padding of the last group
}

__attribute__((always_inline)) inline float group_amax(const float* x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

}  // namespace

// The per-element loops are exact integer/float operations whose results do not depend on the
// vector width, so an AVX2 clone (picked at load by the dynamic linker) is bit-identical to the
// baseline one; -O2 alone does not vectorize them.
#define HERD_VECTORIZE __attribute__((target_clones("avx2", "default"), optimize("tree-vectorize")))

HERD_VECTORIZE void quantize_row_q8g_fast(const float* x, int64_t cols, uint8_t* q, float* scales) {
  int32_t codes[kQuantGroup];
  for (int64_t g = 0; g < quant_groups(cols); ++g) {
    const int64_t b = g * kQuantGroup, n = std::min(kQuantGroup, cols - b);
    const float amax = group_amax(x + b, n);
    scales[g] = amax / 127.0f;
    group_codes<-127, 127>(x + b, n, amax > 0 ? 127.0f / amax : 0.0f, codes);
    for (int64_t i = 0; i < kQuantGroup; ++i) q[b + i] = uint8_t(codes[i] + 128);
  }
}

HERD_VECTORIZE void quantize_row_q4g_fast(const float* x, int64_t cols, uint8_t* q, float* scales) {
  int32_t codes[kQuantGroup];
  for (int64_t g = 0; g < quant_groups(cols); ++g) {
    const int64_t b = g * kQuantGroup, n = std::min(kQuantGroup, cols - b);
    const float amax = group_amax(x + b, n);
    scales[g] = amax / 8.0f;
    group_codes<-8, 7>(x + b, n, amax > 0 ? 8.0f / amax : 0.0f, codes);
    uint8_t* out = q + g * (kQuantGroup / 2);
    for (int64_t j = 0; j < kQuantGroup / 2; ++j)
      out[j] = uint8_t((codes[j] + 8) | ((codes[j + kQuantGroup / 2] + 8) << 4));
  }
}

void encode_row(const float* x, int64_t cols, DType to, uint8_t* dst, float* scales) {
  const auto from_float = format_traits(to).from_float;
  assert(from_float && "encode_row: herd does not write rows of this dtype");
  from_float(x, cols, dst, scales);
}

}  // namespace herd
