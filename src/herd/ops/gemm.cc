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
#include "herd/quant/format_table.h"
#include "herd/quant/formats.h"
#include "herd/quant/gguf_blocks.h"

namespace herd {

using gemm_detail::Kernel;
using gemm_detail::KernelSet;

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

// Each target's kernels: the ISA files' sets overlaid in order (later wins), from the portable
// scalar set up, so a format no faster file implements keeps the scalar kernel. (BF16T is made
// for AMX and AVX512_BF16 machines, Q8GI / Q4GI for VNNI ones (run_weights.cc); other targets
// only meet them when forced below the ISA active at load (tests).)
// F16 and ggml's block formats (ops/gemm_gguf*.cc): one kernel per type per ISA file.
KernelSet gguf_kernels(gemm_detail::Kernel (*of)(DType)) {
  KernelSet s;
  for (size_t i = 0; i < kDTypeCount; ++i)
    if (is_gguf_kernel_type(DType(i))) s.overlay({{DType(i), of(DType(i))}});
  return s;
}

KernelSet kernels_for(Isa isa) {
  using namespace gemm_detail;
  KernelSet k = scalar_kernels();
  k.overlay(gguf_kernels(gguf_scalar_kernel));
  if (isa >= Isa::kAvx2) k.overlay(gguf_kernels(gguf_avx2_kernel));
  if (isa == Isa::kAvx512Vnni || isa == Isa::kAmx) k.overlay(gguf_kernels(gguf_vnni_kernel));
  switch (isa) {
    case Isa::kScalar:
      break;
    case Isa::kAvx2:
      k.overlay(avx2_kernels()).overlay(avx2_il_kernels());
      break;
    case Isa::kAvx512:  // int8 without VNNI: AVX2's
      k.overlay(avx2_kernels()).overlay(avx2_il_kernels()).overlay(avx512_kernels());
      break;
    case Isa::kAvx512Vnni:
      k.overlay(cpu_features().avx512bf16 ? avx512_bf16_kernels() : avx512_kernels())
          .overlay(vnni_kernels())
          .overlay(vnni_il_kernels());
      if (cpu_features().avx512bf16) k.overlay(bf16t_dpbf16_kernels());
      break;
    case Isa::kAmx:
      // Interleaved int weights on an AMX machine (loaded with the VNNI target active): VNNI
      // reads them, bitwise like every other int path.
      k.overlay(avx512_bf16_kernels()).overlay(vnni_il_kernels()).overlay(amx_kernels());
      break;
  }
  return k;
}

// Resolved once per target; gemm looks a job's kernel up once per call.
const KernelSet& table(Isa isa) {
  static const KernelSet t[] = {kernels_for(Isa::kScalar), kernels_for(Isa::kAvx2),
                                kernels_for(Isa::kAvx512), kernels_for(Isa::kAvx512Vnni),
                                kernels_for(Isa::kAmx)};
  return t[int(isa)];
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
      const int64_t rb = format_row_bytes(g.w.dtype, g.w.cols);
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
    fns[j] = table(jobs[j].a->isa)[jobs[j].w.dtype];
    assert((fns[j] || split[j].tasks() == 0) &&
           "gemm: weight dtype without a kernel on this target (ops/gemm_internal.h KernelSet)");
    first[j + 1] = first[j] + split[j].tasks();
  }
  // Tasks in job, row, token order: each thread walks a contiguous share of the weights.
  pool.parallel_ranges(size_t(tasks), [&](size_t b, int) {
    const size_t j =
        size_t(std::upper_bound(first + 1, first + n_jobs + 1, int64_t(b)) - first - 1);
    const GemmJob& g = jobs[j];
    const JobSplit& s = split[j];
    const int64_t i = int64_t(b) - first[j];
    const int64_t r0 = i / s.ntc * s.rc, t0 = i % s.ntc * s.tc;
    fns[j](*g.a, g.w, r0, std::min(g.w.rows, r0 + s.rc), t0, std::min(g.a->n, t0 + s.tc), g.y,
           g.y_stride);
  });
}

void gemm(ThreadPool& pool, const PreparedActs& a, const WeightRef& w, float* y, int64_t y_stride) {
  const GemmJob job{&a, w, y, y_stride};
  gemm_multi(pool, &job, 1);
}

void gemm_serial(const PreparedActs& a, const WeightRef& w, float* y, int64_t y_stride) {
  assert(w.cols == a.k);
  if (a.n <= 0 || w.rows <= 0) return;
  const Kernel fn = table(a.isa)[w.dtype];
  assert(fn && "gemm: weight dtype without a kernel");
  for (int64_t t0 = 0; t0 < a.n; t0 += 128)  // token blocks as gemm's (any split is exact)
    fn(a, w, 0, w.rows, t0, std::min(a.n, t0 + 128), y, y_stride);
}

}  // namespace herd
