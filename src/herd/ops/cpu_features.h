// What the processor we run on can execute, read once from CPUID / XGETBV (DESIGN.md "Kernels":
// one binary, paths chosen at run time). A feature counts only if the OS also saves its register
// state (XCR0), so e.g. AVX-512 on a kernel that does not enable ZMM state reads as absent.
#pragma once

#include <string>

namespace herd {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;              // Haswell / Zen 1
  bool avx512f = false, avx512bw = false, avx512vl = false;  // Skylake-X / Zen 4
  bool avx512dq = false;
  bool avx512vnni = false;                                    // vpdpbusd (Cascade Lake / Zen 4)
  bool avx512bf16 = false;                                    // vdpbf16ps (Cooper Lake / Zen 4)
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;  // Sapphire Rapids
  // AMX tile state is usable by this process: XCR0 bits 17/18 set and the kernel granted
  // ARCH_REQ_XCOMP_PERM (Linux ≥ 5.16 asks each process to request it once).
  bool amx_usable = false;

  std::string describe() const;  // "avx2 fma avx512f ... amx_int8" for logs and the bench
};

// Detected once (thread-safe static); the AMX permission request happens here too.
const CpuFeatures& cpu_features();

}  // namespace herd
