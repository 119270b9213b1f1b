#include "herd/cli/model_session.h"

#include <algorithm>

namespace herd::cli {

Result<std::unique_ptr<ModelSession>> ModelSession::open(const std::string& dir, int threads) {
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
  }
  s->pool_ = std::make_unique<ThreadPool>(threads);
  s->decoder_ = std::make_unique<TextDecoder>(s->model_, *s->pool_);
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

void SamplingFlags::add_to(CLI::App& app) {
  app.add_option("--temp", temperature, "Temperature (0 = greedy)");
  app.add_option("--top-k", top_k, "Top-k (0 = off)");
  app.add_option("--top-p", top_p, "Top-p nucleus (1 = off)");
  app.add_option("--min-p", min_p, "Min-p (0 = off)");
  app.add_option("--repeat-penalty", repetition_penalty, "Repetition penalty (1 = off)");
  app.add_option("--seed", seed, "Random seed");
}

void SamplingFlags::apply(SamplingParams& p) const {
  if (temperature) p.temperature = *temperature;
  if (top_k) p.top_k = *top_k;
  if (top_p) p.top_p = *top_p;
  if (min_p) p.min_p = *min_p;
  if (repetition_penalty) p.repetition_penalty = *repetition_penalty;
  if (seed) p.seed = *seed;
}

namespace {
// Length of the longest prefix of s that does not end inside a UTF-8 sequence still missing
// continuation bytes (a later token may complete it).
size_t complete_prefix(const std::string& s) {
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
}  // namespace

bool Utf8Printer::print(int32_t token) {
  auto bytes = tok_.token_bytes(token);
  if (!bytes) return false;
  pending_.append(bytes->data(), bytes->size());
  const size_t n = complete_prefix(pending_);
  std::fwrite(pending_.data(), 1, n, out_);
  std::fflush(out_);
  pending_.erase(0, n);
  return true;
}

void Utf8Printer::finish() {
  if (!pending_.empty()) std::fputs("\xEF\xBF\xBD", out_);
  pending_.clear();
}

}  // namespace herd::cli
