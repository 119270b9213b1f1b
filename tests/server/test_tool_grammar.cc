// Forced tool calls: the grammar accepts exactly the calls the schema allows, and decoding under
// it with the real Llama 4 vocabulary always yields text that parse_tool_calls turns into calls
// whose arguments match the schema.
#include <gtest/gtest.h>

#include <random>

#include "herd/runtime/sampler.h"
#include "herd/runtime/token_constraint.h"
#include "herd/server/tool_grammar.h"
#include "herd/tokenizer/tool_calls.h"
#include "tokenizer/llama4_tokenizer.h"

namespace herd::server {
namespace {

using ojson = nlohmann::ordered_json;

const ojson& tools() {
  static const ojson t = ojson::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
      "properties": {"city": {"type": "string", "enum": ["Paris", "Par", "Tokyo"]},
                     "days": {"type": "integer"},
                     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                     "detailed": {"type": "boolean"}},
      "required": ["city", "days"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
      "properties": {"zone": {"type": "string"}, "offsets": {"type": "array",
                     "items": {"type": "number"}}, "extra": {}}}}},
    {"type": "function", "function": {"name": "ping"}}
  ])");
  return t;
}

std::shared_ptr<const ToolSchema> schema(const std::string& only = "") {
  auto s = compile_tool_schema(tools(), only);
  EXPECT_TRUE(s) << s.status().message();
  return *s;
}

// How far `text` gets: -1 when all of it is accepted, else the index of the first refused byte.
int refused_at(const std::string& text, const std::string& only = "", bool* complete = nullptr) {
  ToolCallGrammar g(schema(only));
  for (size_t i = 0; i < text.size(); ++i)
    if (!g.feed(uint8_t(text[i]))) return int(i);
  if (complete) *complete = g.complete();
  return -1;
}

TEST(ToolGrammar, AcceptsWellFormedCalls) {
  for (const char* ok : {
           R"([get_weather(city="Paris", days=3)])",
           R"([get_weather(days=-12, city="Par", unit="fahrenheit", detailed=False)])",
           R"([get_weather(city="Tokyo", days=0), ping()])",
           R"([get_time(zone="Europe/Paris \"x\"\n", offsets=[1.5, -2, 0.25])])",
           R"([get_time(extra={"a": [1, "b", None], "c": {}}), get_time(offsets=[])])",
           R"([get_time(extra=True), get_time(extra=-0.5), get_time()])",
       }) {
    bool complete = false;
    EXPECT_EQ(refused_at(ok, "", &complete), -1) << ok;
    EXPECT_TRUE(complete) << ok;
    const ParsedAssistant p = parse_tool_calls(ok);
    EXPECT_FALSE(p.tool_calls.empty()) << ok;
    EXPECT_EQ(p.content, "") << ok;
  }
}

TEST(ToolGrammar, RefusesWhatTheSchemaForbids) {
  struct Case {
    const char* text;
    int at;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"(get_weather)", 0},                   // not a list
           {R"([get_wether()", 7},                  // unknown function
           {R"([get_weather(town=)", 13},           // unknown parameter
           {R"([get_weather(city="Paris"))", 25},   // days is required
           {R"([get_weather(city="Lyon")", 19},     // not in the enum
           {R"([get_weather(days=3, days=4)", 22},  // given twice ("d" may start detailed)
           {R"([get_weather(days="3")", 18},        // not an integer
           {R"([get_weather(days=03)", 19},         // Python has no leading zeros
           {R"([get_weather(days=1.5)", 19},        // integer, not number
           {R"([get_weather(days=1234567890123456789)", 36},  // beyond 18 digits: not int64
           {R"([get_weather(days=3,city="Paris")", 20},       // ", " is the separator
           {R"([get_weather(detailed=true)", 22},             // Python's True
           {R"([ping(x=1)])", 6},                             // ping takes no parameter
           {R"([ping(), ping()]])", 16},                      // nothing after the list
           {R"([get_time(zone="a\qb")])", 18},                // unknown escape
       }) {
    EXPECT_EQ(refused_at(c.text), c.at) << c.text;
  }
  // A named tool_choice allows only that function.
  EXPECT_EQ(refused_at("[get_time()]", "ping"), 1);
  EXPECT_EQ(refused_at("[ping()]", "ping"), -1);
  // After every parameter is given, ", " cannot start another one.
  EXPECT_EQ(refused_at(R"([get_weather(city="Paris", days=1, unit="celsius", detailed=True,)"), 64);
  EXPECT_FALSE(compile_tool_schema(tools(), "nope"));
}

// Greedy and sampled decoding over random logits with the Llama 4 vocabulary: whatever the
// logits, the constrained output is a list of valid calls (the property the server relies on).
TEST(ToolGrammar, ConstrainedDecodingAlwaysYieldsValidCalls) {
  const Tokenizer& tok = test::llama4_tokenizer();
  const auto bytes = TokenBytes::of(tok);
  const int64_t vocab = tok.vocab_size();
  std::vector<float> logits(static_cast<size_t>(vocab));
  int finished = 0;
  for (int trial = 0; trial < 12; ++trial) {
    const std::string only = trial % 3 == 0 ? "get_weather" : "";
    GrammarConstraint<ToolCallGrammar> c(bytes, ToolCallGrammar(schema(only)));
    std::mt19937 rng(uint32_t(1000 + trial));
    std::normal_distribution<float> noise(0.0f, 2.0f);
    SamplingParams sp;
    sp.temperature = trial % 2 ? 0.8f : 0.0f;
    sp.seed = uint64_t(trial);
    Sampler sampler(sp);
    std::vector<int32_t> out;
    while (!c.complete() && out.size() < 400) {
      for (int64_t i = 0; i < vocab; ++i) {
        logits[size_t(i)] = noise(rng);
        // Steer towards closing quotes and brackets so free strings and lists end in a test's
        // time; the grammar alone decides what is legal.
        const std::string& b = bytes->bytes[size_t(i)];
        if (b.find_first_of("\")]") != std::string::npos) logits[size_t(i)] += 6.0f;
      }
      ASSERT_GT(c.mask(logits.data(), vocab), 0);
      const int32_t id = sampler.sample(logits.data(), vocab, {});
      ASSERT_FALSE(std::isinf(logits[size_t(id)])) << "sampled a masked token";
      c.accept(id);
      out.push_back(id);
    }
    if (!c.complete()) continue;  // a long free string: allowed, just not finished here
    ++finished;
    const std::string text = tok.decode(out).value();
    const ParsedAssistant p = parse_tool_calls(text);
    ASSERT_FALSE(p.tool_calls.empty()) << text;
    EXPECT_EQ(p.content, "") << text;
    for (const ToolCall& call : p.tool_calls) {
      if (!only.empty()) {
        EXPECT_EQ(call.name, only) << text;
      }
      if (call.name == "get_weather") {
        const ojson& a = call.arguments;
        ASSERT_TRUE(a.contains("city") && a.contains("days")) << text;
        const std::string city = a["city"].get<std::string>();
        EXPECT_TRUE(city == "Paris" || city == "Par" || city == "Tokyo") << text;
        EXPECT_TRUE(a["days"].is_number_integer()) << text;
        if (a.contains("detailed")) {
          EXPECT_TRUE(a["detailed"].is_boolean()) << text;
        }
      } else if (call.name == "get_time") {
        if (call.arguments.contains("zone")) {
          EXPECT_TRUE(call.arguments["zone"].is_string()) << text;
        }
        for (const ojson& v : call.arguments.value("offsets", ojson::array())) {
          EXPECT_TRUE(v.is_number()) << text;
        }
      } else {
        EXPECT_EQ(call.name, "ping") << text;
        EXPECT_TRUE(call.arguments.empty()) << text;
      }
    }
  }
  EXPECT_GE(finished, 9);
}

}  // namespace
}  // namespace herd::server
