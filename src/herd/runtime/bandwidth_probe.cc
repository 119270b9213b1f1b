#include "herd/runtime/bandwidth_probe.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace herd {
namespace {

// Four independent accumulators keep enough loads in flight; the sum defeats dead-code removal.
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint8_t* p, size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  alignas(32) uint64_t l[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(l), a);
  return l[0] + l[1] + l[2] + l[3];
}

uint64_t sum_scalar(const uint8_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0;
  for (size_t i = 0; i + 16 <= n; i += 16) {
    uint64_t x, y;
    std::memcpy(&x, p + i, 8);
    std::memcpy(&y, p + i + 8, 8);
    s0 += x;
    s1 += y;
  }
  return s0 + s1;
}

}  // namespace

double probe_read_bandwidth(ThreadPool& pool, size_t bytes, int passes) {
  bytes = bytes / 4096 * 4096;
  std::unique_ptr<uint8_t, void (*)(void*)> buf(static_cast<uint8_t*>(std::aligned_alloc(4096, bytes)),
                                                std::free);
  const int nth = pool.size();
  // Each thread touches (first-faults) its own part, as it will read it.
  pool.run_on_all([&](int ith, int) {
    const size_t b = bytes / size_t(nth) * size_t(ith), e = ith + 1 == nth ? bytes : b + bytes / size_t(nth);
    std::memset(buf.get() + b, ith + 1, e - b);
  });
  const bool avx2 = __builtin_cpu_supports("avx2");
  std::vector<uint64_t> sink(static_cast<size_t>(nth));
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    auto t0 = std::chrono::steady_clock::now();
    pool.run_on_all([&](int ith, int) {
      const size_t chunk = bytes / size_t(nth) / 128 * 128;
      const uint8_t* s = buf.get() + chunk * size_t(ith);
      sink[size_t(ith)] += avx2 ? sum_avx2(s, chunk) : sum_scalar(s, chunk);
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(bytes / size_t(nth) / 128 * 128 * size_t(nth)) / sec / 1e9);
  }
  volatile uint64_t keep = 0;
  for (uint64_t v : sink) keep = keep + v;
  (void)keep;
  return best;
}

}  // namespace herd
