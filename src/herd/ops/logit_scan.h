// Vectorized passes over a row of logits for the sampler (runtime/sampler.cc): the row is Llama
// 4's 202,048 entries per token and sequence, so each pass runs at vector width on AVX-512 and
// AVX2 with the same results as the scalar code (tests/ops/test_logit_scan.cc). A row and a
// weight array of that size do not fit a core's L2 together, so the passes read the row and
// write nothing per entry where they can.
#pragma once

#include <cstdint>

namespace herd {

// Entries per block sum in exp_sums, and the lanes a block is summed in.
inline constexpr int64_t kExpBlock = 128;
inline constexpr int kExpLanes = 16;
inline constexpr int kExpMaxFloors = 4;

// What exp_sums computes besides the weights; every pointer is optional.
struct ExpSums {
  // Per block of kExpBlock entries, the sum of their weights in double: lane j (0..15) adds the
  // block's weights i ≡ j (mod 16) in index order starting from 0, then the block sum is
  // ((lane 0 + lane 1) + lane 2) + … + lane 15. The same bits on every target, and a caller that
  // rescans a block in that order reproduces its partial sums exactly (the sampler's inverse
  // CDF relies on it). ceil(n / kExpBlock) entries.
  double* block_sums = nullptr;
  // mass[j] = Σ weight over the entries whose argument (x − shift) · scale >= floors[j], for
  // j < n_floors <= kExpMaxFloors: summed in float in 16 lanes (lane l: i ≡ l mod 16, index
  // order), then the lanes in order. The same bits on every target, and within a relative
  // (n / 16 + 16) · 2^-24 of the exact sum.
  int n_floors = 0;
  const float* floors = nullptr;
  float* mass = nullptr;
};

// weight[i] = e^((x[i] − shift) · scale), computed as exp512 (exp_avx512.h) does on every target:
// AVX-512, AVX2 (exp256 gives the same bits) and scalar (a transcription with fmaf / ldexpf), so
// a seeded draw picks the same token on every machine. x − shift and the product are rounded to
// float first; -inf and NaN inputs weigh 0. The weights go to out when it is not null (it may
// alias x), and into sums.
void exp_sums(const float* x, int64_t n, float shift, float scale, float* out,
              const ExpSums& sums = {});

// Copies n logits to out with NaN replaced by -inf and returns their maximum (-inf when none is
// above it). out may alias in, or be null (the maximum only).
float clean_max(const float* in, int64_t n, float* out);

// The first i with x[i] == v, or -1.
int64_t first_index_of(const float* x, int64_t n, float v);

// Writes the indices i with x[i] >= t, in increasing order, to idx and returns how many. idx has
// room for n + 16 (whole vectors are stored).
int64_t indices_at_least(const float* x, int64_t n, float t, int32_t* idx);

// The scalar transcription of exp512 on one value (what exp_sums' scalar target uses).
float exp_scalar(float x);

}  // namespace herd
