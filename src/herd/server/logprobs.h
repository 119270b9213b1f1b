// Log-probabilities of sampled tokens for `logprobs` / `top_logprobs`: the model's own
// distribution (log-softmax of the raw logits, before temperature and filters), which is what
// OpenAI reports.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace herd::server {

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // best first (logprob desc, id asc)
};

// Summary of one logits row kept until the sampled token is known.
struct RowLogprobs {
  double log_norm = 0;  // log Σ exp(logit)
  std::vector<std::pair<int32_t, float>> top;
};

RowLogprobs summarize_row(const float* logits, int64_t vocab, int top_k);
inline TokenLogprob token_logprob(const RowLogprobs& r, const float* logits, int32_t id) {
  return {id, float(double(logits[id]) - r.log_norm), r.top};
}

}  // namespace herd::server
