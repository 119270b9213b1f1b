// Shared by the runtime tests: a synthetic model per (preset, chunk, quant), opened once, with a
// decoder on the f32 reference path or the fast path, and deterministic token streams.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "herd/convert/synth.h"
#include "herd/model/run_weights.h"
#include "herd/model/text.h"

namespace herd::testutil {

// One pool for every test of a binary (the models below are prepared with it).
inline ThreadPool& test_pool() {
  static ThreadPool pool(2);
  return pool;
}

// "f32" (reference weights) or a --quant name for the fast path.
struct ModelCase {
  std::string preset = "tiny";
  int64_t chunk = 16;
  std::string quant = "f32";
  int64_t head_dim = 0;  // 0: the preset's
};

inline LoadedModel& runtime_model(const ModelCase& c, ThreadPool& pool) {
  static std::map<std::string, std::unique_ptr<LoadedModel>> cache;
  const std::string model = c.preset + "-" + std::to_string(c.chunk) +
                            (c.head_dim > 0 ? "-hd" + std::to_string(c.head_dim) : "");
  const std::string key = model + "-" + c.quant;
  auto& slot = cache[key];
  if (!slot) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("herd_test_runtime_" + model + "_" + std::to_string(::getpid()));
    if (!std::filesystem::exists(dir / "config.json")) {
      SynthOptions opt;
      opt.preset = c.preset;
      opt.out_dir = dir.string();
      opt.seed = 11;
      opt.attention_chunk_size = c.chunk;
      if (c.head_dim > 0) opt.head_dim = c.head_dim;
      Status s = synth_model(opt);
      EXPECT_TRUE(s.is_ok()) << s.message();
    }
    auto m = load_model(dir.string());
    EXPECT_TRUE(m.is_ok()) << m.status().message();
    slot = std::make_unique<LoadedModel>(std::move(m).value());
    if (c.quant == "f32") {
      Status s = prepare_reference_weights(*slot, pool);
      EXPECT_TRUE(s.is_ok()) << s.message();
    } else {
      QuantOptions q;
      q.mode = *parse_quant_mode(c.quant);
      Status s = prepare_run_weights(*slot, q, pool);
      EXPECT_TRUE(s.is_ok()) << s.message();
    }
  }
  return *slot;
}

inline Precision precision_of(const ModelCase& c) {
  return c.quant == "f32" ? Precision::kF32 : Precision::kAuto;
}

inline std::vector<int32_t> lcg_tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint32_t x = seed * 2654435761u + 1;
  for (auto& v : t) {
    x = x * 1664525u + 1013904223u;
    v = int32_t((x >> 8) % uint32_t(vocab));
  }
  return t;
}

}  // namespace herd::testutil
