// GGUF block formats and F16 (quant/gguf_blocks.h, ops/gemm_gguf*.cc) on random blocks:
//  - the scalar reference dot product equals Σ dequantized w · dequantized x (in double);
//  - gemm through the public API, for every dispatch target this CPU has, equals the reference
//    within f32 rounding, and is bitwise batch invariant;
//  - gemm against the f32 matmul of the dequantized weights within the activation quantization's
//    own bound (half a step per element).
// The reference against llama.cpp's own code is tests/integration/gguf_ggml_conformance.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "herd/ops/gemm.h"
#include "herd/ops/matmul.h"
#include "herd/quant/gguf_blocks.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

using test::Rng;

constexpr DType kTypes[] = {
    DType::F16,       DType::GGUF_Q8_0, DType::GGUF_Q4_0,   DType::GGUF_Q4_1,  DType::GGUF_Q5_0,
    DType::GGUF_Q5_1, DType::GGUF_Q2_K, DType::GGUF_Q3_K,   DType::GGUF_Q4_K,  DType::GGUF_Q5_K,
    DType::GGUF_Q6_K, DType::GGUF_Q8_K, DType::GGUF_IQ4_NL, DType::GGUF_IQ4_XS};

// Random bytes for every code and packed scale; the f16 / f32 block scales are set to finite
// values of both signs (random bits there would include NaN and infinities).
std::vector<uint8_t> random_rows(DType t, int64_t rows, int64_t cols, Rng& rng) {
  const int64_t rb = gguf_row_bytes(t, cols), nb = cols / gguf_block_elems(t);
  std::vector<uint8_t> v(size_t(rows * rb));
  for (auto& b : v) b = uint8_t(rng.next());
  auto f16 = [&](uint8_t* p, float scale) {
    const uint16_t h = f32_to_f16(rng.uniform() * scale);
    std::memcpy(p, &h, 2);
  };
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = v.data() + r * rb;
    if (t == DType::F16) {
      for (int64_t c = 0; c < cols; ++c) f16(row + 2 * c, 1.0f);
      continue;
    }
    for (int64_t i = 0; i < nb; ++i) {
      uint8_t* b = row + i * gguf_block_bytes(t);
      switch (t) {
        case DType::GGUF_Q8_0:
        case DType::GGUF_Q4_0:
        case DType::GGUF_Q5_0:
        case DType::GGUF_IQ4_NL:
        case DType::GGUF_IQ4_XS:
          f16(b, 0.05f);
          break;
        case DType::GGUF_Q4_1:
        case DType::GGUF_Q5_1:
        case DType::GGUF_Q4_K:
        case DType::GGUF_Q5_K:
          f16(b, 0.05f), f16(b + 2, 0.05f);
          break;
        case DType::GGUF_Q6_K:
          f16(b + offsetof(GgufQ6_K, d), 0.01f);
          break;
        case DType::GGUF_Q2_K:
          f16(b + offsetof(GgufQ2_K, d), 0.05f), f16(b + offsetof(GgufQ2_K, dmin), 0.05f);
          break;
        case DType::GGUF_Q3_K:
          f16(b + offsetof(GgufQ3_K, d), 0.01f);
          break;
        case DType::GGUF_Q8_K: {
          const float d = rng.uniform() * 0.01f;
          std::memcpy(b, &d, 4);
          break;
        }
        default:
          break;
      }
    }
  }
  return v;
}

struct Acts {
  int64_t kpad, blk;
  std::vector<float> x;  // F16: f32 rows [n, kpad]
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int16_t> s;
  std::vector<float> sy;  // Q4_1 / Q5_1: Q8_1's s per block
};
Acts quantize(DType t, const std::vector<float>& x, int64_t n, int64_t k) {
  Acts a;
  a.blk = gguf_act_block(t);
  a.kpad = a.blk ? (k + 255) / 256 * 256 : k;
  a.x.assign(size_t(n * a.kpad), 0.0f);
  for (int64_t i = 0; i < n; ++i) std::copy_n(&x[size_t(i * k)], k, &a.x[size_t(i * a.kpad)]);
  if (!a.blk) return a;
  a.q.resize(size_t(n * a.kpad));
  a.d.resize(size_t(n * a.kpad / a.blk));
  a.s.resize(size_t(n * a.kpad / 16));
  if (gguf_act_has_s(t)) a.sy.resize(a.d.size());
  for (int64_t i = 0; i < n; ++i)
    quantize_gguf_act_row(&x[size_t(i * k)], k, a.kpad, a.blk, &a.q[size_t(i * a.kpad)],
                          &a.d[size_t(i * a.kpad / a.blk)], &a.s[size_t(i * a.kpad / 16)],
                          a.sy.empty() ? nullptr : &a.sy[size_t(i * a.kpad / a.blk)]);
  return a;
}
// Q4_1 / Q5_1: the min term of block b takes Q8_1's s (f16 of d·Σq before d's own f16 rounding)
// where the dequantized values would give d·Σq: the f16 m of each block and that difference.
float block_min(DType t, const uint8_t* row, int64_t b) {
  uint16_t h;
  std::memcpy(&h, row + b * gguf_block_bytes(t) + 2, 2);
  return f16_to_f32(h);
}
double s_minus_dq(const Acts& a, int64_t i, int64_t b) {
  int sum = 0;
  for (int c = 0; c < 32; ++c) sum += a.q[size_t(i * a.kpad + 32 * b + c)];
  const size_t j = size_t(i * a.kpad / 32 + b);
  return double(a.sy[j]) - double(a.d[j]) * sum;
}
// Token i's activations as the dot product sees them (f32, or d·q).
std::vector<float> act_values(const Acts& a, int64_t i, int64_t k) {
  std::vector<float> v(static_cast<size_t>(k));
  for (int64_t c = 0; c < k; ++c)
    v[size_t(c)] = a.blk ? a.d[size_t((i * a.kpad + c) / a.blk)] * a.q[size_t(i * a.kpad + c)]
                         : a.x[size_t(i * a.kpad + c)];
  return v;
}
float ref_dot(DType t, const uint8_t* row, int64_t k, const Acts& a, int64_t i) {
  const bool b = a.blk != 0;
  return gguf_dot_row(t, row, k, &a.x[size_t(i * a.kpad)], b ? &a.q[size_t(i * a.kpad)] : nullptr,
                      b ? &a.d[size_t(i * a.kpad / a.blk)] : nullptr,
                      b ? &a.s[size_t(i * a.kpad / 16)] : nullptr,
                      a.sy.empty() ? nullptr : &a.sy[size_t(i * a.kpad / a.blk)]);
}

std::vector<int64_t> widths(DType t) {
  if (t == DType::F16) return {100, 1000};
  // 3 blocks: an odd last block; 19: a full group of 16 (the decode tile's permuted scales and
  // 512-bit block totals) then a partial one; 10: 8 then 2 (AVX2's second half partial); 33: two
  // full groups of 16, then one block; 20 (640 wide, whole quads of 4 blocks): Q4_0 / Q4_1 /
  // IQ4_NL's quad tile over x permuted, a full group then a partial one of one quad.
  if (gguf_block_elems(t) == 32) return {96, 320, 608, 640, 1056};
  // 11 superblocks: the decode tile's group of 8, then a partial one (rows of more than one
  // group are read row by row).
  return {256, 768, 2816};
}

TEST(GgufBlocks, SizesAreGgmls) {
  EXPECT_EQ(gguf_row_bytes(DType::GGUF_Q8_0, 64), 68);
  EXPECT_EQ(gguf_row_bytes(DType::GGUF_Q4_K, 512), 288);
  EXPECT_EQ(gguf_row_bytes(DType::GGUF_Q6_K, 256), 210);
  EXPECT_EQ(gguf_row_bytes(DType::F16, 10), 20);
}

// The reference dot product is the dot product of what dequantize gives with the activations'
// values: the per-block integer algebra (offsets, mins, bsums) is right.
TEST(GgufBlocks, ReferenceDotMatchesDequantized) {
  Rng rng(15);
  for (DType t : kTypes)
    for (int64_t k : widths(t)) {
      const auto w = random_rows(t, 3, k, rng);
      const auto x = rng.vec(size_t(2 * k));
      const Acts a = quantize(t, x, 2, k);
      std::vector<float> wf(static_cast<size_t>(k));
      for (int64_t r = 0; r < 3; ++r) {
        const uint8_t* row = w.data() + r * gguf_row_bytes(t, k);
        gguf_dequantize_row(t, row, k, wf.data());
        for (int64_t i = 0; i < 2; ++i) {
          const auto xv = act_values(a, i, k);
          double want = 0, mag = 0;
          for (int64_t c = 0; c < k; ++c) {
            want += double(wf[size_t(c)]) * xv[size_t(c)];
            mag += std::fabs(double(wf[size_t(c)]) * xv[size_t(c)]);
          }
          if (gguf_act_has_s(t))  // the min term takes s, not d·Σq
            for (int64_t b = 0; b < k / 32; ++b) want += block_min(t, row, b) * s_minus_dq(a, i, b);
          EXPECT_NEAR(ref_dot(t, row, k, a, i), want, 1e-5 * mag + 1e-30)
              << dtype_name(t) << " k=" << k << " r=" << r << " t=" << i;
        }
      }
    }
}

// prepare_acts (whatever ISA it picks) quantizes exactly as quantize_gguf_act_row.
TEST(GgufBlocks, PreparedActivationsAreTheReferenceQuantization) {
  Rng rng(3);
  for (DType t : {DType::GGUF_Q8_0, DType::GGUF_Q4_K}) {
    const int64_t k = t == DType::GGUF_Q8_0 ? 96 : 768, n = 3;
    auto x = rng.vec(size_t(n * k), 5.0f);
    x[7] = 0.0f, x[8] = -5.0f;  // a tie-free extreme and a zero
    // Q8_K's scale takes the sign of the first x of largest |x|: a tie of opposite signs.
    if (t == DType::GGUF_Q4_K) x[300] = 6.0f, x[302] = -6.0f;
    PreparedActs pa;
    prepare_acts(x.data(), n, k, k, t, pa);
    const int64_t blk = gguf_act_block(t);
    std::vector<int8_t> q(static_cast<size_t>(pa.kpad));
    std::vector<float> d(static_cast<size_t>(pa.kpad / blk));
    std::vector<int16_t> s(static_cast<size_t>(pa.kpad / 16));
    for (int64_t i = 0; i < n; ++i) {
      quantize_gguf_act_row(&x[size_t(i * k)], k, pa.kpad, blk, q.data(), d.data(), s.data());
      EXPECT_EQ(std::memcmp(q.data(), pa.q.data() + i * pa.kpad, q.size()), 0) << i;
      EXPECT_EQ(std::memcmp(d.data(), pa.blk_d.data() + i * (pa.kpad / blk), d.size() * 4), 0);
      EXPECT_EQ(std::memcmp(s.data(), pa.blk_sum.data() + i * (pa.kpad / 16), s.size() * 2), 0);
    }
  }
}

// With a pool, a large batch's rows are quantized in parallel into the same buffers: bitwise the
// serial preparation (every activation layout: 32- and 256-blocks, Q8_1's s, F16's f32).
TEST(GgufBlocks, PoolPreparedActivationsBitwiseSerial) {
  Rng rng(4);
  ThreadPool two(2);
  for (DType t : {DType::GGUF_Q8_0, DType::GGUF_Q4_1, DType::GGUF_Q4_K, DType::F16}) {
    const int64_t k = 512, n = 45;
    const auto x = rng.vec(size_t(n * k), 3.0f);
    PreparedActs a, b;
    prepare_acts(x.data(), n, k, k, t, a);
    prepare_acts(x.data(), n, k, k, t, b, &two);
    ASSERT_EQ(a.kpad, b.kpad);
    const size_t rows = size_t(n * a.kpad);
    if (t == DType::F16) {
      EXPECT_EQ(std::memcmp(a.f32.data(), b.f32.data(), rows * 4), 0);
      continue;
    }
    const size_t blocks = size_t(n * (a.kpad / gguf_act_block(t)));
    EXPECT_EQ(std::memcmp(a.q.data(), b.q.data(), rows), 0) << dtype_name(t);
    EXPECT_EQ(std::memcmp(a.blk_d.data(), b.blk_d.data(), blocks * 4), 0) << dtype_name(t);
    EXPECT_EQ(std::memcmp(a.blk_sum.data(), b.blk_sum.data(), rows / 16 * 2), 0) << dtype_name(t);
    if (gguf_act_has_s(t)) {
      EXPECT_EQ(std::memcmp(a.blk_s.data(), b.blk_s.data(), blocks * 4), 0) << dtype_name(t);
    }
  }
}

class GgufGemm : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (GetParam() > detected_isa()) GTEST_SKIP() << isa_name(GetParam()) << " not on this CPU";
    force_isa(GetParam());
  }
  void TearDown() override { force_isa(Isa::kAmx); }
};

// gemm (every row split, every token count the dispatch blocks differently, the repacked
// prefill paths: with AVX-512 from 8 or 12 tokens for the K-quants, 24 for the 32-blocks; with
// AVX2 from 12 or 16 for the K-quants; 40 rows × 100 tokens split into tasks of 32 tokens, the
// rest into tasks of 16) against the reference per (row, token). The block
// formats add exact block totals in the reference's order: bitwise equal. F16 keeps per-lane f32
// sums that differ from the reference's order only by rounding, ≤ 1e-5 of Σ|w·x| here.
TEST_P(GgufGemm, MatchesReferenceAndIsBatchInvariant) {
  Rng rng(7);
  ThreadPool pool(2);
  for (DType t : kTypes)
    for (int64_t k : widths(t))
      for (int64_t rows : {1, 17, 40})
        for (int64_t n : {1, 3, 9, 20, 40, 100}) {
          const auto wb = random_rows(t, rows, k, rng);
          const WeightRef w{t, wb.data(), rows, k};
          const auto x = rng.vec(size_t(n * k));
          PreparedActs pa;
          prepare_acts(x.data(), n, k, k, t, pa);
          std::vector<float> y(size_t(n * rows), NAN);
          gemm(pool, pa, w, y.data(), rows);
          const Acts a = quantize(t, x, n, k);
          std::vector<float> wf(static_cast<size_t>(k));
          for (int64_t r = 0; r < rows; ++r) {
            const uint8_t* row = wb.data() + r * gguf_row_bytes(t, k);
            gguf_dequantize_row(t, row, k, wf.data());
            for (int64_t i = 0; i < n; ++i) {
              const auto xv = act_values(a, i, k);
              double mag = 0;
              for (int64_t c = 0; c < k; ++c)
                mag += std::fabs(double(wf[size_t(c)]) * xv[size_t(c)]);
              // Block formats: exact block totals in the reference's order, bitwise.
              const bool exact = t != DType::F16;
              const double tol = exact ? 0.0 : 1e-5 * mag + 1e-30;
              ASSERT_NEAR(y[size_t(i * rows + r)], ref_dot(t, row, k, a, i), tol)
                  << dtype_name(t) << " " << isa_name(GetParam()) << " k=" << k << " rows=" << rows
                  << " n=" << n << " r=" << r << " t=" << i;
            }
          }
          // The last token alone gives bitwise its batch result.
          PreparedActs one;
          prepare_acts(x.data() + (n - 1) * k, 1, k, k, t, one);
          std::vector<float> y1(static_cast<size_t>(rows));
          gemm_serial(one, w, y1.data(), rows);
          for (int64_t r = 0; r < rows; ++r)
            ASSERT_EQ(y1[size_t(r)], y[size_t((n - 1) * rows + r)])
                << dtype_name(t) << " k=" << k << " r=" << r << " n=" << n;
        }
}

// Through the public ops API against the f32 matmul of the same weights (dequantize_row via
// WeightRef): the only difference is the activations' quantization, at most half a step
// (d / 2) per element, so |Δ| ≤ Σ|w_c|·d_c/2 (plus f32 rounding).
TEST_P(GgufGemm, MatchesF32MatmulWithinActivationRounding) {
  Rng rng(21);
  ThreadPool pool(2);
  for (DType t : kTypes) {
    const int64_t k = widths(t)[1], rows = 33, n = 5;
    const auto wb = random_rows(t, rows, k, rng);
    const WeightRef w{t, wb.data(), rows, k};
    const auto x = rng.vec(size_t(n * k));
    PreparedActs pa;
    prepare_acts(x.data(), n, k, k, t, pa);
    std::vector<float> y(size_t(n * rows)), yr(size_t(n * rows));
    gemm(pool, pa, w, y.data(), rows);
    matmul(pool, x.data(), n, k, w, yr.data(), rows);
    const Acts a = quantize(t, x, n, k);
    std::vector<float> wf(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(w, r, wf.data());
      for (int64_t i = 0; i < n; ++i) {
        double bound = 0, mag = 0;
        for (int64_t c = 0; c < k; ++c) {
          // Half a step per element (Q8_K's d is negative when its signed max is positive);
          // the 32-blocks' d is rounded to f16 as ggml does, which moves q·d by up to
          // 127·|d|·2^-11 more.
          const double step = a.blk ? std::fabs(a.d[size_t((i * a.kpad + c) / a.blk)]) : 0.0;
          const double per = step * (a.blk == 32 ? 0.5 + 127.0 / 2048 : 0.5);
          bound += std::fabs(wf[size_t(c)]) * per;
          mag += std::fabs(double(wf[size_t(c)]) * x[size_t(i * k + c)]);
          // Q4_1 / Q5_1: w = d·u + m, and the min term is m·s (Q8_1's s), so the code part
          // d·u (≤ |w| + |m|) and m times the block's Σ(x − d·q) and s − d·Σq add up.
          if (gguf_act_has_s(t)) {
            const uint8_t* row = wb.data() + r * gguf_row_bytes(t, k);
            const double m = std::fabs(block_min(t, row, c / 32));
            bound += 2 * m * per + (c % 32 == 0 ? m * std::fabs(s_minus_dq(a, i, c / 32)) : 0.0);
          }
        }
        EXPECT_NEAR(y[size_t(i * rows + r)], yr[size_t(i * rows + r)], bound + 2e-5 * mag)
            << dtype_name(t) << " " << isa_name(GetParam()) << " r=" << r << " t=" << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, GgufGemm,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni,
                                           Isa::kAmx),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace herd
