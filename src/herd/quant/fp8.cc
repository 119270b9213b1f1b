#include "herd/quant/fp8.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "herd/base/dtype.h"

namespace herd {

namespace {
// The 127 finite non-negative magnitudes in code order (increasing), and the midpoints between
// neighbours: a value rounds to code c iff it lies between mid[c-1] and mid[c].
struct Fp8Table {
  std::array<float, 127> value;
  std::array<float, 126> mid;
  Fp8Table() {
    for (int c = 0; c < 127; ++c) value[size_t(c)] = fp8_e4m3_to_f32(uint8_t(c));
    for (int c = 0; c < 126; ++c) mid[size_t(c)] = 0.5f * (value[size_t(c)] + value[size_t(c + 1)]);
  }
};
const Fp8Table& table() {
  static const Fp8Table t;
  return t;
}
}  // namespace

uint8_t fp8_e4m3_encode(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fmin(std::fabs(f), kFp8E4M3Max);
  const Fp8Table& t = table();
  // First midpoint >= a: codes below it are closer than the ones above.
  const size_t c = size_t(std::lower_bound(t.mid.begin(), t.mid.end(), a) - t.mid.begin());
  // Exactly on a midpoint (the midpoints are exact in f32): ties go to the even code.
  if (c < t.mid.size() && t.mid[c] == a && (c & 1)) return uint8_t(sign | (c + 1));
  return uint8_t(sign | c);
}

void quantize_row_fp8(const float* x, int64_t n, float scale, uint8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = scale > 0 ? fp8_e4m3_encode(x[i] / scale) : 0;
}

}  // namespace herd
