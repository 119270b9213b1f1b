// Memory-bound read patterns of herd's decode kernels, stand-alone (BENCHMARKS.md, session 26):
// how fast a core streams a one-token int4 GEMV's bytes with and without the per-group epilogue,
// and a decode attention's K/V addresses, with nothing else of herd around them. Not built by
// CMake (a measurement, not a test):
//   g++ -O2 -std=c++20 -march=x86-64-v4 -mavx512vnni -o /tmp/stream_patterns
//       bench/stream_patterns.cc -lpthread
//   /tmp/stream_patterns int4 THREADS EPILOGUE(0|1)    1 GiB of Q4GI-like records
//   /tmp/stream_patterns int4-flat THREADS             the same instructions, no groups
//   /tmp/stream_patterns kv HEADS_PER_PASS(1|8) PF(0 none|1 T0|2 T1)   one layer, 65536 keys
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vnni,avx512dq,avx512vl,fma")))

namespace {

constexpr int kChunks = 16, kRecord = 1088;  // Q4GI: 16 code vectors + 16 f32 scales per group

// One 16-row block of a [*, 4096] Q4GI matrix against one token: the kernel's instructions per
// 64-byte vector; kEpilogue adds its per-group reduction and scaling (else one sum per block).
template <bool kEpilogue>
TARGET float block_dot(const uint8_t* w, const int8_t* x, int groups) {
  const __m512i nib = _mm512_set1_epi8(15);
  __m512 facc = _mm512_setzero_ps();
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
  for (int g = 0; g < groups; ++g) {
    if (kEpilogue)
      for (auto& a : acc) a = _mm512_setzero_si512();
    const int8_t* xg = x + g * 128;
#pragma GCC unroll 16
    for (int ch = 0; ch < kChunks; ++ch) {
      const __m512i v = _mm512_loadu_si512(w + g * kRecord + ch * 64);
      int32_t a, b;
      std::memcpy(&a, xg + ch * 8, 4);
      std::memcpy(&b, xg + ch * 8 + 4, 4);
      acc[ch % 4] =
          _mm512_dpbusd_epi32(acc[ch % 4], _mm512_and_si512(v, nib), _mm512_set1_epi32(a));
      acc[ch % 4] = _mm512_dpbusd_epi32(acc[ch % 4], _mm512_and_si512(_mm512_srli_epi16(v, 4), nib),
                                        _mm512_set1_epi32(b));
    }
    if (!kEpilogue && g + 1 < groups) continue;
    __m512i d =
        _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
    d = _mm512_sub_epi32(d, _mm512_set1_epi32(7 << 3));
    const __m512 wsc = _mm512_loadu_ps(reinterpret_cast<const float*>(w + g * kRecord + 1024));
    facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(wsc, _mm512_set1_ps(0.5f)), facc);
  }
  return _mm512_reduce_add_ps(facc);
}

// The same instruction mix over a plain stream: 4 chains, x broadcast from L1, no groups.
TARGET int64_t flat_dot(const uint8_t* p, size_t n, const int8_t* x) {
  const __m512i nib = _mm512_set1_epi8(15);
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
  for (size_t i = 0; i + 256 <= n; i += 256) {
    const int8_t* xg = x + (i / 2) % 4096;
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_load_si512(p + i + 64 * c);
      int32_t a, b;
      std::memcpy(&a, xg + 8 * c, 4);
      std::memcpy(&b, xg + 8 * c + 4, 4);
      acc[c] = _mm512_dpbusd_epi32(acc[c], _mm512_and_si512(v, nib), _mm512_set1_epi32(a));
      acc[c] = _mm512_dpbusd_epi32(acc[c], _mm512_and_si512(_mm512_srli_epi16(v, 4), nib),
                                   _mm512_set1_epi32(b));
    }
  }
  const __m512i s =
      _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
  return _mm512_reduce_add_epi32(s);
}

uint8_t* huge_alloc(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::exit(1);
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0x11, bytes);
  return static_cast<uint8_t*>(p);
}

// Best of 5 passes of fn(thread) on nth threads, in seconds.
template <class Fn>
double best_of_5(int nth, Fn fn) {
  double best = 1e30;
  for (int pass = 0; pass < 5; ++pass) {
    std::vector<std::thread> th;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < nth; ++t) th.emplace_back([&, t] { fn(t); });
    for (auto& x : th) x.join();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int int4(int nth, int mode) {  // mode 0: no epilogue, 1: per group, 2: flat stream
  const int groups = 4096 / 128;
  const size_t block = size_t(groups) * kRecord, blocks = (size_t(1) << 30) / block;
  const size_t bytes = blocks * block;
  uint8_t* w = huge_alloc(bytes);
  std::vector<int8_t> x(4096, 3);
  volatile float sink = 0;
  const double s = best_of_5(nth, [&](int t) {
    float acc = 0;
    if (mode == 2) {
      const size_t share = bytes / size_t(nth) / 256 * 256;
      acc = float(flat_dot(w + share * size_t(t), share, x.data()));
    } else {
      for (size_t b = blocks * size_t(t) / size_t(nth); b < blocks * size_t(t + 1) / size_t(nth);
           ++b)
        acc += mode ? block_dot<true>(w + b * block, x.data(), groups)
                    : block_dot<false>(w + b * block, x.data(), groups);
    }
    sink = sink + acc;
  });
  std::printf("int4 %s, %d threads: %.1f GB/s\n",
              mode == 2 ? "flat"
              : mode    ? "per-group epilogue"
                        : "one epilogue a block",
              nth, double(bytes) / s / 1e9);
  return 0;
}

// One layer's KV as herd's bf16 pages hold it at Llama 4's shape (8 kv heads of 128, pages of
// 256 slots): K blocks [head][128][16] of 4 KB, V rows of 2 KB. Reads every K and V byte of
// `per_pass` kv heads at a time, block by block, as the decode attention does.
int kv(int per_pass, int pf) {
  const size_t page = size_t(256) * 2048 * 2, n_pages = 256;  // 65536 keys
  uint8_t* a = huge_alloc(page * (n_pages + 1));
  volatile int64_t sink = 0;
  const double s = best_of_5(1, [&](int) {
    __m512i acc = _mm512_setzero_si512();
    for (int g0 = 0; g0 < 8; g0 += per_pass)
      for (size_t p = 0; p < n_pages; ++p)
        for (int b = 0; b < 16; ++b) {
          const uint8_t* k = a + p * page + (size_t(b) * 8 + size_t(g0)) * 4096;
          const uint8_t* v = a + p * page + 128 * 4096 + size_t(b) * 16 * 2048 + size_t(g0) * 256;
          if (pf) {  // 3 blocks ahead, as the kernel's near prefetch
            for (int o = 0; o < 4096 * per_pass; o += 64)
              pf == 1
                  ? _mm_prefetch(reinterpret_cast<const char*>(k + 3 * 8 * 4096 + o), _MM_HINT_T0)
                  : _mm_prefetch(reinterpret_cast<const char*>(k + 3 * 8 * 4096 + o), _MM_HINT_T1);
            for (int r = 0; r < 16; ++r)
              for (int o = 0; o < 256 * per_pass; o += 64) {
                const char* q = reinterpret_cast<const char*>(v + 3 * 16 * 2048 + r * 2048 + o);
                pf == 1 ? _mm_prefetch(q, _MM_HINT_T0) : _mm_prefetch(q, _MM_HINT_T1);
              }
          }
          for (int o = 0; o < 4096 * per_pass; o += 64)
            acc = _mm512_add_epi64(acc, _mm512_load_si512(k + o));
          for (int r = 0; r < 16; ++r)
            for (int o = 0; o < 256 * per_pass; o += 64)
              acc = _mm512_add_epi64(acc, _mm512_load_si512(v + r * 2048 + o));
        }
    sink = sink + _mm512_reduce_add_epi64(acc);
  });
  std::printf("kv, %d kv heads a pass, prefetch %d: %.2f ms for %.0f MB\n", per_pass, pf, s * 1e3,
              double(page * n_pages) / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string m = argc > 1 ? argv[1] : "";
  const int a = argc > 2 ? std::atoi(argv[2]) : 1, b = argc > 3 ? std::atoi(argv[3]) : 0;
  if (m == "int4") return int4(std::max(a, 1), b ? 1 : 0);
  if (m == "int4-flat") return int4(std::max(a, 1), 2);
  if (m == "kv") return kv(a == 8 ? 8 : 1, b);
  std::fprintf(
      stderr,
      "usage: stream_patterns int4 THREADS EPILOGUE | int4-flat THREADS | kv HEADS_PER_PASS PF\n");
  return 2;
}
