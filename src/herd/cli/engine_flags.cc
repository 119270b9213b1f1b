#include "herd/cli/engine_flags.h"

#include "herd/cli/flag_checks.h"

#include <algorithm>

#include "herd/ops/kv_quant.h"

namespace herd::cli {

void EngineFlags::add_to(CLI::App& app, bool model_required) {
  auto* m = app.add_option("-m,--model", model, "Model directory or .gguf file");
  if (model_required) m->required();
  app.add_option("-t,--threads", threads, "Threads (default: physical cores)")
      ->check(threads_flag());
  app.add_option("--precision", precision, "auto (fast kernels, default) or f32 (reference)")
      ->check(CLI::IsMember({"auto", "f32"}));
  app.add_option("--quant", quant, fmt::format("Run format of BF16 weights: {}", kQuantModeList))
      ->check(CLI::IsMember(
          std::vector<std::string>(std::begin(kQuantModeNames), std::end(kQuantModeNames))));
  app.add_option("--kv-type", kv_type,
                 "KV cache type: f32, bf16, int8, fp8-e4m3 (default: f32 with --precision f32, "
                 "else bf16)")
      ->check(CLI::IsMember({"f32", "bf16", "int8", "fp8-e4m3"}));
  app.add_option("--kv-size", kv_size,
                 "Global-layer KV pool in bytes (K/M/G suffixes; default: enough for the "
                 "context, at most half the free memory)");
  app.add_option("--ctx", ctx,
                 "Most tokens of prompt plus reply (default and maximum: max_position_embeddings)")
      ->check(int_in(1, kMaxTokensFlag));
  app.add_option("--ubatch", ubatch, "Prompt tokens per forward step (prefill slice)")
      ->check(int_in(1, 1 << 20));
  app.add_option("--parallel", parallel, "Sequences stepped together")->check(int_in(1, 4096));
  app.add_flag("--mpi", mpi,
               "Expert parallelism: run under mpirun -np N; each rank holds 1/N of the routed "
               "experts, rank 0 prints");
  app.add_option("--mpi-timeout", mpi_timeout,
                 "Seconds a rank waits for the others before failing the request (--mpi)")
      ->check(CLI::Range(0.1, 86400.0));
}

Result<Precision> parse_precision(const std::string& s) {
  if (s == "auto") return Precision::kAuto;
  if (s == "f32") return Precision::kF32;
  return make_error("--precision {}: expected auto or f32", s);
}

Result<QuantMode> parse_quant(const std::string& s) {
  auto q = parse_quant_mode(s);
  if (!q) return make_error("--quant {}: expected {}", s, kQuantModeList);
  return *q;
}

Result<int64_t> parse_byte_size(const std::string& flag, const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    return make_error("{} {}: expected a byte count like 8G or 512M", flag, s);
  }
  std::string suffix = s.substr(used);
  double mult = 1;
  if (suffix == "K" || suffix == "k")
    mult = 1024.0;
  else if (suffix == "M" || suffix == "m")
    mult = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "g")
    mult = 1024.0 * 1024 * 1024;
  else if (suffix == "T" || suffix == "t")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else if (!suffix.empty())
    return make_error("{} {}: unknown suffix '{}' (K, M, G or T)", flag, s, suffix);
  if (!(v > 0) || v * mult > 1e15)
    return make_error("{} {}: must be positive and at most 1e15 bytes", flag, s);
  return int64_t(v * mult);
}

Result<EngineOptions> EngineFlags::options() const {
  EngineOptions o;
  o.model_dir = model;
  o.threads = threads;
  HERD_ASSIGN_OR_RETURN(o.precision, parse_precision(precision));
  HERD_ASSIGN_OR_RETURN(o.quant, parse_quant(quant));
  if (!kv_type.empty()) {
    KvType t;
    if (!parse_kv_type(kv_type, &t))
      return make_error("--kv-type {}: expected f32, bf16, int8 or fp8-e4m3", kv_type);
    o.kv_type = t;
  }
  if (kv_size) {
    HERD_ASSIGN_OR_RETURN(o.kv_bytes, parse_byte_size("--kv-size", *kv_size));
  }
  if (ctx < 0) return make_error("--ctx {}: must be >= 1 (0 = the model's limit)", ctx);
  if (ubatch < 1) return make_error("--ubatch {}: must be >= 1", ubatch);
  if (parallel < 1 || parallel > 4096)
    return make_error("--parallel {}: must be in 1..4096", parallel);
  o.sched.context = ctx;
  o.sched.step_tokens = ubatch;
  o.sched.max_seqs = parallel;
  o.mpi = mpi;
  o.mpi_timeout = mpi_timeout;
  return o;
}

void SamplingFlags::add_to(CLI::App& app) {
  // Ranges: runtime/request_check.h (the rules the server will use too).
  app.add_option("--temp", temperature, "Temperature (0 = greedy)")
      ->check(sampling_flag(RequestField::kTemperature));
  app.add_option("--top-k", top_k, "Top-k (0 = off)")->check(sampling_flag(RequestField::kTopK));
  app.add_option("--top-p", top_p, "Top-p nucleus (1 = off)")
      ->check(sampling_flag(RequestField::kTopP));
  app.add_option("--min-p", min_p, "Min-p (0 = off)")->check(sampling_flag(RequestField::kMinP));
  app.add_option("--repeat-penalty", repetition_penalty, "Repetition penalty (1 = off)")
      ->check(sampling_flag(RequestField::kRepetitionPenalty));
  app.add_option("--seed", seed, "Random seed")->check(uint64_flag());
}

void SamplingFlags::apply(SamplingParams& p) const {
  if (temperature) p.temperature = *temperature;
  if (top_k) p.top_k = *top_k;
  if (top_p) p.top_p = *top_p;
  if (min_p) p.min_p = *min_p;
  if (repetition_penalty) p.repetition_penalty = *repetition_penalty;
  if (seed) p.seed = *seed;
}

void Utf8Printer::emit(const std::string& s) {
  if (s.empty()) return;
  text_ += s;
  if (out_) {
    std::fwrite(s.data(), 1, s.size(), out_);
    std::fflush(out_);
  }
}

bool Utf8Printer::print(int32_t token) {
  auto piece = decoder_.push(token);
  if (!piece) {
    // The model's vocabulary is larger than its tokenizer's (e.g. a synthetic `bench` model with
    // the byte-level fallback): say so instead of stopping silently.
    std::fprintf(stderr, "\nherd: error: cannot print generated token: %s\n",
                 piece.status().message().c_str());
    return false;
  }
  emit(*piece);
  return true;
}

void Utf8Printer::finish() {
  emit(decoder_.flush());
}

}  // namespace herd::cli
