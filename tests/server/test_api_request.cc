// The request parser/validator: every field's types and ranges, and the 400 messages naming the
// field (the fuzz target in tests/fuzz/ runs the same function on random bodies).
#include <gtest/gtest.h>

#include "herd/server/api_request.h"

namespace herd::server {
namespace {

Result<ApiRequest> chat(const std::string& extra) {
  return parse_api_request(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}])" + extra + "}", Endpoint::kChat);
}

std::string error_of(const Result<ApiRequest>& r) {
  EXPECT_FALSE(r) << "expected an error";
  return r ? std::string() : r.status().message();
}

TEST(ApiRequest, MinimalChat) {
  auto r = chat("");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->n, 1);
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->max_tokens.has_value());
  EXPECT_EQ(r->messages.size(), 1u);
}

TEST(ApiRequest, AllFields) {
  auto r = chat(R"(,"max_completion_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":40,
      "min_p":0.05,"seed":-3,"presence_penalty":0,"frequency_penalty":0.0,"stop":["a","bc"],"n":3,
      "logprobs":true,"top_logprobs":2,"stream":true,"stream_options":{"include_usage":true},
      "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
      "tool_choice":{"type":"function","function":{"name":"f"}},"user":"x",
      "response_format":{"type":"text"},"cache_prompt":false)");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(*r->max_tokens, 7);
  EXPECT_FLOAT_EQ(*r->sampling.temperature, 0.5f);
  EXPECT_EQ(*r->sampling.top_k, 40);
  EXPECT_EQ(*r->sampling.seed, uint64_t(int64_t(-3)));
  EXPECT_EQ(r->stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(r->n, 3);
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 2);
  EXPECT_TRUE(r->stream && r->include_usage);
  EXPECT_EQ(r->tool_choice, ToolChoice::kNamed);
  EXPECT_EQ(r->tool_name, "f");
  EXPECT_FALSE(r->cache_prompt);
  EXPECT_TRUE(chat("")->cache_prompt);
}

TEST(ApiRequest, ContentPartsAndRoles) {
  auto r = parse_api_request(R"({"messages":[
      {"role":"system","content":[{"type":"text","text":"be brief"}]},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function",
         "function":{"name":"f","arguments":"{\"x\": 1}"}}]},
      {"role":"tool","tool_call_id":"c","content":"42"},
      {"role":"developer","content":"d"}]})",
                             Endpoint::kChat);
  ASSERT_TRUE(r) << r.status().message();
  // Arguments text becomes the object the template prints.
  EXPECT_EQ(r->messages[2]["tool_calls"][0]["function"]["arguments"]["x"], 1);
  EXPECT_EQ(r->messages[4]["role"], "system");
}

TEST(ApiRequest, ErrorsNameTheField) {
  struct Case {
    std::string extra, field;
  };
  const Case cases[] = {
      {R"(,"temperature":"hot")", "temperature: got a string"},
      {R"(,"temperature":3)", "temperature: got 3"},
      {R"(,"top_p":0)", "top_p: got 0"},
      {R"(,"top_k":1.5)", "top_k: got 1.5"},
      {R"(,"min_p":2)", "min_p: got 2"},
      {R"(,"max_tokens":0)", "max_tokens: got 0"},
      {R"(,"max_tokens":"5")", "max_tokens: got a string"},
      {R"(,"n":9)", "n: got 9, expected an integer in [1, 8]"},
      {R"(,"stop":[1])", "stop[0]: got an integer"},
      {R"(,"stop":["a","b","c","d","e"])", "stop: 5 strings"},
      {R"(,"stop":"")", "stop: expected a non-empty"},
      {R"(,"top_logprobs":3)", "top_logprobs: requires logprobs"},
      {R"(,"logprobs":true,"top_logprobs":21)", "top_logprobs: got 21"},
      {R"(,"logprobs":1)", "logprobs: got an integer, expected a boolean"},
      {R"(,"presence_penalty":2.5)", "presence_penalty: got 2.5, expected a number in [-2, 2]"},
      {R"(,"frequency_penalty":9)", "frequency_penalty: got 9, expected a number in [-2, 2]"},
      {R"(,"logit_bias":{"x":5})", "logit_bias: key 'x' is not a token id"},
      {R"(,"logit_bias":{"7":101})", "logit_bias.7: got 101, expected a number in [-100, 100]"},
      {R"(,"logit_bias":{"7":"a"})", "logit_bias.7: got \"a\""},
      {R"(,"stream":1)", "stream: got an integer"},
      {R"(,"cache_prompt":"no")", "cache_prompt: got a string"},
      {R"(,"stream_options":{"include_usage":true})", "stream_options: only allowed"},
      {R"(,"response_format":{"type":"json_object"})", "response_format.type: \"json_object\""},
      {R"(,"response_format":{"type":"json_schema","json_schema":{}})",
       "response_format.type: \"json_schema\" is not supported"},
      {R"(,"tools":{})", "tools: got an object"},
      {R"(,"tools":[{"type":"function","function":{"name":""}}])", "tools[0].function.name"},
      {R"(,"tool_choice":"required")", "tool_choice: a tool is required"},
      {R"(,"tool_choice":"maybe")", "tool_choice: got \"maybe\""},
      {R"(,"tools":[{"type":"function","function":{"name":"f"}}],
          "tool_choice":{"type":"function","function":{"name":"g"}})",
       "tool_choice.function.name: \"g\" is not one of the tools"},
      {R"(,"model":5)", "model: got an integer"},
      {R"(,"seed":1e30)", "seed: got 1e+30, expected an integer"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of(chat(c.extra));
    EXPECT_EQ(msg.rfind(c.field, 0), 0u) << c.extra << " -> " << msg;
  }
}

TEST(ApiRequest, MessageErrors) {
  struct Case {
    std::string body, field;
  };
  const Case cases[] = {
      {R"({})", "messages: required"},
      {R"({"messages":"hi"})", "messages: got a string"},
      {R"({"messages":[]})", "messages: expected at least one"},
      {R"({"messages":[5]})", "messages[0]: got an integer"},
      {R"({"messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"king","content":"x"}]})", "messages[0].role: got \"king\""},
      {R"({"messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":7}]})", "messages[0].content: got an integer"},
      {R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})",
       "messages[0].content[0].text"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
       "messages[0].content[0]: image content needs a model with a vision encoder"},
      {R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f",
          "arguments":"{bad"}}]}]})",
       "messages[0].tool_calls[0].function.arguments"},
      {R"([1,2])", "request body: got an array"},
      {R"({"messages":)", "request body: malformed JSON"},
      {std::string(100, '[') + std::string(100, ']'), "request body: JSON nested deeper"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of(parse_api_request(c.body, Endpoint::kChat));
    EXPECT_EQ(msg.rfind(c.field, 0), 0u) << c.body << " -> " << msg;
  }
}

TEST(ApiRequest, Completions) {
  auto r =
      parse_api_request(R"({"prompt":"Once","max_tokens":3,"logprobs":2})", Endpoint::kCompletions);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->prompt_text, "Once");
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 2);
  auto ids = parse_api_request(R"({"prompt":[1,2,3]})", Endpoint::kCompletions);
  ASSERT_TRUE(ids);
  EXPECT_EQ(ids->prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(error_of(parse_api_request(R"({"prompt":[1,-2]})", Endpoint::kCompletions))
                .rfind("prompt[1]", 0),
            0u);
  EXPECT_EQ(
      error_of(parse_api_request(R"({"prompt":""})", Endpoint::kCompletions)).rfind("prompt:", 0),
      0u);
  EXPECT_EQ(error_of(parse_api_request(R"({"prompt":"a","echo":true})", Endpoint::kCompletions))
                .rfind("echo:", 0),
            0u);
  EXPECT_EQ(error_of(parse_api_request(R"({"prompt":"a","logprobs":6})", Endpoint::kCompletions))
                .rfind("logprobs: got 6", 0),
            0u);
}

TEST(ApiRequest, OverridesApplyOnlyWhatWasSet) {
  auto r = chat(R"(,"top_k":-1,"seed":5)");
  ASSERT_TRUE(r);
  SamplingParams p;
  p.temperature = 0.6f;
  p.top_p = 0.9f;
  r->sampling.apply(p);
  EXPECT_FLOAT_EQ(p.temperature, 0.6f);
  EXPECT_FLOAT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.top_k, 0);  // -1 = off
  EXPECT_EQ(p.seed, 5u);
}

}  // namespace
}  // namespace herd::server
