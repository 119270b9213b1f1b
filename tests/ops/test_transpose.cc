// The load-time bf16 transposes against the definition, on every dispatch target the machine has:
// every bit of every element (random 16-bit patterns, NaNs and denormals included), at shapes
// with and without 8-row and 8-column edges, with strides wider than the rows.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "herd/ops/gemm.h"
#include "herd/ops/transpose.h"

namespace herd {
namespace {

TEST(Transpose, EveryBitOnEveryTarget) {
  uint64_t seed = 7;
  auto next = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return uint16_t(seed >> 48);
  };
  for (Isa isa : {Isa::kScalar, Isa::kAvx2}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int64_t rows : {1, 7, 8, 9, 16, 17, 40, 1024})
      for (int64_t cols : {1, 7, 8, 9, 24, 32, 33}) {
        const int64_t ss = cols + 5, ds = rows + 3;
        std::vector<uint16_t> src(size_t(rows * ss));
        for (auto& v : src) v = next();
        std::vector<uint16_t> d16(size_t(cols * ds), 0xDEAD);
        std::vector<float> d32(size_t(cols * ds), -1.0f);
        transpose_bf16(src.data(), ss, rows, cols, d16.data(), ds);
        transpose_bf16_f32(src.data(), ss, rows, cols, d32.data(), ds);
        for (int64_t j = 0; j < cols; ++j)
          for (int64_t i = 0; i < ds; ++i) {
            const size_t at = size_t(j * ds + i);
            uint32_t bits;
            std::memcpy(&bits, &d32[at], 4);
            if (i >= rows) {  // past the rows: untouched
              ASSERT_EQ(d16[at], 0xDEAD);
              ASSERT_EQ(d32[at], -1.0f);
              continue;
            }
            const uint16_t want = src[size_t(i * ss + j)];
            ASSERT_EQ(d16[at], want)
                << isa_name(isa) << " " << rows << "x" << cols << " i=" << i << " j=" << j;
            ASSERT_EQ(bits, uint32_t(want) << 16)
                << isa_name(isa) << " " << rows << "x" << cols << " i=" << i << " j=" << j;
          }
      }
  }
  force_isa(detected_isa());
}

}  // namespace
}  // namespace herd
