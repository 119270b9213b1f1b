#include "herd/cli/model_session.h"

#include <algorithm>

#include "herd/cli/flag_checks.h"
#include "herd/model/run_weights.h"

namespace herd::cli {

Result<std::unique_ptr<ModelSession>> ModelSession::open(const std::string& dir, int threads,
                                                         Precision precision, QuantMode quant) {
  auto s = std::make_unique<ModelSession>();
  HERD_ASSIGN_OR_RETURN(s->model_, load_model(dir));
  HERD_ASSIGN_OR_RETURN(s->tokenizer_, Tokenizer::load(dir));
  HERD_ASSIGN_OR_RETURN(GenerationConfig gen, load_generation_config(dir));
  const Llama4TextConfig& t = s->model_.config.text;
  if (s->tokenizer_->vocab_size() > t.vocab_size)
    return make_error("{}: tokenizer has {} tokens but config.json vocab_size is {}", dir,
                      s->tokenizer_->vocab_size(), t.vocab_size);
  auto add_stop = [&](int64_t id) {
    if (id >= 0 && id < t.vocab_size &&
        std::find(s->stop_ids_.begin(), s->stop_ids_.end(), int32_t(id)) == s->stop_ids_.end())
      s->stop_ids_.push_back(int32_t(id));
  };
  for (int64_t id : t.eos_token_id) add_stop(id);
  for (int64_t id : gen.eos_token_id) add_stop(id);
  if (gen.do_sample.value_or(false)) {
    s->sampling_.temperature = gen.temperature.value_or(1.0f);
    s->sampling_.top_p = gen.top_p.value_or(1.0f);
    s->sampling_.top_k = gen.top_k.value_or(0);
    s->sampling_.min_p = gen.min_p.value_or(0.0f);
    if (Status st = check_sampling(s->sampling_, RequestNaming::kApiFields); !st)
      return st.with_context(dir + "/generation_config.json");
  }
  s->pool_ = std::make_unique<ThreadPool>(threads);
  HERD_TRY(prepare_weights(s->model_, precision, quant, *s->pool_));
  s->decoder_ = std::make_unique<TextDecoder>(s->model_, *s->pool_, precision);
  return s;
}

std::vector<int32_t> ModelSession::encode_prompt(const std::string& text, bool add_bos) const {
  std::vector<int32_t> ids;
  const auto& bos = model_.config.text.bos_token_id;
  if (add_bos && !bos.empty()) ids.push_back(int32_t(bos[0]));
  auto body = tokenizer_->encode(text, /*allow_special=*/false);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

void EngineFlags::add_to(CLI::App& app) {
  app.add_option("--precision", precision, "auto (fast kernels, default) or f32 (reference)");
  app.add_option("--quant", quant, "Run format of BF16 weights: bf16, int8, int4, int4-all");
}

Result<Precision> EngineFlags::parsed_precision() const {
  if (precision == "auto") return Precision::kAuto;
  if (precision == "f32") return Precision::kF32;
  return make_error("--precision {}: expected auto or f32", precision);
}

Result<QuantMode> EngineFlags::parsed_quant() const {
  auto q = parse_quant_mode(quant);
  if (!q) return make_error("--quant {}: expected bf16, int8, int4 or int4-all", quant);
  return *q;
}

Status prepare_weights(LoadedModel& m, Precision p, QuantMode q, ThreadPool& pool) {
  if (p == Precision::kF32) return prepare_reference_weights(m, pool);
  QuantOptions opt;
  opt.mode = q;
  return prepare_run_weights(m, opt, pool);
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

void Utf8Printer::finish() { emit(decoder_.flush()); }

}  // namespace herd::cli
