// What the generating commands (run, chat, bench) share: a loaded model, its tokenizer, the
// decoder, the stop ids and sampling defaults read from config.json / generation_config.json.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "herd/base/thread_pool.h"
#include "herd/model/text.h"
#include "herd/quant/quantize.h"
#include "herd/runtime/sampler.h"
#include "herd/tokenizer/stream_decoder.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd::cli {

class ModelSession {
 public:
  // Precision kAuto prepares the run weights in `quant`'s format (model/run_weights.h; a
  // pre-quantized model keeps its own); kF32 prepares what the reference needs (an error for
  // pre-quantized models).
  static Result<std::unique_ptr<ModelSession>> open(const std::string& dir, int threads,
                                                    Precision precision = Precision::kF32,
                                                    QuantMode quant = QuantMode::kBF16);

  TextDecoder& decoder() { return *decoder_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const LoadedModel& model() const { return model_; }
  ThreadPool& pool() { return *pool_; }

  // BOS (from config.json, when it names one) + the text as ordinary tokens.
  std::vector<int32_t> encode_prompt(const std::string& text, bool add_bos) const;
  // Union of config.json's and generation_config.json's eos ids (never hard-coded).
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  // generation_config.json's sampling values when do_sample, else greedy.
  SamplingParams sampling_defaults() const { return sampling_; }

 private:
  LoadedModel model_;
  std::optional<Tokenizer> tokenizer_;  // Tokenizer has no empty state
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<TextDecoder> decoder_;
  std::vector<int32_t> stop_ids_;
  SamplingParams sampling_;
};

// --precision auto|f32 and --quant bf16|int8|int4|int4-all, shared by every command that runs
// the model. auto (the default) uses the run-format weights and the SIMD kernels; f32 is the
// reference path conformance is measured on.
struct EngineFlags {
  std::string precision = "auto";
  std::string quant = "bf16";
  void add_to(CLI::App& app);
  Result<Precision> parsed_precision() const;
  Result<QuantMode> parsed_quant() const;
};
// Converts / maps the weights the chosen precision reads (prepare_run_weights or
// prepare_reference_weights).
Status prepare_weights(LoadedModel& m, Precision p, QuantMode q, ThreadPool& pool);

// --temp/--top-k/--top-p/--min-p/--repeat-penalty/--seed; unset flags keep the defaults.
struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  void add_to(CLI::App& app);
  void apply(SamplingParams& p) const;
};

// Prints generated tokens as they come (StreamDecoder holds back incomplete UTF-8) and keeps
// the text for the caller (chat history, tool-call parsing).
class Utf8Printer {
 public:
  Utf8Printer(const Tokenizer& tok, std::FILE* out) : decoder_(tok), out_(out) {}
  bool print(int32_t token);  // false on an unknown id (generation stops)
  void finish();              // flushes what is held back (invalid bytes become U+FFFD)
  const std::string& text() const { return text_; }

 private:
  void emit(const std::string& s);
  StreamDecoder decoder_;
  std::FILE* out_;
  std::string text_;
};

}  // namespace herd::cli
