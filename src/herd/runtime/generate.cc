#include "herd/runtime/generate.h"

#include <algorithm>
#include <chrono>

namespace herd {

Result<GenerateStats> generate(Sequence& seq, std::span<const int32_t> prompt,
                               const GenerateOptions& opt,
                               const std::function<bool(int32_t)>& on_token) {
  using clock = std::chrono::steady_clock;
  GenerateStats st;
  st.prompt_tokens = int64_t(prompt.size());
  const int64_t V = seq.decoder().vocab_size();
  std::vector<float> logits(static_cast<size_t>(V));
  std::vector<int32_t> history(prompt.begin(), prompt.end());

  auto t0 = clock::now();
  HERD_TRY(seq.append_last(prompt, logits.data()));
  st.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  Sampler sampler(opt.sampling);
  for (int64_t i = 0; i < opt.max_tokens; ++i) {
    const int32_t tok = sampler.sample(logits.data(), V, history);
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), tok) != opt.stop_ids.end()) {
      st.hit_stop = true;
      break;
    }
    ++st.generated;
    history.push_back(tok);
    if (on_token && !on_token(tok)) break;
    if (i + 1 == opt.max_tokens) break;  // no need to evaluate a token nobody samples after
    auto t1 = clock::now();
    HERD_TRY(seq.append_last(std::span<const int32_t>(&tok, 1), logits.data()));
    st.decode_seconds += std::chrono::duration<double>(clock::now() - t1).count();
    ++st.decode_steps;
  }
  return st;
}

}  // namespace herd
