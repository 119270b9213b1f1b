// Kernel microbenchmarks (Google Benchmark): the memory-bandwidth roofline of this machine and
// gemm per weight format for decode (GB/s of weights streamed) and prefill (GFLOP/s). Decode
// weights cycle through ≥ 1 GiB of copies so they come from DRAM, not a large L3, as a model's do.
//   build-simd/bench/bench_kernels [--benchmark_filter=Decode]   (HERD_ISA=avx2 ... to compare)
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "herd/ops/attention_fast.h"
#include "herd/ops/cpu_features.h"
#include "herd/ops/gemm.h"
#include "herd/ops/kv_quant.h"
#include "herd/quant/formats.h"
#include "herd/quant/gguf_blocks.h"
#include "herd/runtime/sampler.h"

namespace herd {
namespace {

constexpr int kMaxThreads = 64;
constexpr size_t kWorkingSet = size_t(1) << 30;

// 2 threads (the target machine's cores) unless HERD_BENCH_THREADS says otherwise.
ThreadPool& pool() {
  static ThreadPool p(std::getenv("HERD_BENCH_THREADS")
                          ? std::clamp(std::atoi(std::getenv("HERD_BENCH_THREADS")), 1, kMaxThreads)
                          : 2);
  return p;
}

// ---- bandwidth probe: read-only sum over 1 GiB, each thread its contiguous half ----

__attribute__((target("avx2"))) double sum_avx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float o[8];
  _mm256_store_ps(o, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}

void BM_BandwidthProbe(benchmark::State& state) {
  const size_t n = kWorkingSet / 4;
  AlignedBuffer<float> buf;
  float* p = buf.ensure(n);
  pool().run_on_all([&](int ith, int nth) {  // first touch by the thread that reads it
    const size_t b = n / nth * ith, e = ith == nth - 1 ? n : n / nth * (ith + 1);
    for (size_t i = b; i < e; ++i) p[i] = 1.0f;
  });
  double best = 0;
  for (auto _ : state) {
    for (int rep = 0; rep < 5; ++rep) {
      double sums[kMaxThreads] = {};
      const auto t0 = std::chrono::steady_clock::now();
      pool().run_on_all([&](int ith, int nth) {
        const size_t b = n / nth * ith, e = ith == nth - 1 ? n : n / nth * (ith + 1);
        sums[ith] = sum_avx2(p + b, e - b);
      });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      benchmark::DoNotOptimize(sums);
      best = std::max(best, double(kWorkingSet) / s);
    }
  }
  state.counters["best_GB/s"] = best / 1e9;
}
BENCHMARK(BM_BandwidthProbe)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// The fixed cost of one pool dispatch (wake the workers, hand out 2 chunks, wait): paid by every
// gemm call, so it bounds small decode matrices (one expert's projection).
void BM_PoolDispatch(benchmark::State& state) {
  for (auto _ : state)
    pool().parallel_for(2, 1, [](size_t b, size_t, int) { benchmark::DoNotOptimize(b); });
}
BENCHMARK(BM_PoolDispatch)->UseRealTime();

// ---- gemm ----

// Random bytes for a GGUF / F16 matrix, with every block's f16 / f32 scales set to 0.01.
void fill_gguf(DType t, uint8_t* d, int64_t rows, int64_t cols) {
  uint64_t s = 1;
  const int64_t bytes = rows * gguf_row_bytes(t, cols), bb = gguf_block_bytes(t);
  for (int64_t i = 0; i < bytes; ++i) s = s * 6364136223846793005ull + 1, d[i] = uint8_t(s >> 56);
  const uint16_t h = f32_to_f16(0.01f);
  const float f = 0.01f;
  for (int64_t b = 0; b < bytes / bb; ++b) {
    uint8_t* p = d + b * bb;
    if (t == DType::F16) std::memcpy(p, &h, 2);
    if (t == DType::GGUF_Q8_0 || t == DType::GGUF_Q4_0 || t == DType::GGUF_Q5_0 ||
        t == DType::GGUF_IQ4_NL || t == DType::GGUF_IQ4_XS)
      std::memcpy(p, &h, 2);
    if (t == DType::GGUF_Q4_1 || t == DType::GGUF_Q5_1 || t == DType::GGUF_Q4_K ||
        t == DType::GGUF_Q5_K)
      std::memcpy(p, &h, 2), std::memcpy(p + 2, &h, 2);
    if (t == DType::GGUF_Q6_K) std::memcpy(p + offsetof(GgufQ6_K, d), &h, 2);
    if (t == DType::GGUF_Q3_K) std::memcpy(p + offsetof(GgufQ3_K, d), &h, 2);
    if (t == DType::GGUF_Q2_K)
      std::memcpy(p + offsetof(GgufQ2_K, d), &h, 2),
          std::memcpy(p + offsetof(GgufQ2_K, dmin), &h, 2);
    if (t == DType::GGUF_Q8_K) std::memcpy(p, &f, 4);
  }
}

struct Weights {  // `copies` copies of one [rows, cols] matrix in `dt`, back to back
  DType dt;
  int64_t rows, cols, copies, matrix_bytes;
  AlignedBuffer<uint8_t> data;
  std::vector<float> scales;  // per matrix copy: shared (same values)

  Weights(DType t, int64_t r, int64_t c, size_t min_total) : dt(t), rows(r), cols(c) {
    if (is_interleaved(t)) {  // Q8G / Q4G codes, 16 rows interleaved (one copy, then repeated)
      const Weights rm(code_format(t), r, c, 0);
      matrix_bytes = il_rows(r) * packed_row_bytes(t, c);
      copies = std::max<int64_t>(1, int64_t((min_total + matrix_bytes - 1) / matrix_bytes));
      uint8_t* d = data.ensure(size_t(copies * matrix_bytes));
      interleave_rows(rm.data.data(), rm.scales.data(), r, c, 0, r, t, d);
      for (int64_t k = 1; k < copies; ++k)
        std::memcpy(d + k * matrix_bytes, d, size_t(matrix_bytes));
      return;
    }
    if (is_gguf_kernel_type(t)) {  // GGUF blocks: random codes, finite scales (timing only)
      matrix_bytes = r * gguf_row_bytes(t, c);
      copies = std::max<int64_t>(1, int64_t((min_total + matrix_bytes - 1) / matrix_bytes));
      uint8_t* d = data.ensure(size_t(copies * matrix_bytes));
      fill_gguf(t, d, r, c);
      for (int64_t k = 1; k < copies; ++k)
        std::memcpy(d + k * matrix_bytes, d, size_t(matrix_bytes));
      return;
    }
    if (t == DType::BF16T) {  // bf16 rows into 16-row tiles (r a multiple of 16)
      const Weights rm(DType::BF16, r, c, 0);
      matrix_bytes = r * packed_row_bytes(t, c);
      copies = std::max<int64_t>(1, int64_t((min_total + matrix_bytes - 1) / matrix_bytes));
      uint8_t* d = data.ensure(size_t(copies * matrix_bytes));
      tile_rows_bf16(reinterpret_cast<const uint16_t*>(rm.data.data()), r, c, 0,
                     reinterpret_cast<uint16_t*>(d));
      for (int64_t k = 1; k < copies; ++k)
        std::memcpy(d + k * matrix_bytes, d, size_t(matrix_bytes));
      return;
    }
    const int64_t rb = is_packed(t) ? packed_row_bytes(t, c) : c * int64_t(dtype_size(t));
    matrix_bytes = r * rb;
    copies = std::max<int64_t>(1, int64_t((min_total + matrix_bytes - 1) / matrix_bytes));
    uint8_t* d = data.ensure(size_t(copies * matrix_bytes));
    std::vector<float> row(static_cast<size_t>(c));
    uint64_t s = 1;
    if (is_packed(t)) scales.resize(size_t(r * quant_groups(c)));
    if (t == DType::F8_E4M3) scales.assign(size_t(r), 1.0f / 448);
    for (int64_t i = 0; i < r; ++i) {
      for (auto& f : row)
        s = s * 6364136223846793005ull + 1, f = float(int64_t(s >> 40) % 2001 - 1000) / 1000;
      uint8_t* out = d + i * rb;
      if (t == DType::Q8G)
        quantize_row_q8g(row.data(), c, out, &scales[size_t(i * quant_groups(c))]);
      if (t == DType::Q4G)
        quantize_row_q4g(row.data(), c, out, &scales[size_t(i * quant_groups(c))]);
      for (int64_t j = 0; j < c; ++j) {
        if (t == DType::BF16) {
          const uint16_t h = f32_to_bf16(row[size_t(j)]);
          std::memcpy(out + 2 * j, &h, 2);
        } else if (t == DType::F32) {
          std::memcpy(out + 4 * j, &row[size_t(j)], 4);
        } else if (t == DType::F8_E4M3) {
          out[j] = f32_to_fp8_e4m3(row[size_t(j)] * 448);
        }
      }
    }
    for (int64_t k = 1; k < copies; ++k) std::memcpy(d + k * matrix_bytes, d, size_t(matrix_bytes));
  }
  WeightRef ref(int64_t copy) const {
    WeightRef w;
    w.dtype = dt, w.rows = rows, w.cols = cols;
    w.data = data.data() + copy * matrix_bytes;
    if (is_packed(dt)) w.group_scale = scales.data();
    if (dt == DType::F8_E4M3) w.row_scale = scales.data();
    return w;
  }
};

DType fmt(int64_t i) {
  static const DType all[] = {
      DType::BF16, DType::Q8G, DType::Q4G, DType::F8_E4M3, DType::F32, DType::Q8GI, DType::Q4GI,
      DType::BF16T, DType::F16, DType::GGUF_Q8_0, DType::GGUF_Q4_0, DType::GGUF_Q4_1,
      DType::GGUF_Q4_K, DType::GGUF_Q5_K, DType::GGUF_Q6_K,
      // Appended, so the indices the filters above use keep naming the same formats:
      DType::GGUF_Q8_K, DType::GGUF_Q5_0, DType::GGUF_Q5_1, DType::GGUF_Q2_K, DType::GGUF_Q3_K,
      DType::GGUF_IQ4_NL, DType::GGUF_IQ4_XS};
  return all[i];
}

// Args: format, out rows, in cols, tokens, matrices per iteration (experts), cold (weights
// cycle through ≥ 1 GiB) or hot (one copy, cache resident: the kernel's compute ceiling).
void BM_Gemm(benchmark::State& state) {
  const DType dt = fmt(state.range(0));
  const int64_t M = state.range(1), K = state.range(2), n = state.range(3), per = state.range(4);
  const Weights w(dt, M, K, state.range(5) ? kWorkingSet : 0);
  std::vector<float> x(size_t(n * K)), y(size_t(n * M));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i * 7919 % 2001) - 1000) / 1000;
  PreparedActs a;
  prepare_acts(x.data(), n, K, K, dt, a);
  int64_t c = 0;
  for (auto _ : state) {
    for (int64_t e = 0; e < per; ++e) {
      gemm(pool(), a, w.ref(c), y.data(), M);
      c = (c + 1) % w.copies;
    }
    benchmark::ClobberMemory();
  }
  const double iters = double(state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(double(w.matrix_bytes * per) * iters / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * M * K * per * iters / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(dtype_name(dt)) + " isa=" + isa_name(a.isa));
}

void BM_Prepare(benchmark::State& state) {
  const DType dt = fmt(state.range(0));
  const int64_t n = state.range(1), K = state.range(2);
  std::vector<float> x(size_t(n * K), 0.5f);
  PreparedActs a;
  for (auto _ : state) prepare_acts(x.data(), n, K, K, dt, a);
  state.SetLabel(std::string(dtype_name(dt)));
}

void decode_args(benchmark::internal::Benchmark* b) {
  for (int64_t f = 0; f < 8; ++f) {
    b->Args({f, 4096, 4096, 1, 1, 1});
    b->Args({f, 2048, 1024, 1, 16, 1});  // 16 experts' [2048, 1024] projections, one token each
  }
  // Continuous batching: an expert's [2048, 1024] gate|up with 2, 4 or 8 tokens.
  for (int64_t f : {0, 1, 2, 5, 6, 7})
    for (int64_t n : {2, 4, 8}) b->Args({f, 2048, 1024, n, 16, 1});
}
void hot_args(benchmark::internal::Benchmark* b) {
  for (int64_t f = 0; f < 8; ++f) b->Args({f, 1024, 1024, 1, 1, 0});
  // Multi-token decode (continuous batching) from cache: the tile's compute ceiling.
  for (int64_t f : {5, 6, 7})
    for (int64_t n : {2, 3, 4}) b->Args({f, 1024, 1024, n, 1, 0});
  // A 16-sequence step's dense products: [1024, 1024] from cache, the lm_head from memory.
  for (int64_t f : {5, 6, 7}) {
    b->Args({f, 1024, 1024, 16, 1, 0});
    b->Args({f, 32768, 1024, 16, 1, 1});
  }
}
void prefill_args(benchmark::internal::Benchmark* b) {
  for (int64_t f = 0; f < 8; ++f) b->Args({f, 4096, 4096, 512, 1, 0});
  // The bench preset's prefill shapes: a 512-token [1024, 1024] projection, and one expert's
  // [2048, 1024] gate|up with the ~32 tokens top-1 routing gives it out of 512 (16 experts).
  for (int64_t f : {0, 1, 2, 5, 6, 7}) {
    b->Args({f, 1024, 1024, 512, 1, 0});
    b->Args({f, 2048, 1024, 32, 1, 0});
    // The same from memory: the projection, and all 16 experts with their 32 tokens each.
    b->Args({f, 1024, 1024, 512, 1, 1});
    b->Args({f, 2048, 1024, 32, 16, 1});
  }
}
// GGUF block formats and F16 (formats 8..15, gemm_gguf_vnni.cc): the same shapes under their
// own names, so the filters above keep selecting what they did.
void gguf_decode_args(benchmark::internal::Benchmark* b) {
  for (int64_t f = 8; f < 22; ++f) {
    b->Args({f, 4096, 4096, 1, 1, 1});
    b->Args({f, 1024, 1024, 1, 1, 0});  // hot: the kernel's own ceiling
    for (int64_t n : {1, 2, 4, 8}) b->Args({f, 2048, 1024, n, 16, 1});
  }
}
void gguf_prefill_args(benchmark::internal::Benchmark* b) {
  for (int64_t f = 8; f < 22; ++f) {
    b->Args({f, 4096, 4096, 512, 1, 0});
    b->Args({f, 1024, 1024, 512, 1, 0});
    b->Args({f, 2048, 1024, 32, 1, 0});
  }
}
BENCHMARK(BM_Gemm)
    ->Name("GgufDecode")
    ->Apply(gguf_decode_args)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Gemm)
    ->Name("GgufPrefill")
    ->Apply(gguf_prefill_args)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
// MoE prefill: each of 16 experts' [2048, 1024] (gate and up) with the few tokens a prefill
// batch routes to it, weights from memory: the sizes the repack threshold decides between.
void gguf_expert_args(benchmark::internal::Benchmark* b) {
  for (int64_t f : {9, 10, 12, 14})
    for (int64_t n : {8, 12, 16, 20, 24, 32}) b->Args({f, 2048, 1024, n, 16, 1});
}
BENCHMARK(BM_Gemm)
    ->Name("GgufExperts")
    ->Apply(gguf_expert_args)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Gemm)
    ->Name("Decode")
    ->Apply(decode_args)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Gemm)
    ->Name("DecodeHot")
    ->Apply(hot_args)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Gemm)
    ->Name("Prefill")
    ->Apply(prefill_args)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Prepare)
    ->Args({0, 512, 4096})
    ->Args({1, 512, 4096})
    ->Args({0, 1, 4096})
    ->Args({1, 1, 4096})
    ->Unit(benchmark::kMicrosecond);

// ---- the pool's fixed cost per parallel section (a decode step has ~5 per layer) ----

void BM_PoolSection(benchmark::State& state) {
  std::atomic<int64_t> sink{0};
  for (auto _ : state)
    pool().parallel_for(size_t(pool().size()), 1, [&](size_t b, size_t, int) {
      sink.fetch_add(int64_t(b), std::memory_order_relaxed);
    });
  benchmark::DoNotOptimize(sink.load());
  state.SetLabel("threads=" + std::to_string(pool().size()));
}
BENCHMARK(BM_PoolSection)->Name("PoolSection")->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- choosing one token from a vocabulary's logits (runtime/sampler), per token and sequence ----
// Modes: 0 plain greedy (the direct search), 1 greedy through the candidate list (a zero logit
// bias takes it), 2 temperature 0.6 with top-p 0.9 (Llama 4's generation_config), 3 temperature 1.

void BM_Sampler(benchmark::State& state) {
  const int64_t vocab = state.range(0);
  herd::SamplingParams p;
  const char* names[] = {"greedy",
                         "greedy, candidate list",
                         "temperature 0.6, top-p 0.9",
                         "temperature 1",
                         "temperature 0.6, top-p 0.9, Zipf logits",
                         "top-k 40, top-p 0.95, min-p 0.05, temperature 0.8, Zipf logits"};
  const int mode = int(state.range(1));
  switch (mode) {
    case 1:
      p.logit_bias = {{0, 0.0f}};
      break;
    case 2:
    case 4:
      p.temperature = 0.6f, p.top_p = 0.9f;
      break;
    case 3:
      p.temperature = 1.0f;
      break;
    case 5:  // llama.cpp's default chain
      p.temperature = 0.8f, p.top_k = 40, p.top_p = 0.95f, p.min_p = 0.05f;
      break;
    default:
      break;
  }
  herd::Xoshiro256 rng(1);
  std::vector<float> logits(static_cast<size_t>(vocab));
  if (mode < 4) {  // flat: uniform in [-8, 8] (a random-weight model's)
    for (float& x : logits) x = float(rng.uniform() * 16.0 - 8.0);
  } else {  // peaked like a trained model's: p ∝ rank^-1.5, ranks shuffled over the ids
    for (int64_t i = 0; i < vocab; ++i) logits[size_t(i)] = float(-1.5 * std::log(double(i + 1)));
    for (int64_t i = vocab - 1; i > 0; --i)
      std::swap(logits[size_t(i)], logits[size_t(rng.next() % uint64_t(i + 1))]);
  }
  herd::Sampler s(p);
  int64_t sink = 0;
  for (auto _ : state) sink += s.sample(logits.data(), vocab, {});
  benchmark::DoNotOptimize(sink);
  state.SetLabel(names[mode]);
}
BENCHMARK(BM_Sampler)
    ->Name("Sampler")
    ->ArgNames({"vocab", "mode"})
    ->ArgsProduct({{32768, 202048}, {0, 1, 2, 3, 4, 5}})
    ->Unit(benchmark::kMicrosecond);

// ---- attention: the decoder's shape (head_dim 128, 8 query heads on 2 kv heads, chunk 8192) ----

struct AttentionCase {
  AttentionShape s{8, 2, 128, 1.0f / std::sqrt(128.0f), 8192};
  int64_t n_keys = 0, n_queries = 0, qd = 0, kvd = 0;
  std::vector<float> q, out;
  std::vector<int64_t> q_pos;
  // The cache: pages of 256 slots in the stored type (one layer), the last one partly empty.
  KvPageLayout layout;
  uint8_t* arena = nullptr;  // every page, in one mapping as the runtime's KvPagePool
  size_t arena_bytes = 0;
  std::vector<const uint8_t*> pages;
  KvView kv;

  ~AttentionCase() {
    if (arena) munmap(arena, arena_bytes);
  }
  AttentionCase(const AttentionCase&) = delete;
  AttentionCase& operator=(const AttentionCase&) = delete;
  // n_keys cached tokens at positions 0.., and the last n_queries of them as queries (prefill:
  // all of them, causal; decode: the last one).
  AttentionCase(int64_t keys, int64_t queries, int64_t chunk, KvType type, int64_t heads = 8,
                int64_t kv_heads = 2, int64_t head_dim = 128)
      : n_keys(keys), n_queries(queries) {
    s = AttentionShape{heads, kv_heads, head_dim, 1.0f / std::sqrt(float(head_dim)), chunk};
    qd = s.n_heads * s.head_dim, kvd = s.n_kv_heads * s.head_dim;
    q.resize(size_t(n_queries * qd)), out.resize(q.size());
    uint64_t r = 7;
    auto next = [&] {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      return float(int64_t(r >> 40) - (1 << 23)) / float(1 << 23);
    };
    for (float& x : q) x = next();
    layout = {type, 256, kvd, s.n_kv_heads, s.head_dim, 1};
    std::vector<float> k(static_cast<size_t>(kvd)), v(static_cast<size_t>(kvd));
    for (int64_t j = 0; j < n_keys; ++j) {
      const int64_t slot = j % layout.page_rows;
      if (j == 0) {
        const size_t n_pages = size_t((n_keys + layout.page_rows - 1) / layout.page_rows);
        arena_bytes = n_pages * layout.page_bytes();
        arena = static_cast<uint8_t*>(
            mmap(nullptr, arena_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (std::getenv("HERD_BENCH_THP")) madvise(arena, arena_bytes, MADV_HUGEPAGE);
      }
      if (slot == 0) {
        uint8_t* p = arena + pages.size() * layout.page_bytes();
        std::fill_n(reinterpret_cast<int64_t*>(p), layout.page_rows, kKvEmpty);
        pages.push_back(p);
      }
      uint8_t* p = const_cast<uint8_t*>(pages.back());
      for (float& x : k) x = next();
      for (float& x : v) x = next();
      const size_t e = kv_type_bytes(type);
      auto scales = [&](size_t off) {
        return kv_type_scaled(type) ? reinterpret_cast<float*>(p + off) + slot * s.n_kv_heads
                                    : nullptr;
      };
      kv_store_row(type, k.data(), s.n_kv_heads, s.head_dim, p + layout.k_row_off(0, slot),
                   scales(layout.ks_off(0)), kKvKeyBlock);
      kv_store_row(type, v.data(), s.n_kv_heads, s.head_dim,
                   p + layout.v_off(0) + size_t(slot * kvd) * e, scales(layout.vs_off(0)));
      reinterpret_cast<int64_t*>(p)[slot] = j;
    }
    kv.layout = layout;
    kv.pages = pages.data();
    kv.n_pages = int64_t(pages.size());
    for (int64_t t = 0; t < n_queries; ++t) q_pos.push_back(n_keys - n_queries + t);
  }
  // The reference attention() once per (token, query head), as model/text.cc's exact path.
  void run_per_head(std::vector<float>& scratch) {
    AttentionShape one = s;
    one.n_heads = one.n_kv_heads = 1;
    const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
    for (int64_t t = 0; t < n_queries; ++t)
      for (int64_t h = 0; h < s.n_heads; ++h)
        attention(one, &q[size_t(t * qd + h * hd)], q_pos[size_t(t)], kv, h / group,
                  &out[size_t(t * qd + h * hd)], scratch.data());
  }
  // The decoder's split of one decode token (TextDecoder::attention_fast): the partials of each
  // key segment for `per_pass` kv heads at a time, then folded per head in segment order.
  void run_split(int64_t per_pass, AttentionScratch& scratch) {
    std::vector<KvSegment>& segs = scratch.segments;
    kv_segments(kv, s.segment, INT64_MIN, q_pos.back(), segs);
    const int64_t G = s.n_heads / s.n_kv_heads, floats = G * (s.head_dim + 2);
    const int64_t n_seg = int64_t(segs.size());
    parts.resize(size_t(s.n_kv_heads * n_seg * floats));
    const AttentionQueries a{&q[size_t((n_queries - 1) * qd)],   qd, &q_pos.back(), 1,
                             &out[size_t((n_queries - 1) * qd)], qd};
    for (int64_t k = 0; k < n_seg; ++k)
      for (int64_t g = 0; g < s.n_kv_heads; g += per_pass)
        attention_groups_partial(s, g, std::min(s.n_kv_heads, g + per_pass), a, kv, segs[size_t(k)],
                                 &parts[size_t((g * n_seg + k) * floats)], n_seg * floats, scratch);
    std::vector<float> acc(static_cast<size_t>(floats));
    for (int64_t g = 0; g < s.n_kv_heads; ++g) {
      attention_fold_init(G, s.head_dim, acc.data());
      for (int64_t k = 0; k < n_seg; ++k)
        attention_fold(G, s.head_dim, &parts[size_t((g * n_seg + k) * floats)], acc.data());
      attention_finish(s, g, acc.data(), a);
    }
  }
  std::vector<float> parts;
  // attention_group_fast once per (kv head, block of `block` query tokens).
  void run_grouped(int64_t block, AttentionScratch& scratch) {
    for (int64_t t0 = 0; t0 < n_queries; t0 += block)
      for (int64_t g = 0; g < s.n_kv_heads; ++g) {
        AttentionQueries a;
        a.q = &q[size_t(t0 * qd)], a.q_stride = qd, a.pos = &q_pos[size_t(t0)];
        a.n = std::min(block, n_queries - t0), a.out = &out[size_t(t0 * qd)], a.out_stride = qd;
        attention_group_fast(s, g, a, kv, scratch);
      }
  }
};

// Single-threaded. Args: tokens in the cache, query tokens (the last ones), queries per call
// (0: the reference per (token, head)), chunk size (0: a NoPE layer's global attention), KV
// type (KvType: 0 f32, 1 bf16, 2 int8, 3 fp8-e4m3).
void BM_Attention(benchmark::State& state) {
  const KvType type = KvType(state.range(4));
  AttentionCase c(state.range(0), state.range(1), state.range(3), type);
  const int64_t block = state.range(2);
  std::vector<float> scratch(attention_scratch_floats(c.kv));
  AttentionScratch group_scratch;
  for (auto _ : state) {
    if (block == 0)
      c.run_per_head(scratch);
    else
      c.run_grouped(block, group_scratch);
    benchmark::DoNotOptimize(c.out.data());
  }
  state.SetLabel(std::string(block == 0 ? "reference per (token, head)" : "per (group, block)") +
                 " kv=" + kv_type_name(type) + " isa=" + isa_name(active_isa()));
}
BENCHMARK(BM_Attention)
    ->Name("AttentionPrefill")
    ->ArgNames({"keys", "queries", "block", "chunk", "kv"})
    ->Args({512, 512, 0, 8192, 0})
    ->Args({512, 512, 8, 8192, 0})
    ->Args({512, 512, 16, 8192, 0})
    ->Args({512, 512, 32, 8192, 0})
    ->Args({512, 512, 32, 8192, 1})
    ->Args({512, 512, 32, 8192, 2})
    ->Args({512, 512, 32, 8192, 3})
    ->Args({512, 512, 64, 8192, 0})
    ->Args({512, 512, 128, 8192, 0})
    ->Args({512, 512, 512, 8192, 0})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attention)
    ->Name("AttentionDecode")
    ->ArgNames({"keys", "queries", "block", "chunk", "kv"})
    ->Args({512, 1, 0, 8192, 0})
    ->Args({512, 1, 1, 8192, 0})
    ->Args({4096, 1, 0, 8192, 0})
    ->Args({4096, 1, 1, 8192, 0})
    ->Args({4096, 1, 1, 8192, 1})
    ->Args({4096, 1, 1, 8192, 2})
    ->Args({4096, 1, 1, 8192, 3})
    ->Args({100000, 1, 0, 0, 0})
    ->Args({100000, 1, 1, 0, 0})
    ->Unit(benchmark::kMicrosecond);

// One NoPE layer's decode over a long KV for the presets' shapes, split by key segments as the
// decoder does (in one thread here; the decoder runs the segments on its threads). Args: keys,
// KV type, query heads, kv heads, head dim, kv heads per pass over the keys (the decoder takes
// all of them when there are as many segments as threads).
void BM_AttentionLong(benchmark::State& state) {
  const KvType type = KvType(state.range(1));
  AttentionCase c(state.range(0), 1, 0, type, state.range(2), state.range(3), state.range(4));
  AttentionScratch scratch;
  for (auto _ : state) {
    c.run_split(state.range(5), scratch);
    benchmark::DoNotOptimize(c.out.data());
  }
  const double kv_bytes = double(c.layout.page_bytes()) * double(c.pages.size());
  state.counters["GB/s"] =
      benchmark::Counter(kv_bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ns_per_key_head"] = benchmark::Counter(
      double(c.n_keys * c.s.n_kv_heads) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(std::string("kv=") + kv_type_name(type) + " isa=" + isa_name(active_isa()));
}
BENCHMARK(BM_AttentionLong)
    ->Name("AttentionDecodeLong")
    ->ArgNames({"keys", "kv", "heads", "kv_heads", "hd", "per_pass"})
    ->Args({4096, 1, 4, 2, 64, 2})
    ->Args({32768, 1, 4, 2, 64, 2})
    ->Args({262144, 1, 4, 2, 64, 1})
    ->Args({262144, 1, 4, 2, 64, 2})
    ->Args({262144, 3, 4, 2, 64, 1})
    ->Args({262144, 3, 4, 2, 64, 2})
    ->Args({65536, 1, 40, 8, 128, 1})
    ->Args({65536, 1, 40, 8, 128, 2})
    ->Args({65536, 1, 40, 8, 128, 4})
    ->Args({65536, 1, 40, 8, 128, 8})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace herd

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("cpu_features", herd::cpu_features().describe());
  benchmark::AddCustomContext("isa", herd::isa_name(herd::active_isa()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
