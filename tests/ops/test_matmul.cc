// matmul / matmul_in_major against a double-precision reference on awkward shapes, for every
// unpacked weight dtype, plus bitwise batch invariance (DESIGN.md "Kernels").
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "herd/ops/matmul.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

using test::Rng;
using test::StoredMatrix;

constexpr float kEps = std::numeric_limits<float>::epsilon();
constexpr DType kDTypes[] = {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3};
constexpr int64_t kRows[] = {1, 2, 3, 4, 29, 30, 31, 32, 33, 34, 35};
constexpr int64_t kDims[] = {1, 15, 17, 33, 258};  // K and M not multiples of 16 / 32

// Rounding error of an f32 dot product against the exact one, relative to ‖a‖·‖b‖ (which
// bounds Σ|a_i b_i| by Cauchy-Schwarz). dot_f32 has 16 lanes of K/16 sums plus a 4-level tree,
// ≈ 20 roundings on the longest path for K = 258 — the worst-case bound 20·‖a‖‖b‖·eps. The
// serial sum of matmul_in_major has K roundings worst case but they are random in sign, so
// their typical size is √K·eps ≈ 16·eps for K = 258; 20 covers both (DESIGN.md tolerance rule).
double tolerance(const float* a, int64_t a_step, const float* b, int64_t b_step, int64_t k) {
  double na = 0, nb = 0;
  for (int64_t i = 0; i < k; ++i) {
    na += double(a[i * a_step]) * a[i * a_step];
    nb += double(b[i * b_step]) * b[i * b_step];
  }
  return 20.0 * std::sqrt(na) * std::sqrt(nb) * kEps + 1e-30;
}

TEST(Matmul, MatchesDoubleReferenceOnAwkwardShapes) {
  ThreadPool pool(2);
  Rng rng(1);
  for (DType dt : kDTypes)
    for (int64_t K : kDims)
      for (int64_t M : {int64_t(1), int64_t(7), int64_t(33)})
        for (int64_t n : kRows) {
          const StoredMatrix w(dt, M, K, rng.vec(size_t(M * K)));
          const int64_t xs = K + 3, ys = M + 2;  // strides wider than the rows
          const std::vector<float> x = rng.vec(size_t(n * xs));
          std::vector<float> y(size_t(n * ys), 7.0f);
          matmul(pool, x.data(), n, xs, w.ref(), y.data(), ys);
          for (int64_t t = 0; t < n; ++t) {
            for (int64_t o = 0; o < M; ++o) {
              double ref = 0;
              for (int64_t i = 0; i < K; ++i) ref += double(x[size_t(t * xs + i)]) * w.at(o, i);
              const double tol = tolerance(&x[size_t(t * xs)], 1, &w.exact[size_t(o * K)], 1, K);
              ASSERT_NEAR(y[size_t(t * ys + o)], ref, tol)
                  << dtype_name(dt) << " K=" << K << " M=" << M << " n=" << n;
            }
            for (int64_t o = M; o < ys; ++o) ASSERT_EQ(y[size_t(t * ys + o)], 7.0f);  // padding
          }
        }
}

TEST(MatmulInMajor, MatchesDoubleReferenceOnColumnWindow) {
  ThreadPool pool(2);
  Rng rng(2);
  for (DType dt : kDTypes)
    for (int64_t K : kDims)
      for (int64_t n : kRows) {
        // A fused [K, 2I] tensor; the window is the "up" half [I, 2I) (spec §2.1), I awkward.
        const int64_t I = 37 + K % 7, total = 2 * I, col0 = I;
        const StoredMatrix w(dt, K, total, rng.vec(size_t(K * total)));
        const int64_t xs = K + 1, ys = I + 5;
        const std::vector<float> x = rng.vec(size_t(n * xs));
        std::vector<float> y(size_t(n * ys), 7.0f);
        matmul_in_major(pool, x.data(), n, xs, w.ref(), col0, I, y.data(), ys);
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t o = 0; o < I; ++o) {
            double ref = 0;
            for (int64_t i = 0; i < K; ++i)
              ref += double(x[size_t(t * xs + i)]) * w.at(i, col0 + o);
            const double tol =
                tolerance(&x[size_t(t * xs)], 1, &w.exact[size_t(col0 + o)], total, K);
            ASSERT_NEAR(y[size_t(t * ys + o)], ref, tol)
                << dtype_name(dt) << " K=" << K << " n=" << n << " o=" << o;
          }
          for (int64_t o = I; o < ys; ++o) ASSERT_EQ(y[size_t(t * ys + o)], 7.0f);
        }
      }
}

// A row's output must not depend on the other rows of the batch nor on the thread count
// (DESIGN.md "Batching first"): compare every row computed alone, bit for bit.
TEST(Matmul, BatchInvariantBitwise) {
  Rng rng(3);
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (DType dt : {DType::F32, DType::BF16}) {
    const int64_t K = 258, M = 300, n = 35;
    const StoredMatrix w(dt, M, K, rng.vec(size_t(M * K)));
    const std::vector<float> x = rng.vec(size_t(n * K));
    std::vector<float> all(size_t(n * M)), one(static_cast<size_t>(M));
    matmul(pool2, x.data(), n, K, w.ref(), all.data(), M);
    for (ThreadPool* p : {&pool1, &pool2, &pool3})
      for (int64_t t = 0; t < n; ++t) {
        matmul(*p, &x[size_t(t * K)], 1, K, w.ref(), one.data(), M);
        ASSERT_EQ(0, std::memcmp(one.data(), &all[size_t(t * M)], size_t(M) * 4)) << "row " << t;
      }
    // A sub-batch starting elsewhere also agrees.
    std::vector<float> some(size_t(4 * M));
    matmul(pool3, &x[size_t(29 * K)], 4, K, w.ref(), some.data(), M);
    EXPECT_EQ(0, std::memcmp(some.data(), &all[size_t(29 * M)], size_t(4 * M) * 4));
  }
}

TEST(MatmulInMajor, BatchInvariantBitwise) {
  Rng rng(4);
  ThreadPool pool1(1), pool2(2), pool3(3);
  const int64_t K = 258, I = 600, n = 33;
  const StoredMatrix w(DType::BF16, K, 2 * I, rng.vec(size_t(K * 2 * I)));
  const std::vector<float> x = rng.vec(size_t(n * K));
  std::vector<float> all(size_t(n * I)), one(static_cast<size_t>(I));
  matmul_in_major(pool2, x.data(), n, K, w.ref(), 0, I, all.data(), I);
  for (ThreadPool* p : {&pool1, &pool2, &pool3})
    for (int64_t t = 0; t < n; ++t) {
      matmul_in_major(*p, &x[size_t(t * K)], 1, K, w.ref(), 0, I, one.data(), I);
      ASSERT_EQ(0, std::memcmp(one.data(), &all[size_t(t * I)], size_t(I) * 4)) << "row " << t;
    }
}

// The expert slice of a stacked [E*H, 2I] tensor is the expert's own [H, 2I] matrix.
TEST(MatmulInMajor, ExpertRowSlice) {
  ThreadPool pool(2);
  Rng rng(5);
  const int64_t E = 3, H = 17, I = 5;
  const StoredMatrix w(DType::BF16, E * H, 2 * I, rng.vec(size_t(E * H * 2 * I)));
  const std::vector<float> x = rng.vec(size_t(H));
  std::vector<float> gate(static_cast<size_t>(I));
  matmul_in_major(pool, x.data(), 1, H, w.ref().row_slice(2 * H, H), 0, I, gate.data(), I);
  for (int64_t o = 0; o < I; ++o) {
    double ref = 0;
    for (int64_t i = 0; i < H; ++i) ref += double(x[size_t(i)]) * w.at(2 * H + i, o);
    EXPECT_NEAR(gate[size_t(o)], ref, 1e-5);
  }
}

TEST(DotF32, SmallExact) {
  const float a[] = {1, 2, 3, 4, 5}, b[] = {5, 4, 3, 2, 1};
  EXPECT_EQ(dot_f32(a, b, 5), 35.0f);
  EXPECT_EQ(dot_f32(a, b, 0), 0.0f);
}

}  // namespace
}  // namespace herd
