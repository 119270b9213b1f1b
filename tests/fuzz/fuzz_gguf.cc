// libFuzzer target over the GGUF reader (io/gguf_read.cc): header, metadata of every value type,
// tensor infos and the offset / size checks against the input's length. Whatever it accepts is
// walked in full (every value described and read back, every tensor's bytes touched), so a view
// that points past the input shows up under ASan. Built with clang by tests/fuzz/build.sh.
#include <cstddef>
#include <cstdint>

#include "herd/io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = herd::gguf::Reader::parse(data, size, "fuzz.gguf");
  if (!r) return 0;
  size_t sink = 0;
  for (const auto& kv : r->metadata()) {
    sink += kv.value.describe().size();
    int64_t i = 0;
    double d = 0;
    std::vector<int64_t> ints;
    std::vector<double> floats;
    sink += kv.value.get_int(&i) + kv.value.get_float(&d);
    if (kv.value.get_ints(&ints)) sink += ints.size();
    if (kv.value.get_floats(&floats)) sink += floats.size();
    if (const auto* s = kv.value.get_strings()) sink += s->size();
    if (r->find(kv.key) == nullptr) __builtin_trap();  // every key read must be found again
  }
  for (const auto& t : r->tensors()) {
    if (r->find_tensor(t.name) == nullptr) __builtin_trap();
    if (t.nbytes > 0) sink += t.data[0] + t.data[t.nbytes - 1];
  }
  return sink == 0xdeadbeef;  // keeps `sink` alive; libFuzzer ignores the value
}
