// libFuzzer target over the safetensors readers (io/safetensors.cc, io/tensor_store.cc): the
// first byte picks a shard's header+data (SafetensorsFile::parse: header length, JSON, dtypes,
// shapes, offsets, overlaps) or model.safetensors.index.json (parse_safetensors_index). Every
// accepted tensor's first and last byte is read, so a view past the input shows up under ASan.
// Built with clang by tests/fuzz/build.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "herd/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t sink = 0;
  if (data[0] & 1) {
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    auto idx = herd::parse_safetensors_index(text, "fuzz.index.json");
    if (idx)
      for (const auto& [shard, names] : *idx) sink += shard.size() + names.size();
    return sink == 0xdeadbeef;
  }
  auto f = herd::SafetensorsFile::parse(data + 1, size - 1, "fuzz.safetensors");
  if (!f) return 0;
  for (const auto& t : (*f)->tensors()) {
    if ((*f)->find(t.name) == nullptr) __builtin_trap();
    const auto* p = static_cast<const uint8_t*>(t.data);
    if (t.nbytes > 0) sink += p[0] + p[t.nbytes - 1];
  }
  return sink == 0xdeadbeef;
}
