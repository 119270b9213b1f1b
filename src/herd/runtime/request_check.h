// One validation layer for sampling and generation settings, used by the CLI now and the
// OpenAI-compatible server later: the rules live here once, the names differ (the CLI says
// `--temp`, the API says `temperature`), so every check takes the naming to use.
//
// Messages have one form: "<name>: got <value>, expected <allowed range>".
#pragma once

#include <cstdint>
#include <string>

#include "herd/base/status.h"
#include "herd/runtime/sampler.h"

namespace herd {

enum class RequestNaming { kCliFlags, kApiFields };

enum class RequestField {
  kTemperature,
  kTopP,
  kTopK,
  kMinP,
  kRepetitionPenalty,
  kMaxTokens,
  kContext,
};

// "--temp" / "temperature", "--n-predict" / "max_tokens", ...
const char* request_field_name(RequestField f, RequestNaming naming);

// What is wrong with one value, without the name ("got nan, expected a finite number >= 0
// (0 = greedy)"); empty when the value is allowed. The CLI's parser checks each flag with these
// as it reads it, so the rules exist once.
std::string sampling_value_problem(RequestField f, double value);

// Every field of `p` (temperature finite >= 0, top_p in (0, 1], top_k >= 0, min_p in [0, 1],
// repetition_penalty finite > 0: the penalty divides positive logits).
Status check_sampling(const SamplingParams& p, RequestNaming naming);

// max_tokens >= 1, and prompt plus max_tokens within the context the model can address.
Status check_generation_length(int64_t prompt_tokens, int64_t max_tokens, int64_t context,
                               RequestNaming naming);

// The context a request may fill: the model's max_position_embeddings, or `requested` (a --ctx
// flag, the server's setting) when it is given (> 0) and smaller.
int64_t context_limit(int64_t max_position_embeddings, int64_t requested);

}  // namespace herd
