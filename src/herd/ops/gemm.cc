// gemm dispatch: which ISA, which kernel per weight format, and how the work is split across the
// pool. The split never changes results: kernels compute each output element the same way
// whatever rows or tokens share its task (gemm.h, batch invariance).
#include "herd/ops/gemm.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdlib>
#include <cstring>

#include "herd/ops/cpu_features.h"
#include "herd/ops/gemm_gguf.h"
#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"
#include "herd/quant/gguf_blocks.h"

namespace herd {

using gemm_detail::FormatKernels;
using gemm_detail::Kernel;

namespace {

Isa detect_isa() {
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c)) return Isa::kScalar;
  if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq)) return Isa::kAvx2;
  if (!f.avx512vnni) return Isa::kAvx512;
  if (!(f.amx_usable && f.amx_bf16 && f.amx_int8 && f.avx512bf16)) return Isa::kAvx512Vnni;
  return Isa::kAmx;
}

std::atomic<Isa>& active() {
  static std::atomic<Isa> isa = [] {
    Isa best = detected_isa(), env;
    const char* s = std::getenv("HERD_ISA");
    if (s && parse_isa(s, &env)) best = std::min(best, env);
    return best;
  }();
  return isa;
}

FormatKernels kernels_for(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return gemm_detail::scalar_kernels();
    case Isa::kAvx2:
      return gemm_detail::avx2_kernels();
    case Isa::kAvx512: {
      FormatKernels k = gemm_detail::avx512_kernels();
      const FormatKernels k2 = gemm_detail::avx2_kernels();  // int8 without VNNI
      k.q8 = k2.q8, k.q4 = k2.q4;
      return k;
    }
    case Isa::kAvx512Vnni: {
      FormatKernels k = cpu_features().avx512bf16 ? gemm_detail::avx512_bf16_kernels()
                                                  : gemm_detail::avx512_kernels();
      const FormatKernels kq = gemm_detail::vnni_kernels();
      const FormatKernels ki = gemm_detail::vnni_il_kernels();
      k.q8 = kq.q8, k.q4 = kq.q4, k.q8i = ki.q8i, k.q4i = ki.q4i;
      if (cpu_features().avx512bf16) k.bf16t = gemm_detail::bf16t_dpbf16_kernels().bf16t;
      return k;
    }
    case Isa::kAmx:
      return gemm_detail::amx_kernels();
  }
  return gemm_detail::scalar_kernels();
}

// BF16T is made for AMX and AVX512_BF16 machines, Q8GI / Q4GI for VNNI ones (run_weights.cc);
// other targets only
// meet them when forced below the ISA active at load (tests), and read them with the portable
// kernels.
FormatKernels with_bf16t(FormatKernels k) {
  const FormatKernels s = gemm_detail::scalar_kernels();
  if (!k.bf16t) k.bf16t = s.bf16t;
  if (!k.q8i) k.q8i = s.q8i;
  if (!k.q4i) k.q4i = s.q4i;
  return k;
}

const FormatKernels& table(Isa isa) {
  static const FormatKernels t[] = {
      with_bf16t(kernels_for(Isa::kScalar)), with_bf16t(kernels_for(Isa::kAvx2)),
      with_bf16t(kernels_for(Isa::kAvx512)), with_bf16t(kernels_for(Isa::kAvx512Vnni)),
      with_bf16t(kernels_for(Isa::kAmx))};
  return t[int(isa)];
}

Kernel kernel(const FormatKernels& k, DType t) {
  switch (t) {
    case DType::F32:
      return k.f32;
    case DType::BF16:
      return k.bf16;
    case DType::F8_E4M3:
      return k.fp8;
    case DType::Q8G:
      return k.q8;
    case DType::Q4G:
      return k.q4;
    case DType::BF16T:
      return k.bf16t;
    case DType::Q8GI:
      return k.q8i;
    case DType::Q4GI:
      return k.q4i;
    default:
      return nullptr;
  }
}

Kernel kernel_for(Isa isa, DType t) {
  return is_gguf_kernel_type(t) ? gemm_detail::gguf_kernel(isa, t) : kernel(table(isa), t);
}

int64_t weight_row_bytes(const WeightRef& w) {
  if (is_gguf_kernel_type(w.dtype)) return gguf_row_bytes(w.dtype, w.cols);
  return is_blocked(w.dtype) ? packed_row_bytes(w.dtype, w.cols)
                             : w.cols * int64_t(dtype_size(w.dtype));
}

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

}  // namespace

const char* isa_name(Isa isa) {
  static const char* names[] = {"scalar", "avx2", "avx512", "avx512vnni", "amx"};
  return names[int(isa)];
}

bool parse_isa(const char* name, Isa* out) {
  for (int i = 0; i <= int(Isa::kAmx); ++i)
    if (std::strcmp(name, isa_name(Isa(i))) == 0) return *out = Isa(i), true;
  return false;
}

Isa detected_isa() {
  static const Isa isa = detect_isa();
  return isa;
}
Isa active_isa() {
  return active().load(std::memory_order_relaxed);
}
void force_isa(Isa isa) {
  active().store(std::min(isa, detected_isa()));
}

namespace {

// One job's split into tasks of rc weight rows × tc tokens.
struct JobSplit {
  int64_t rc = 0, tc = 0, nrc = 0, ntc = 0;
  int64_t tasks() const { return nrc * ntc; }
};

}  // namespace

void gemm_multi(ThreadPool& pool, const GemmJob* jobs, size_t n_jobs) {
  // Decode (few tokens): weight rows stream from memory once; ~8 chunks per thread over all jobs
  // let the atomic counter absorb imbalance. Prefill: a row panel of ≤ 512 KiB stays in L2 while
  // every token block of the task reads it; tiles are halved (rows, then tokens) until there are
  // ≥ 4 tasks per thread over all jobs, so small matrices still use all threads. Chunks are
  // multiples of 16 rows / tokens (the AMX tile).
  const int64_t nth = pool.size();
  constexpr size_t kMaxJobs = 64;
  JobSplit split[kMaxJobs];
  if (n_jobs > kMaxJobs) {  // more than any layer issues; keep the split table on the stack
    for (size_t j = 0; j < n_jobs; j += kMaxJobs)
      gemm_multi(pool, jobs + j, std::min(kMaxJobs, n_jobs - j));
    return;
  }
  int64_t total_rows = 0;
  for (size_t j = 0; j < n_jobs; ++j) total_rows += jobs[j].a->n > 0 ? jobs[j].w.rows : 0;
  auto count = [&] {
    int64_t t = 0;
    for (size_t j = 0; j < n_jobs; ++j) {
      JobSplit& s = split[j];
      const int64_t n = jobs[j].a->n, M = jobs[j].w.rows;
      s.nrc = n > 0 && M > 0 ? (M + s.rc - 1) / s.rc : 0;
      s.ntc = n > 0 ? (n + s.tc - 1) / s.tc : 0;
      t += s.tasks();
    }
    return t;
  };
  for (size_t j = 0; j < n_jobs; ++j) {
    const GemmJob& g = jobs[j];
    assert(g.w.cols == g.a->k);
    const int64_t n = g.a->n;
    if (n <= 4) {
      split[j].rc = std::clamp(round_up(total_rows / (nth * 8), 64), int64_t(64), int64_t(512));
      split[j].tc = std::max<int64_t>(n, 1);
    } else {
      const int64_t rb = weight_row_bytes(g.w);
      split[j].rc = std::clamp(round_up((512 << 10) / std::max<int64_t>(rb, 1), 16), int64_t(16),
                               int64_t(256));
      split[j].tc = std::min(n, int64_t(128));
    }
  }
  int64_t tasks = count();
  for (bool shrunk = true; tasks < 4 * nth && shrunk; tasks = count()) {
    shrunk = false;
    for (size_t j = 0; j < n_jobs; ++j) {
      JobSplit& s = split[j];
      if (jobs[j].a->n <= 4) continue;
      if (s.rc > 16)
        s.rc = round_up(s.rc / 2, 16), shrunk = true;
      else if (s.tc > 16)
        s.tc = round_up(s.tc / 2, 16), shrunk = true;
    }
  }
  if (tasks == 0) return;
  Kernel fns[kMaxJobs];
  int64_t first[kMaxJobs + 1];
  first[0] = 0;
  for (size_t j = 0; j < n_jobs; ++j) {
    fns[j] = kernel_for(jobs[j].a->isa, jobs[j].w.dtype);
    assert((fns[j] || split[j].tasks() == 0) &&
           "gemm: weight dtype without a kernel (BF16, F32, F8_E4M3, Q8G, Q4G)");
    first[j + 1] = first[j] + split[j].tasks();
  }
  pool.parallel_for(size_t(tasks), 1, [&](size_t b0, size_t b1, int) {
    size_t j = 0;
    for (size_t b = b0; b < b1; ++b) {
      while (int64_t(b) >= first[j + 1]) ++j;
      const GemmJob& g = jobs[j];
      const JobSplit& s = split[j];
      const int64_t i = int64_t(b) - first[j];
      const int64_t r0 = i / s.ntc * s.rc, t0 = i % s.ntc * s.tc;
      fns[j](*g.a, g.w, r0, std::min(g.w.rows, r0 + s.rc), t0, std::min(g.a->n, t0 + s.tc), g.y,
             g.y_stride);
    }
  });
}

void gemm(ThreadPool& pool, const PreparedActs& a, const WeightRef& w, float* y, int64_t y_stride) {
  const GemmJob job{&a, w, y, y_stride};
  gemm_multi(pool, &job, 1);
}

void gemm_serial(const PreparedActs& a, const WeightRef& w, float* y, int64_t y_stride) {
  assert(w.cols == a.k);
  if (a.n <= 0 || w.rows <= 0) return;
  const Kernel fn = kernel_for(a.isa, w.dtype);
  assert(fn && "gemm: weight dtype without a kernel");
  for (int64_t t0 = 0; t0 < a.n; t0 += 128)  // token blocks as gemm's (any split is exact)
    fn(a, w, 0, w.rows, t0, std::min(a.n, t0 + 128), y, y_stride);
}

}  // namespace herd
