// herd's GGUF kernels against llama.cpp's ggml on the same rows, in one process, one thread,
// timed in process CPU time (the machine may be shared): ggml quantizes a [1024, 1024] matrix,
// then ggml's from_float + vec_dot per (row, token) — its CPU matmul without repacking — and
// herd's prepare_acts + gemm compute the same product. Medians of 7, alternated twice, min taken.
//   build/tests/integration/bench_gguf_vs_ggml        (built when tests find the llama.cpp build)
#include <ggml-cpu.h>
#include <ggml.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

#include "herd/ops/gemm.h"
#include "herd/quant/gguf_blocks.h"

using namespace herd;

namespace {

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

template <class F>
double median_seconds(F f, int iters) {
  std::vector<double> v;
  for (int rep = 0; rep < 7; ++rep) {
    const double a = cpu_seconds();
    for (int i = 0; i < iters; ++i) f();
    v.push_back((cpu_seconds() - a) / iters);
  }
  std::sort(v.begin(), v.end());
  return v[3];
}

}  // namespace

int main() {
  ggml_cpu_init();
  const struct {
    DType dt;
    ggml_type gt;
  } cases[] = {{DType::GGUF_Q8_0, GGML_TYPE_Q8_0}, {DType::GGUF_Q4_0, GGML_TYPE_Q4_0},
               {DType::GGUF_Q4_1, GGML_TYPE_Q4_1}, {DType::GGUF_Q4_K, GGML_TYPE_Q4_K},
               {DType::GGUF_Q5_K, GGML_TYPE_Q5_K}, {DType::GGUF_Q6_K, GGML_TYPE_Q6_K},
               {DType::F16, GGML_TYPE_F16}};
  const int64_t M = 1024, K = 1024;
  ThreadPool pool(1);
  std::printf("isa %s, [%lld, %lld], 1 thread, CPU time\n", isa_name(active_isa()), (long long)M,
              (long long)K);
  for (const auto& [dt, gt] : cases) {
    std::vector<float> w(size_t(M * K)), x(size_t(64 * K));
    uint64_t s = 1;
    auto next = [&] {
      s = s * 6364136223846793005ull + 1;
      return float(int64_t(s >> 40) % 2001 - 1000) / 1000;
    };
    for (float& f : w) f = next();
    for (float& f : x) f = next();
    std::vector<uint8_t> q(ggml_row_size(gt, K) * size_t(M));
    ggml_quantize_chunk(gt, w.data(), q.data(), 0, M, K, nullptr);
    const auto* cpu = ggml_get_type_traits_cpu(gt);
    const size_t xr = ggml_row_size(cpu->vec_dot_type, K), wr = ggml_row_size(gt, K);
    for (int64_t n : {1, 4, 64}) {
      std::vector<uint8_t> xb(xr * size_t(n));
      std::vector<float> y(size_t(n * M));
      auto run_ggml = [&] {
        for (int64_t t = 0; t < n; ++t) cpu->from_float(&x[size_t(t * K)], &xb[size_t(t) * xr], K);
        for (int64_t r = 0; r < M; ++r)
          for (int64_t t = 0; t < n; ++t)
            cpu->vec_dot(int(K), &y[size_t(t * M + r)], 0, &q[size_t(r) * wr], 0,
                         &xb[size_t(t) * xr], 0, 1);
      };
      PreparedActs a;
      auto run_herd = [&] {
        prepare_acts(x.data(), n, K, K, dt, a);
        gemm(pool, a, WeightRef{dt, q.data(), M, K}, y.data(), M);
      };
      const int it = n == 1 ? 100 : n == 4 ? 25 : 3;
      double g = 1e9, h = 1e9;
      for (int round = 0; round < 2; ++round) {
        g = std::min(g, median_seconds(run_ggml, it));
        h = std::min(h, median_seconds(run_herd, it));
      }
      const double ops = 2.0 * double(M * K * n);
      std::printf(
          "%-5s n=%-3lld ggml %8.1f us %6.1f GOP/s | herd %8.1f us %6.1f GOP/s %6.1f GB/s"
          " | herd/ggml %.2fx\n",
          ggml_type_name(gt), (long long)n, g * 1e6, ops / g / 1e9, h * 1e6, ops / h / 1e9,
          double(q.size()) / h / 1e9, g / h);
    }
  }
}
