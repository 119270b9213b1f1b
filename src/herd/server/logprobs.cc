#include "herd/server/logprobs.h"

#include <algorithm>
#include <cmath>

namespace herd::server {

RowLogprobs summarize_row(const float* logits, int64_t vocab, int top_k) {
  RowLogprobs r;
  float mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - mx);
  r.log_norm = double(mx) + std::log(sum);
  if (top_k <= 0) return r;
  const int64_t k = std::min<int64_t>(top_k, vocab);
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) ids[size_t(i)] = int32_t(i);
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), better);
  for (int64_t i = 0; i < k; ++i)
    r.top.emplace_back(ids[size_t(i)], float(double(logits[ids[size_t(i)]]) - r.log_norm));
  return r;
}

}  // namespace herd::server
