// CPUID detection agrees with the kernel's view in /proc/cpuinfo, and the dispatch target follows.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "herd/ops/cpu_features.h"
#include "herd/ops/gemm.h"

namespace herd {
namespace {

std::set<std::string> proc_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream ss(line.substr(line.find(':') + 1));
    std::set<std::string> f;
    for (std::string w; ss >> w;) f.insert(w);
    return f;
  }
  return {};
}

TEST(CpuFeatures, MatchesProcCpuinfo) {
  const auto flags = proc_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags line (not Linux x86?)";
  const CpuFeatures& f = cpu_features();
  // Linux lists a flag only when the CPU has it and the kernel enabled its state (XCR0), the
  // same two conditions cpu_features() checks.
  const std::pair<const char*, bool> checks[] = {
      {"avx2", f.avx2},
      {"fma", f.fma},
      {"f16c", f.f16c},
      {"avx512f", f.avx512f},
      {"avx512dq", f.avx512dq},
      {"avx512bw", f.avx512bw},
      {"avx512vl", f.avx512vl},
      {"avx512_vnni", f.avx512vnni},
      {"avx512_bf16", f.avx512bf16},
      {"amx_tile", f.amx_tile},
      {"amx_bf16", f.amx_bf16},
      {"amx_int8", f.amx_int8},
  };
  for (const auto& [name, have] : checks) EXPECT_EQ(flags.count(name) == 1, have) << name;
  if (f.amx_usable) {
    EXPECT_TRUE(f.amx_tile);
  }
  std::cout << "features: " << f.describe() << "\ndetected isa: " << isa_name(detected_isa())
            << "\n";
}

TEST(CpuFeatures, IsaFollowsFeatures) {
  const CpuFeatures& f = cpu_features();
  const Isa isa = detected_isa();
  EXPECT_EQ(isa >= Isa::kAvx2, f.avx2 && f.fma && f.f16c);
  if (isa >= Isa::kAvx512) {
    EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq);
  }
  if (isa >= Isa::kAvx512Vnni) {
    EXPECT_TRUE(f.avx512vnni);
  }
  if (isa == Isa::kAmx) {
    EXPECT_TRUE(f.amx_usable && f.amx_bf16 && f.amx_int8 && f.avx512bf16);
  }
}

TEST(CpuFeatures, ForceIsaClampsAndParses) {
  const Isa before = active_isa();
  force_isa(Isa::kScalar);
  EXPECT_EQ(active_isa(), Isa::kScalar);
  force_isa(Isa::kAmx);
  EXPECT_EQ(active_isa(), detected_isa());
  force_isa(before);
  Isa p;
  for (const char* s : {"scalar", "avx2", "avx512", "avx512vnni", "amx"}) {
    ASSERT_TRUE(parse_isa(s, &p)) << s;
    EXPECT_STREQ(isa_name(p), s);
  }
  EXPECT_FALSE(parse_isa("sse9", &p));
}

}  // namespace
}  // namespace herd
