// The sampling / generation validation layer (runtime/request_check.h): every rule at its
// boundaries, NaN and infinities, in both namings.
#include "herd/runtime/request_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace herd {
namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

std::string err(const SamplingParams& p, RequestNaming n = RequestNaming::kCliFlags) {
  Status s = check_sampling(p, n);
  return s.is_ok() ? "" : s.message();
}

TEST(RequestCheck, DefaultsAndBoundariesPass) {
  EXPECT_EQ(err(SamplingParams{}), "");
  SamplingParams p;
  p.temperature = 0;
  p.top_p = 1;
  p.top_k = 0;
  p.min_p = 1;
  p.repetition_penalty = 1e-3f;
  EXPECT_EQ(err(p), "");
  p.top_p = 1e-6f;
  p.min_p = 0;
  p.temperature = 100;
  EXPECT_EQ(err(p), "");
}

TEST(RequestCheck, EachFieldNamedWithValueAndRange) {
  struct Case {
    void (*set)(SamplingParams&);
    const char* cli;
    const char* api;
    const char* message;  // after the name
  };
  const Case cases[] = {
      {[](SamplingParams& p) { p.temperature = kNan; }, "--temp", "temperature",
       ": got nan, expected a finite number >= 0 (0 = greedy)"},
      {[](SamplingParams& p) { p.temperature = kInf; }, "--temp", "temperature",
       ": got inf, expected a finite number >= 0 (0 = greedy)"},
      {[](SamplingParams& p) { p.temperature = -1; }, "--temp", "temperature",
       ": got -1, expected a finite number >= 0 (0 = greedy)"},
      {[](SamplingParams& p) { p.top_p = 0; }, "--top-p", "top_p",
       ": got 0, expected a number in (0, 1] (1 = off)"},
      {[](SamplingParams& p) { p.top_p = 2; }, "--top-p", "top_p",
       ": got 2, expected a number in (0, 1] (1 = off)"},
      {[](SamplingParams& p) { p.top_p = kNan; }, "--top-p", "top_p",
       ": got nan, expected a number in (0, 1] (1 = off)"},
      {[](SamplingParams& p) { p.top_k = -5; }, "--top-k", "top_k",
       ": got -5, expected an integer in [0, 2147483647] (0 = off)"},
      {[](SamplingParams& p) { p.min_p = 2; }, "--min-p", "min_p",
       ": got 2, expected a number in [0, 1] (0 = off)"},
      {[](SamplingParams& p) { p.min_p = kNan; }, "--min-p", "min_p",
       ": got nan, expected a number in [0, 1] (0 = off)"},
      {[](SamplingParams& p) { p.repetition_penalty = 0; }, "--repeat-penalty",
       "repetition_penalty", ": got 0, expected a finite number > 0 (1 = off)"},
      {[](SamplingParams& p) { p.repetition_penalty = -1; }, "--repeat-penalty",
       "repetition_penalty", ": got -1, expected a finite number > 0 (1 = off)"},
      {[](SamplingParams& p) { p.repetition_penalty = kInf; }, "--repeat-penalty",
       "repetition_penalty", ": got inf, expected a finite number > 0 (1 = off)"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.set(p);
    EXPECT_EQ(err(p, RequestNaming::kCliFlags), std::string(c.cli) + c.message);
    EXPECT_EQ(err(p, RequestNaming::kApiFields), std::string(c.api) + c.message);
  }
}

TEST(RequestCheck, GenerationLength) {
  EXPECT_TRUE(check_generation_length(10, 6, 16, RequestNaming::kCliFlags).is_ok());
  Status s = check_generation_length(10, 7, 16, RequestNaming::kCliFlags);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message(),
            "the prompt (10 tokens) plus --n-predict (7) exceeds the context of 16 tokens; "
            "shorten the prompt or ask for at most 6 tokens");
  s = check_generation_length(101, 1, 16, RequestNaming::kApiFields);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("max_tokens (1) exceeds the context of 16"), std::string::npos);
  s = check_generation_length(1, 0, 16, RequestNaming::kApiFields);
  EXPECT_EQ(s.message(), "max_tokens: got 0, expected an integer >= 1");
  s = check_generation_length(1, -1, 16, RequestNaming::kCliFlags);
  EXPECT_EQ(s.message(), "--n-predict: got -1, expected an integer >= 1");
  // No overflow for absurd requests.
  EXPECT_FALSE(check_generation_length(INT64_MAX, INT64_MAX, 16, RequestNaming::kCliFlags));
}

TEST(RequestCheck, ContextLimit) {
  EXPECT_EQ(context_limit(16, 0), 16);
  EXPECT_EQ(context_limit(16, 8), 8);
  EXPECT_EQ(context_limit(16, 100), 16);
}

TEST(RequestCheck, ValueProblemForFlags) {
  EXPECT_EQ(sampling_value_problem(RequestField::kTopK, 3), "");
  EXPECT_EQ(sampling_value_problem(RequestField::kTopK, 2.5),
            "got 2.5, expected an integer in [0, 2147483647] (0 = off)");
  EXPECT_EQ(sampling_value_problem(RequestField::kTopK, 1e12),
            "got 1000000000000, expected an integer in [0, 2147483647] (0 = off)");
}

}  // namespace
}  // namespace herd
