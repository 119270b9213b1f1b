// Streamed text: stop strings across token boundaries (never partly emitted), tool-call holding,
// and the OpenAI chunk / error / usage shapes with SSE framing.
#include <gtest/gtest.h>

#include <cmath>

#include "herd/server/logprobs.h"
#include "herd/server/openai_format.h"
#include "herd/server/stop_matcher.h"
#include "herd/server/tool_stream.h"

namespace herd::server {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces, std::string* emitted) {
  std::string all;
  for (const std::string& p : pieces) {
    const std::string out = m.push(p);
    if (emitted) emitted->append(out);
    all += out;
  }
  return all;
}

TEST(StopMatcher, MatchesAcrossPiecesAndHoldsPrefixes) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("hello S"), "hello ");  // "S" may start STOP
  EXPECT_EQ(m.push("T"), "");
  EXPECT_EQ(m.push("OP and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("x"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, ReleasesFalseStarts) {
  StopMatcher m({"STOP"});
  std::string out;
  feed(m, {"ST", "OR", "Y"}, &out);
  EXPECT_EQ(out, "STORY");
  EXPECT_FALSE(m.stopped());
  StopMatcher tail({"\n\n"});
  EXPECT_EQ(tail.push("a\n"), "a");
  EXPECT_EQ(tail.flush(), "\n");
}

TEST(StopMatcher, EarliestOfSeveral) {
  StopMatcher m({"cd", "b"});
  EXPECT_EQ(m.push("abcd"), "a");
  EXPECT_TRUE(m.stopped());
  StopMatcher none({});
  EXPECT_EQ(none.push("xyz"), "xyz");
}

TEST(StopMatcher, EveryPieceSplitOfAText) {
  // Whatever the token boundaries, the emitted text is the text before the first stop.
  const std::string text = "one two STOP three";
  for (size_t a = 1; a < text.size(); ++a)
    for (size_t b = a; b < text.size(); ++b) {
      StopMatcher m({"STOP", "zz"});
      std::string out =
          feed(m, {text.substr(0, a), text.substr(a, b - a), text.substr(b)}, nullptr);
      out += m.flush();
      EXPECT_EQ(out, "one two ") << a << "," << b;
    }
}

TEST(ToolStream, PlainTextStreamsWhenToolsOff) {
  ToolStream s(false);
  EXPECT_EQ(s.add("[not a call"), "[not a call");
  EXPECT_EQ(s.finish().content, "");
}

TEST(ToolStream, HoldsACallAndParsesIt) {
  ToolStream s(true);
  EXPECT_EQ(s.add("Let me check. "), "Let me check. ");
  EXPECT_EQ(s.add("[get_weather(ci"), "");
  EXPECT_EQ(s.add("ty=\"Paris\")]"), "");
  ParsedAssistant p = s.finish();
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].name, "get_weather");
  EXPECT_EQ(p.tool_calls[0].arguments["city"], "Paris");
}

TEST(ToolStream, HeldTextThatIsNoCallBecomesContent) {
  ToolStream s(true);
  std::string out = s.add("a <");
  out += s.add("b> [1, 2");
  ParsedAssistant p = s.finish();
  EXPECT_TRUE(p.tool_calls.empty());
  EXPECT_EQ(out + p.content, "a <b> [1, 2");
}

TEST(ToolStream, PythonTagParallelCalls) {
  ToolStream s(true);
  s.add("<|python_start|>[a(x=1), b()]<|python_end|>");
  ParsedAssistant p = s.finish();
  ASSERT_EQ(p.tool_calls.size(), 2u);
  ojson d = tool_call_deltas(p.tool_calls, "id_");
  EXPECT_EQ(d[1]["index"], 1);
  EXPECT_EQ(d[1]["id"], "id_1");
  EXPECT_EQ(d[0]["function"]["name"], "a");
  EXPECT_EQ(d[0]["function"]["arguments"], "{\"x\": 1}");
}

TEST(OpenAIFormat, ChunkShapeAndSse) {
  ResponseMeta m{"chatcmpl-x", 123, "tiny", "fp"};
  ojson c = chat_chunk(m, 0, {{"role", "assistant"}, {"content", ""}}, nullptr);
  EXPECT_EQ(c["object"], "chat.completion.chunk");
  EXPECT_EQ(c["id"], "chatcmpl-x");
  EXPECT_EQ(c["system_fingerprint"], "fp");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(c["choices"][0]["delta"]["role"], "assistant");
  const std::string sse = sse_event(c);
  EXPECT_EQ(sse.rfind("data: {", 0), 0u);
  EXPECT_EQ(sse.substr(sse.size() - 2), "\n\n");
  EXPECT_EQ(std::string(sse_done()), "data: [DONE]\n\n");
  ojson u = chat_usage_chunk(m, {5, 3, 2});
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["total_tokens"], 8);
  EXPECT_EQ(u["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
}

TEST(OpenAIFormat, InvalidUtf8IsReplacedNotThrown) {
  EXPECT_EQ(dump(ojson("a\xF0\x9F")), "\"a\xEF\xBF\xBD\"");
}

TEST(OpenAIFormat, ErrorObjectNamesParam) {
  ojson e = error_body(400, "temperature: got 5, expected a number in [0, 2]");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "temperature");
  EXPECT_TRUE(error_body(400, "the prompt is long: yes")["error"]["param"].is_null());
  EXPECT_EQ(error_body(401, "no key")["error"]["code"], "invalid_api_key");
  EXPECT_EQ(error_body(429, "full")["error"]["type"], "rate_limit_error");
}

TEST(OpenAIFormat, ChatChoiceWithToolCalls) {
  ParsedAssistant p;
  p.tool_calls.push_back({"f", ojson{{"a", 1}}});
  ojson c = chat_choice(0, p, "tool_calls", nullptr);
  EXPECT_TRUE(c["message"]["content"].is_null());
  EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(c["finish_reason"], "tool_calls");
}

TEST(Logprobs, LogSoftmaxAndTop) {
  const float logits[4] = {1.0f, 3.0f, 2.0f, 3.0f};
  RowLogprobs r = summarize_row(logits, 4, 2);
  double z = 0;
  for (float l : logits) z += std::exp(double(l));
  EXPECT_NEAR(r.log_norm, std::log(z), 1e-9);
  ASSERT_EQ(r.top.size(), 2u);
  EXPECT_EQ(r.top[0].first, 1);  // ties: lower id first
  EXPECT_EQ(r.top[1].first, 3);
  TokenLogprob t = token_logprob(r, logits, 2);
  EXPECT_NEAR(t.logprob, 2.0 - std::log(z), 1e-6);
}

}  // namespace
}  // namespace herd::server
