#include "herd/ops/kv_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>

#include "herd/base/dtype.h"
#include "herd/quant/fp8.h"

namespace herd {

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::kF32:
      return "f32";
    case KvType::kBF16:
      return "bf16";
    case KvType::kInt8:
      return "int8";
    case KvType::kFp8E4M3:
      return "fp8-e4m3";
  }
  return "?";
}

bool parse_kv_type(std::string_view name, KvType* out) {
  for (KvType t : {KvType::kF32, KvType::kBF16, KvType::kInt8, KvType::kFp8E4M3})
    if (name == kv_type_name(t)) {
      *out = t;
      return true;
    }
  return false;
}

namespace {

// max |x| over one head; fmax drops NaN, so one NaN does not poison the head's scale.
float head_max(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::fmax(m, std::fabs(x[i]));
  return m;
}

int8_t int8_code(float x, float scale) {
  const float c = x / scale;
  if (std::isnan(c)) return 0;  // also inf/inf: no int8 NaN, and lrint(NaN) is unspecified
  return int8_t(std::nearbyint(std::clamp(c, -127.0f, 127.0f)));  // default mode: ties to even
}

// fp8 e4m3 code -> f32 (base/dtype.h's conversion, tabulated: it is on the reference's read path).
const float* fp8_values() {
  static const auto* t = [] {
    auto* a = new float[256];
    for (int i = 0; i < 256; ++i) a[i] = fp8_e4m3_to_f32(uint8_t(i));
    return a;
  }();
  return t;
}

}  // namespace

void kv_store_row(KvType t, const float* x, int64_t n_kv_heads, int64_t head_dim, void* dst,
                  float* scales, int64_t stride) {
  const int64_t n = n_kv_heads * head_dim;
  switch (t) {
    case KvType::kF32: {
      auto* d = static_cast<float*>(dst);
      if (stride == 1)
        std::memcpy(d, x, size_t(n) * sizeof(float));
      else
        for (int64_t i = 0; i < n; ++i) d[i * stride] = x[i];
      return;
    }
    case KvType::kBF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i * stride] = f32_to_bf16(x[i]);
      return;
    }
    case KvType::kInt8:
    case KvType::kFp8E4M3: {
      const float qmax = t == KvType::kInt8 ? 127.0f : kFp8E4M3Max;
      for (int64_t h = 0; h < n_kv_heads; ++h) {
        const float* xh = x + h * head_dim;
        const float scale = head_max(xh, head_dim) / qmax;
        scales[h] = scale;
        if (t == KvType::kInt8) {
          int8_t* d = static_cast<int8_t*>(dst) + h * head_dim * stride;
          for (int64_t i = 0; i < head_dim; ++i)
            d[i * stride] = scale > 0 ? int8_code(xh[i], scale) : 0;
        } else {
          uint8_t* d = static_cast<uint8_t*>(dst) + h * head_dim * stride;
          if (stride == 1) {
            quantize_row_fp8(xh, head_dim, scale, d);
            continue;
          }
          uint8_t codes[256];  // element-wise codes, so a piece at a time (no allocation)
          for (int64_t i0 = 0; i0 < head_dim; i0 += 256) {
            const int64_t m = std::min<int64_t>(256, head_dim - i0);
            quantize_row_fp8(xh + i0, m, scale, codes);
            for (int64_t i = 0; i < m; ++i) d[(i0 + i) * stride] = codes[i];
          }
        }
      }
      return;
    }
  }
}

void kv_load_row(KvType t, const void* src, const float* scales, int64_t n_kv_heads,
                 int64_t head_dim, float* out, int64_t stride) {
  const int64_t n = n_kv_heads * head_dim;
  switch (t) {
    case KvType::kF32: {
      const auto* s = static_cast<const float*>(src);
      if (stride == 1)
        std::memcpy(out, s, size_t(n) * sizeof(float));
      else
        for (int64_t i = 0; i < n; ++i) out[i] = s[i * stride];
      return;
    }
    case KvType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(s[i * stride]);
      return;
    }
    case KvType::kInt8: {
      const auto* s = static_cast<const int8_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = float(s[i * stride]) * scales[i / head_dim];
      return;
    }
    case KvType::kFp8E4M3: {
      const auto* s = static_cast<const uint8_t*>(src);
      const float* lut = fp8_values();
      for (int64_t i = 0; i < n; ++i) out[i] = lut[s[i * stride]] * scales[i / head_dim];
      return;
    }
  }
}

}  // namespace herd
