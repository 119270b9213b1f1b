// Helpers shared by the ops tests: a portable seeded generator (the std distributions differ
// between standard libraries, DESIGN.md "randomly seeded tests") and weights stored in a dtype.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "herd/base/dtype.h"
#include "herd/ops/weight.h"

namespace herd::test {

// splitmix64 stream mapped to floats in [-1, 1).
class Rng {
 public:
  explicit Rng(uint64_t seed) : x_(seed) {}
  uint64_t next() {
    uint64_t z = (x_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(double(next() >> 40) * 0x1.0p-23 - 1.0); }
  std::vector<float> vec(size_t n, float scale = 1.0f) {
    std::vector<float> v(n);
    for (float& f : v) f = uniform() * scale;
    return v;
  }

 private:
  uint64_t x_;
};

// A [rows, cols] matrix stored in `dtype`; `exact` holds the stored values converted to f32,
// which is what kernels must multiply with.
struct StoredMatrix {
  DType dtype;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;
  std::vector<float> exact;
  std::vector<float> scales;  // F8_E4M3 only: one per row

  StoredMatrix(DType t, int64_t r, int64_t c, const std::vector<float>& values)
      : dtype(t), rows(r), cols(c), bytes(size_t(r * c) * dtype_size(t)), exact(size_t(r * c)) {
    if (t == DType::F8_E4M3) scales.resize(size_t(r));
    for (int64_t i = 0; i < r; ++i) {
      float s = 1.0f;
      if (t == DType::F8_E4M3) {  // per-row scale = rowmax / 448 (spec §2.3 fp8 recipe)
        float mx = 0;
        for (int64_t j = 0; j < c; ++j) mx = std::fmax(mx, std::fabs(values[size_t(i * c + j)]));
        s = scales[size_t(i)] = mx > 0 ? mx / 448.0f : 1.0f;
      }
      for (int64_t j = 0; j < c; ++j) {
        const size_t k = size_t(i * c + j);
        const float v = values[k];
        switch (t) {
          case DType::F32:
            std::memcpy(&bytes[k * 4], &v, 4);
            exact[k] = v;
            break;
          case DType::BF16: {
            const uint16_t h = f32_to_bf16(v);
            std::memcpy(&bytes[k * 2], &h, 2);
            exact[k] = bf16_to_f32(h);
            break;
          }
          case DType::F16: {
            const uint16_t h = f32_to_f16(v);
            std::memcpy(&bytes[k * 2], &h, 2);
            exact[k] = f16_to_f32(h);
            break;
          }
          default: {  // F8_E4M3
            const uint8_t q = f32_to_fp8_e4m3(v / s);
            bytes[k] = q;
            exact[k] = fp8_e4m3_to_f32(q) * s;
          }
        }
      }
    }
  }
  WeightRef ref() const {
    WeightRef w;
    w.dtype = dtype;
    w.data = bytes.data();
    w.rows = rows;
    w.cols = cols;
    w.row_scale = scales.empty() ? nullptr : scales.data();
    return w;
  }
  float at(int64_t r, int64_t c) const { return exact[size_t(r * cols + c)]; }
};

}  // namespace herd::test
