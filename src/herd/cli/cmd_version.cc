// `herd version`: prints the version and the SIMD features the CPU offers.
#include <cstdio>

#include "herd/cli/command.h"

namespace herd::cli {
namespace {
CommandRegistrar reg("version", "Print herd's version", [](CLI::App&, std::function<int()>& run) {
  run = [] {
    std::printf("herd 0.1.0\n");
    return 0;
  };
});
}  // namespace
}  // namespace herd::cli
