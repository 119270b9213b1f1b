// The single-sequence generation loop: prefill, then sample / decode until max tokens or a stop
// id. The server's continuous batching drives the same Sequence/Sampler pieces.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "herd/runtime/sampler.h"
#include "herd/runtime/sequence.h"

namespace herd {

struct GenerateOptions {
  int64_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // from config.json / generation_config.json / tokenizer
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t generated = 0;        // tokens sampled (a stop token is not counted)
  double prefill_seconds = 0;   // prompt evaluation
  double decode_seconds = 0;    // evaluation of generated tokens
  int64_t decode_steps = 0;
  bool hit_stop = false;
};

// on_token is called for each generated (non-stop) token; return false to stop early.
Result<GenerateStats> generate(Sequence& seq, std::span<const int32_t> prompt,
                               const GenerateOptions& opt,
                               const std::function<bool(int32_t)>& on_token);

}  // namespace herd
