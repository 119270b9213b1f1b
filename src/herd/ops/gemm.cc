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
#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

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
      k.q8 = kq.q8, k.q4 = kq.q4;
      return k;
    }
    case Isa::kAmx:
      return gemm_detail::amx_kernels();
  }
  return gemm_detail::scalar_kernels();
}

const FormatKernels& table(Isa isa) {
  static const FormatKernels t[] = {kernels_for(Isa::kScalar), kernels_for(Isa::kAvx2),
                                    kernels_for(Isa::kAvx512), kernels_for(Isa::kAvx512Vnni),
                                    kernels_for(Isa::kAmx)};
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
    default:
      return nullptr;
  }
}

int64_t weight_row_bytes(const WeightRef& w) {
  return is_packed(w.dtype) ? packed_row_bytes(w.dtype, w.cols)
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

void gemm(ThreadPool& pool, const PreparedActs& a, const WeightRef& w, float* y, int64_t y_stride) {
  assert(w.cols == a.k);
  const int64_t n = a.n, M = w.rows;
  if (n <= 0 || M <= 0) return;
  const Kernel fn = kernel(table(a.isa), w.dtype);
  assert(fn && "gemm: weight dtype without a kernel (BF16, F32, F8_E4M3, Q8G, Q4G)");
  // Decode (few tokens): weight rows stream from memory once; ~8 chunks per thread let the
  // atomic counter absorb imbalance. Prefill: a row panel of ≤ 512 KiB stays in L2 while every
  // token block of the task reads it; tokens are split too so small matrices still use all
  // threads. Chunks are multiples of 16 rows / tokens (the AMX tile).
  const int64_t nth = pool.size();
  const int64_t rb = weight_row_bytes(w);
  int64_t rc, tc;
  if (n <= 4) {
    rc = std::clamp(round_up(M / (nth * 8), 16), int64_t(16), int64_t(512));
    tc = n;
  } else {
    rc =
        std::clamp(round_up((512 << 10) / std::max<int64_t>(rb, 1), 16), int64_t(16), int64_t(256));
    tc = std::min(n, int64_t(128));
    while ((M + rc - 1) / rc * ((n + tc - 1) / tc) < 4 * nth && rc > 16) rc = round_up(rc / 2, 16);
    while ((M + rc - 1) / rc * ((n + tc - 1) / tc) < 4 * nth && tc > 16) tc = round_up(tc / 2, 16);
  }
  const int64_t nrc = (M + rc - 1) / rc, ntc = (n + tc - 1) / tc;
  pool.parallel_for(size_t(nrc * ntc), 1, [&](size_t b0, size_t b1, int) {
    for (size_t b = b0; b < b1; ++b) {
      const int64_t r0 = int64_t(b) / ntc * rc, t0 = int64_t(b) % ntc * tc;
      fn(a, w, r0, std::min(M, r0 + rc), t0, std::min(n, t0 + tc), y, y_stride);
    }
  });
}

}  // namespace herd
