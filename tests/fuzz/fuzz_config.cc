// libFuzzer target over config.json and generation_config.json parsing (model/config.cc,
// config_ranges.cc): the first byte picks which. parse_config runs finalize_config and the range
// checks, so an accepted config has been through every check a model load applies before any
// tensor is read; the round trip through config_to_json must then parse again.
// Built with clang by tests/fuzz/build.sh.
#include <cstddef>
#include <cstdint>
#include <string>

#include "herd/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    (void)herd::parse_generation_config(text, "fuzz/generation_config.json");
    return 0;
  }
  auto cfg = herd::parse_config(text, "fuzz/config.json");
  if (!cfg) return 0;
  // What herd writes (`herd synth`) from an accepted config must be accepted again.
  if (!herd::parse_config(herd::config_to_json(*cfg), "fuzz/roundtrip.json")) __builtin_trap();
  return 0;
}
