// gemm against scalar references on awkward shapes, for every weight format and every dispatch
// target this CPU has (forced one at a time), plus bitwise batch invariance (gemm.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "herd/ops/cpu_features.h"
#include "herd/ops/gemm.h"
#include "herd/quant/formats.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

using test::Rng;
using test::StoredMatrix;

constexpr double kEps = std::numeric_limits<float>::epsilon();
constexpr int64_t kTokens[] = {1, 2, 3, 4, 29, 30, 31, 32, 33, 34, 35};
constexpr int64_t kK[] = {100, 258, 1000};  // not multiples of 16, 32 or 128
constexpr int64_t kOut[] = {1, 15, 17, 33, 258};

// A weight matrix in one stored format and the exact f32 values it represents.
struct TestWeight {
  DType dt;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;
  std::vector<float> scale;  // F8: per row; Q8G / Q4G (and their interleaved forms): [rows, groups]
  std::vector<float> exact;  // [rows, cols]

  TestWeight(DType t, int64_t r, int64_t c, Rng& rng)
      : TestWeight(t, r, c, rng.vec(size_t(r * c))) {}
  TestWeight(DType t, int64_t r, int64_t c, const std::vector<float>& v) : dt(t), rows(r), cols(c) {
    if (is_interleaved(t)) {  // the Q8G / Q4G matrix of the same values, 16 rows interleaved
      const TestWeight rm(code_format(t), r, c, v);
      scale = rm.scale, exact = rm.exact;
      bytes.resize(size_t(il_rows(r) * packed_row_bytes(t, c)));
      interleave_rows(rm.bytes.data(), rm.scale.data(), r, c, 0, r, t, bytes.data());
    } else if (is_packed(t)) {
      const int64_t rb = packed_row_bytes(t, c), G = quant_groups(c);
      bytes.resize(size_t(r * rb));
      scale.resize(size_t(r * G));
      exact.resize(size_t(r * c));
      for (int64_t i = 0; i < r; ++i) {
        auto quant = t == DType::Q8G ? quantize_row_q8g : quantize_row_q4g;
        auto deq = t == DType::Q8G ? dequantize_row_q8g : dequantize_row_q4g;
        quant(&v[size_t(i * c)], c, &bytes[size_t(i * rb)], &scale[size_t(i * G)]);
        deq(&bytes[size_t(i * rb)], &scale[size_t(i * G)], c, &exact[size_t(i * c)]);
      }
    } else if (t == DType::BF16T) {  // rows must be a multiple of 16
      const StoredMatrix m(DType::BF16, r, c, v);
      exact = m.exact;
      bytes.resize(size_t(r * packed_row_bytes(t, c)));
      tile_rows_bf16(reinterpret_cast<const uint16_t*>(m.bytes.data()), r, c, 0,
                     reinterpret_cast<uint16_t*>(bytes.data()));
    } else {
      const StoredMatrix m(t, r, c, v);
      bytes = m.bytes, scale = m.scales, exact = m.exact;
    }
  }
  WeightRef ref() const {
    WeightRef w;
    w.dtype = dt, w.data = bytes.data(), w.rows = rows, w.cols = cols;
    if (dt == DType::F8_E4M3) w.row_scale = scale.data();
    if (is_packed(dt)) w.group_scale = scale.data();
    return w;
  }
};

std::string missing_features(Isa isa) {
  const CpuFeatures& f = cpu_features();
  std::string m;
  auto need = [&](bool have, const char* name) {
    if (!have) m += std::string(m.empty() ? "" : ", ") + name;
  };
  if (isa >= Isa::kAvx2) need(f.avx2 && f.fma && f.f16c, "avx2/fma/f16c");
  if (isa >= Isa::kAvx512)
    need(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq, "avx512f/bw/vl/dq");
  if (isa >= Isa::kAvx512Vnni) need(f.avx512vnni, "avx512_vnni");
  if (isa >= Isa::kAmx) {
    need(f.amx_bf16 && f.amx_int8, "amx_bf16/amx_int8");
    need(f.amx_usable, "AMX tile state from the OS (XCR0 / ARCH_REQ_XCOMP_PERM)");
    need(f.avx512bf16, "avx512_bf16");
  }
  return m;
}

class GemmTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (GetParam() > detected_isa())
      GTEST_SKIP() << isa_name(GetParam()) << ": CPU lacks " << missing_features(GetParam());
    force_isa(GetParam());
    ASSERT_EQ(active_isa(), GetParam());
  }
  void TearDown() override { force_isa(Isa::kAmx); }  // back to the detected target

  // y = gemm(x) with strided x / y; checks the padding of y stays untouched.
  std::vector<float> run(ThreadPool& pool, const TestWeight& w, const std::vector<float>& x,
                         int64_t n, int64_t xs) {
    const int64_t ys = w.rows + 2;
    std::vector<float> y(size_t(n * ys), 7.0f);
    PreparedActs a;
    prepare_acts(x.data(), n, xs, w.cols, w.dt, a);
    gemm(pool, a, w.ref(), y.data(), ys);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = w.rows; o < ys; ++o) EXPECT_EQ(y[size_t(t * ys + o)], 7.0f);
    std::vector<float> out(size_t(n * w.rows));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < w.rows; ++o) out[size_t(t * w.rows + o)] = y[size_t(t * ys + o)];
    return out;
  }
};

// Float formats: the kernel multiplies bf16-rounded activations (f32 for F32 weights) with the
// stored weights exactly and accumulates in f32 over ≤ 32 lanes, then a 4-5 level tree. The
// rounding error is bounded by (K/lanes + 5)·eps·Σ|a_i b_i| ≤ that times ‖a‖‖b‖ (Cauchy-Schwarz);
// with random signs it behaves like √K·eps, so 20·‖a‖‖b‖·eps covers K ≤ 1000 with margin
// (DESIGN.md tolerance rule). The reference sums in double.
TEST_P(GemmTest, FloatFormatsMatchReference) {
  ThreadPool pool(2);
  Rng rng(11);
  for (DType dt : {DType::F32, DType::BF16, DType::F8_E4M3, DType::BF16T})
    for (int64_t K : kK)
      for (int64_t M : kOut) {
        if (dt == DType::BF16T) M = M <= 17 ? 16 * M : 256;  // whole 16-row tiles
        const TestWeight w(dt, M, K, rng);
        for (int64_t n : kTokens) {
          if (M == 258 && n > 4 && n != 35) continue;  // keep the largest shapes few
          const int64_t xs = K + 3;
          const std::vector<float> x = rng.vec(size_t(n * xs));
          const std::vector<float> y = run(pool, w, x, n, xs);
          for (int64_t t = 0; t < n; ++t)
            for (int64_t o = 0; o < M; ++o) {
              double ref = 0, na = 0, nb = 0;
              for (int64_t i = 0; i < K; ++i) {
                float xv = x[size_t(t * xs + i)];
                if (dt != DType::F32) xv = round_bf16(xv);
                const double wv = w.exact[size_t(o * K + i)];
                ref += xv * wv, na += double(xv) * xv, nb += wv * wv;
              }
              ASSERT_NEAR(y[size_t(t * M + o)], ref, 20 * std::sqrt(na * nb) * kEps + 1e-30)
                  << dtype_name(dt) << " K=" << K << " M=" << M << " n=" << n << " t=" << t
                  << " o=" << o;
            }
        }
      }
}

// Q8G / Q4G: group dots are exact integers, so the reference is the same math in double: the
// only error is the f32 FMA per group (≤ eps of the running sum each), bounded by
// 2·G·eps·Σ_g |dot_g·s_w·s_x|. Every ISA must also equal the scalar path bit for bit (gemm.h).
TEST_P(GemmTest, QuantFormatsMatchExactGroupMath) {
  ThreadPool pool(2);
  Rng rng(12);
  for (DType dt : {DType::Q8G, DType::Q4G, DType::Q8GI, DType::Q4GI})
    for (int64_t K : kK)
      for (int64_t M : kOut) {
        const TestWeight w(dt, M, K, rng);
        for (int64_t n : kTokens) {
          if (M == 258 && n > 4 && n != 35) continue;
          const int64_t xs = K + 1;
          const std::vector<float> x = rng.vec(size_t(n * xs), 3.0f);
          const std::vector<float> y = run(pool, w, x, n, xs);
          force_isa(Isa::kScalar);
          const std::vector<float> y_scalar = run(pool, w, x, n, xs);
          force_isa(GetParam());
          PreparedActs a;
          prepare_acts(x.data(), n, xs, K, dt, a);
          const int64_t G = a.groups();
          for (int64_t t = 0; t < n; ++t)
            for (int64_t o = 0; o < M; ++o) {
              double ref = 0, mag = 0;
              for (int64_t g = 0; g < G; ++g) {
                int64_t dot = 0;
                for (int64_t i = g * 128; i < std::min(K, (g + 1) * 128); ++i) {
                  const double q =
                      std::nearbyint(w.exact[size_t(o * K + i)] / w.scale[size_t(o * G + g)]);
                  dot += int64_t(q) * a.q.data()[t * a.kpad + i];
                }
                const double term =
                    double(dot) *
                    double(float(w.scale[size_t(o * G + g)] * a.q_scale.data()[g * n + t]));
                ref += term, mag += std::fabs(term);
              }
              const size_t idx = size_t(t * M + o);
              ASSERT_NEAR(y[idx], ref, 2 * double(G) * mag * kEps + 1e-30)
                  << dtype_name(dt) << " K=" << K << " M=" << M << " n=" << n;
              ASSERT_EQ(y[idx], y_scalar[idx]) << "differs from scalar: " << dtype_name(dt)
                                               << " K=" << K << " M=" << M << " n=" << n;
            }
        }
      }
}

// Against the f32 product with the dequantized weights, the error is the activation rounding:
// |x_i − q_i·s_x| ≤ s_x/2 for each element, so |Δy| ≤ Σ_g (s_x,g / 2)·Σ_{i∈g} |w_i| (+ f32 noise).
TEST_P(GemmTest, QuantErrorBoundedByActivationQuantization) {
  ThreadPool pool(2);
  Rng rng(13);
  for (DType dt : {DType::Q8G, DType::Q4G}) {
    const int64_t K = 1000, M = 33, n = 3;
    const TestWeight w(dt, M, K, rng);
    const std::vector<float> x = rng.vec(size_t(n * K));
    const std::vector<float> y = run(pool, w, x, n, K);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < M; ++o) {
        double ref = 0, bound = 0;
        for (int64_t g = 0; g * 128 < K; ++g) {
          double amax = 0, wsum = 0;
          for (int64_t i = g * 128; i < std::min(K, (g + 1) * 128); ++i) {
            amax = std::max(amax, std::fabs(double(x[size_t(t * K + i)])));
            wsum += std::fabs(w.exact[size_t(o * K + i)]);
            ref += double(x[size_t(t * K + i)]) * w.exact[size_t(o * K + i)];
          }
          bound += amax / 127 / 2 * wsum * (1 + 1e-5);
        }
        EXPECT_NEAR(y[size_t(t * M + o)], ref, bound + 1e-5) << dtype_name(dt);
      }
  }
}

// A token's outputs are bitwise the same alone (decode) as inside a batch of 35, at any
// position, with 1 or 2 threads, and in batches of 2-5.
TEST_P(GemmTest, BatchInvariantBitwise) {
  ThreadPool one(1), two(2);
  Rng rng(14);
  for (DType dt : {DType::F32, DType::BF16, DType::F8_E4M3, DType::Q8G, DType::Q4G, DType::BF16T,
                   DType::Q8GI, DType::Q4GI}) {
    const int64_t K = 1000, M = dt == DType::BF16T ? 256 : 258, n = 35;
    const TestWeight w(dt, M, K, rng);
    const std::vector<float> x = rng.vec(size_t(n * K));
    const std::vector<float> y2 = run(two, w, x, n, K);
    EXPECT_EQ(run(one, w, x, n, K), y2) << dtype_name(dt) << " 1 vs 2 threads";
    for (int64_t t = 0; t < n; ++t) {
      const std::vector<float> xt(x.begin() + t * K, x.begin() + (t + 1) * K);
      for (ThreadPool* p : {&one, &two}) {
        const std::vector<float> yt = run(*p, w, xt, 1, K);
        for (int64_t o = 0; o < M; ++o)
          ASSERT_EQ(yt[size_t(o)], y2[size_t(t * M + o)])
              << dtype_name(dt) << " token " << t << " row " << o << " threads " << p->size();
      }
    }
    // Inside another batch, at another position (3 tokens before it).
    const std::vector<float> x5(x.begin() + 27 * K, x.begin() + 32 * K);
    const std::vector<float> y5 = run(two, w, x5, 5, K);
    for (int64_t o = 0; o < 5 * M; ++o) ASSERT_EQ(y5[size_t(o)], y2[size_t(27 * M + o)]);
    // 2-4 tokens (continuous-batching decode: AMX machines take the vector BF16 path here).
    for (int64_t m : {2, 3, 4}) {
      const std::vector<float> xm(x.begin() + 9 * K, x.begin() + (9 + m) * K);
      const std::vector<float> ym = run(two, w, xm, m, K);
      for (int64_t o = 0; o < m * M; ++o)
        ASSERT_EQ(ym[size_t(o)], y2[size_t(9 * M + o)]) << dtype_name(dt) << " batch of " << m;
    }
  }
}

// prepare_acts with a pool converts a large batch's rows in parallel: the products are bitwise
// those of the serially prepared rows, for every activation format (and AMX's packing after it).
TEST_P(GemmTest, PoolPreparedActsBitwiseSerial) {
  ThreadPool two(2);
  Rng rng(15);
  for (DType dt : {DType::F32, DType::BF16, DType::F8_E4M3, DType::Q8G, DType::Q4G, DType::BF16T,
                   DType::Q8GI, DType::Q4GI}) {
    const int64_t K = 258, M = dt == DType::BF16T ? 32 : 33;
    const TestWeight w(dt, M, K, rng);
    for (int64_t n : {31, 32, 77}) {  // below and above the parallel threshold, a ragged tail
      const std::vector<float> x = rng.vec(size_t(n * (K + 3)));
      PreparedActs serial, pooled;
      prepare_acts(x.data(), n, K + 3, K, dt, serial);
      prepare_acts(x.data(), n, K + 3, K, dt, pooled, &two);
      std::vector<float> ys(size_t(n * M)), yp(size_t(n * M));
      gemm(two, serial, w.ref(), ys.data(), M);
      gemm(two, pooled, w.ref(), yp.data(), M);
      ASSERT_EQ(ys, yp) << dtype_name(dt) << " n=" << n;
    }
  }
}

// Int8 activation codes, scales and sums over rows of many groups (the AVX-512 quantizer works
// in passes of 16 groups; the shapes above have at most 8): bitwise the scalar rule, with a
// ragged last group and groups of zeros.
TEST_P(GemmTest, ActivationCodesMatchScalarOverManyGroups) {
  Rng rng(16);
  for (int64_t K : {2100, 4096, 4200}) {
    const int64_t n = 3;
    std::vector<float> x = rng.vec(size_t(n * K));
    std::fill_n(x.begin() + 128 * 17, 128, 0.0f);  // row 0, group 17: all zero
    PreparedActs a, s;
    prepare_acts(x.data(), n, K, K, DType::Q8G, a);
    force_isa(Isa::kScalar);
    prepare_acts(x.data(), n, K, K, DType::Q8G, s);
    force_isa(GetParam());
    ASSERT_EQ(a.kpad, s.kpad);
    const size_t codes = size_t(n * a.kpad), groups = size_t(n * a.groups());
    EXPECT_EQ(std::memcmp(a.q.data(), s.q.data(), codes), 0) << "K=" << K;
    EXPECT_EQ(std::memcmp(a.q_scale.data(), s.q_scale.data(), groups * 4), 0) << "K=" << K;
    EXPECT_EQ(std::memcmp(a.q_sum.data(), s.q_sum.data(), groups * 4), 0) << "K=" << K;
  }
}

// Every E4M3 code (but the two NaNs) through each path's fp8 conversion: row r holds code r in
// column 0, x = e_0, so y[r] must be exactly fp8(r) · row_scale[r].
// On AMX the plain BF16 layout (tiles of 16 weight rows as A) and BF16T (tiles as B, and the
// vector decode kernels of both) compute every output with the same tile-unit arithmetic: equal
// bit for bit, for decode-sized and prefill-sized batches, with K and token tails.
TEST_P(GemmTest, Bf16LayoutsAgreeBitwise) {
  if (GetParam() != Isa::kAmx && GetParam() != Isa::kScalar)  // BF16T is the portable kernel there
    GTEST_SKIP() << "BF16T runs the portable kernel below AMX";
  ThreadPool pool(2);
  Rng rng(15);
  for (int64_t K : {64, 1000}) {
    const int64_t M = 48;
    Rng same = rng;
    const TestWeight plain(DType::BF16, M, K, rng), tiled(DType::BF16T, M, K, same);
    ASSERT_EQ(plain.exact, tiled.exact);
    for (int64_t n : {1, 2, 4, 5, 17, 35}) {
      const std::vector<float> x = rng.vec(size_t(n * K));
      EXPECT_EQ(run(pool, plain, x, n, K), run(pool, tiled, x, n, K)) << "K=" << K << " n=" << n;
    }
  }
}

// Q8GI / Q4GI hold the Q8G / Q4G codes and scales 16 rows interleaved: every path gives the same
// bits as the row-major layout (q_group_fma), for row tails (1..15 rows past a block), K tails
// and every token count a decode step or a prefill tile meets (1..13 covers the 6-token prefill
// tiles with each tail, 35 several tiles).
TEST_P(GemmTest, InterleavedEqualsRowMajorBitwise) {
  ThreadPool pool(2);
  Rng rng(16);
  for (DType dt : {DType::Q8G, DType::Q4G})
    for (int64_t K : {100, 640, 1000})
      for (int64_t M : {1, 15, 16, 17, 40, 64, 258}) {
        const std::vector<float> v = rng.vec(size_t(M * K));
        const TestWeight rm(dt, M, K, v), il(interleaved_format(dt), M, K, v);
        ASSERT_EQ(rm.exact, il.exact);
        for (int64_t r = 0; r < M; r += 7) {  // the format's accessors and their inverse
          std::vector<uint8_t> codes(size_t(packed_row_bytes(dt, K)));
          std::vector<float> sc(size_t(quant_groups(K)));
          deinterleave_row(il.bytes.data(), il.dt, K, r, codes.data(), sc.data());
          ASSERT_TRUE(std::equal(codes.begin(), codes.end(),
                                 rm.bytes.begin() + r * packed_row_bytes(dt, K)));
          ASSERT_TRUE(std::equal(sc.begin(), sc.end(), rm.scale.begin() + r * quant_groups(K)));
        }
        for (int64_t n : {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 35}) {
          if (M == 258 && n > 4 && n != 35) continue;
          const std::vector<float> x = rng.vec(size_t(n * K), 2.0f);
          EXPECT_EQ(run(pool, rm, x, n, K), run(pool, il, x, n, K))
              << dtype_name(dt) << " K=" << K << " M=" << M << " n=" << n;
        }
      }
}

TEST_P(GemmTest, Fp8EveryCodeExact) {
  ThreadPool pool(1);
  const int64_t K = 40;
  std::vector<uint8_t> w(size_t(256 * K), 0);
  std::vector<float> scale(256, 0.5f), x(size_t(K), 0.0f), y(256);
  for (int r = 0; r < 256; ++r) w[size_t(r * K)] = uint8_t(r == 0x7f || r == 0xff ? 0 : r);
  x[0] = 1.0f;
  WeightRef wr;
  wr.dtype = DType::F8_E4M3, wr.data = w.data(), wr.rows = 256, wr.cols = K;
  wr.row_scale = scale.data();
  PreparedActs a;
  prepare_acts(x.data(), 1, K, K, DType::F8_E4M3, a);
  gemm(pool, a, wr, y.data(), 256);
  for (int r = 0; r < 256; ++r)
    EXPECT_EQ(y[size_t(r)], fp8_e4m3_to_f32(w[size_t(r * K)]) * 0.5f) << "code " << r;
}

INSTANTIATE_TEST_SUITE_P(AllIsas, GemmTest,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni,
                                           Isa::kAmx),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace herd
