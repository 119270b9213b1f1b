#include "herd/runtime/request_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>

namespace herd {

const char* request_field_name(RequestField f, RequestNaming naming) {
  const bool cli = naming == RequestNaming::kCliFlags;
  switch (f) {
    case RequestField::kTemperature:
      return cli ? "--temp" : "temperature";
    case RequestField::kTopP:
      return cli ? "--top-p" : "top_p";
    case RequestField::kTopK:
      return cli ? "--top-k" : "top_k";
    case RequestField::kMinP:
      return cli ? "--min-p" : "min_p";
    case RequestField::kRepetitionPenalty:
      return cli ? "--repeat-penalty" : "repetition_penalty";
    case RequestField::kMaxTokens:
      return cli ? "--n-predict" : "max_tokens";
    case RequestField::kContext:
      return cli ? "--ctx" : "context";
  }
  return "?";
}

std::string sampling_value_problem(RequestField f, double v) {
  auto got = [&](const char* expected) { return fmt::format("got {}, expected {}", v, expected); };
  // NaN fails every comparison below, so each test is written as "ok" and negated.
  switch (f) {
    case RequestField::kTemperature:
      if (!(std::isfinite(v) && v >= 0)) return got("a finite number >= 0 (0 = greedy)");
      break;
    case RequestField::kTopP:
      if (!(v > 0 && v <= 1)) return got("a number in (0, 1] (1 = off)");
      break;
    case RequestField::kTopK:
      if (!(v >= 0 && v <= INT_MAX && v == std::trunc(v)))
        return got(fmt::format("an integer in [0, {}] (0 = off)", INT_MAX).c_str());
      break;
    case RequestField::kMinP:
      if (!(v >= 0 && v <= 1)) return got("a number in [0, 1] (0 = off)");
      break;
    case RequestField::kRepetitionPenalty:
      if (!(std::isfinite(v) && v > 0)) return got("a finite number > 0 (1 = off)");
      break;
    case RequestField::kMaxTokens:
    case RequestField::kContext:
      if (!(v >= 1 && v <= double(INT64_MAX) && v == std::trunc(v))) return got("an integer >= 1");
      break;
  }
  return {};
}

Status check_sampling(const SamplingParams& p, RequestNaming naming) {
  const std::pair<RequestField, double> fields[] = {
      {RequestField::kTemperature, p.temperature},
      {RequestField::kTopP, p.top_p},
      {RequestField::kTopK, double(p.top_k)},
      {RequestField::kMinP, p.min_p},
      {RequestField::kRepetitionPenalty, p.repetition_penalty},
  };
  for (const auto& [f, v] : fields) {
    const std::string problem = sampling_value_problem(f, v);
    if (!problem.empty()) return make_error("{}: {}", request_field_name(f, naming), problem);
  }
  return Status::ok();
}

Status check_generation_length(int64_t prompt_tokens, int64_t max_tokens, int64_t context,
                               RequestNaming naming) {
  const char* n = request_field_name(RequestField::kMaxTokens, naming);
  if (max_tokens < 1) return make_error("{}: got {}, expected an integer >= 1", n, max_tokens);
  if (context < 1)
    return make_error("{}: got {}, expected an integer >= 1",
                      request_field_name(RequestField::kContext, naming), context);
  // Written as a subtraction: prompt + max_tokens could overflow for absurd requests.
  if (prompt_tokens > context || max_tokens > context - prompt_tokens)
    return make_error(
        "the prompt ({} tokens) plus {} ({}) exceeds the context of {} tokens; shorten the "
        "prompt or ask for at most {} tokens",
        prompt_tokens, n, max_tokens, context, std::max<int64_t>(context - prompt_tokens, 0));
  return Status::ok();
}

int64_t context_limit(int64_t max_position_embeddings, int64_t requested) {
  return requested > 0 ? std::min(requested, max_position_embeddings) : max_position_embeddings;
}

}  // namespace herd
