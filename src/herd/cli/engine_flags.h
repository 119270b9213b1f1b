// The flags every command that runs the model shares, parsed in one place into EngineOptions
// (runtime/engine.h), plus the sampling flags and the streaming UTF-8 printer.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>

#include "herd/runtime/engine.h"
#include "herd/runtime/sampler.h"
#include "herd/tokenizer/stream_decoder.h"

namespace herd::cli {

// -m/--model, -t/--threads, --precision auto|f32, --quant bf16|int8|int4|int4-all,
// --kv-type f32|bf16|int8|fp8-e4m3, --kv-size BYTES, --ctx N, --ubatch N (prefill slice: the
// scheduler's per-step token budget), --parallel N (sequences in one batch), --mpi and
// --mpi-timeout SECONDS (expert parallelism under mpirun).
struct EngineFlags {
  std::string model;
  int threads = 0;
  std::string precision = "auto";
  std::string quant = "bf16";
  std::string kv_type;                 // empty: by precision
  std::optional<std::string> kv_size;  // bytes, with an optional K/M/G suffix; unset: automatic
  int64_t ctx = 0;
  int64_t ubatch = 512;
  int64_t parallel = 1;
  bool mpi = false;  // expert parallelism under mpirun (dist/cluster.h)
  double mpi_timeout = 60;
  // model_required: add -m as a required option (false where the command adds its own rules).
  void add_to(CLI::App& app, bool model_required = true);
  Result<EngineOptions> options() const;
};

Result<Precision> parse_precision(const std::string& s);
// A byte count with an optional K/M/G/T suffix (powers of 1024); errors name `flag`.
Result<int64_t> parse_byte_size(const std::string& flag, const std::string& s);
Result<QuantMode> parse_quant(const std::string& s);

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
