// Parsing tool calls out of model output (spec §4.4).
#include <gtest/gtest.h>

#include "herd/tokenizer/chat_format.h"
#include "herd/tokenizer/tool_calls.h"

namespace herd {
namespace {

using ojson = nlohmann::ordered_json;

ParsedAssistant parse(std::string_view s) {
  return parse_tool_calls(s);
}

TEST(ToolCalls, PythonicList) {
  auto p = parse(R"([get_weather(city="San Francisco", days=3), ping()])");
  ASSERT_EQ(p.tool_calls.size(), 2u);
  EXPECT_EQ(p.content, "");
  EXPECT_EQ(p.tool_calls[0].name, "get_weather");
  EXPECT_EQ(p.tool_calls[0].arguments, ojson::parse(R"({"city": "San Francisco", "days": 3})"));
  EXPECT_EQ(p.tool_calls[1].name, "ping");
  EXPECT_EQ(p.tool_calls[1].arguments, ojson::object());
}

TEST(ToolCalls, PythonLiteralsNested) {
  auto p = parse(
      "[f(a='it\\'s', b=\"tab\\there\\u00e9\", c=-1.5e3, d=True, e=None, g=false, h=null, "
      "i=[1, [2, (3, 4)], {'k': {'n': [True]}}], j={1: 'x'}, k=1_000, l=[],)]");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  const ojson& a = p.tool_calls[0].arguments;
  EXPECT_EQ(a["a"], "it's");
  EXPECT_EQ(a["b"], "tab\there\u00e9");
  EXPECT_EQ(a["c"], -1500.0);
  EXPECT_TRUE(a["c"].is_number_float());
  EXPECT_EQ(a["d"], true);
  EXPECT_TRUE(a["e"].is_null());
  EXPECT_EQ(a["g"], false);
  EXPECT_TRUE(a["h"].is_null());
  EXPECT_EQ(a["i"], ojson::parse(R"([1, [2, [3, 4]], {"k": {"n": [true]}}])"));
  EXPECT_EQ(a["j"], ojson::parse(R"({"1": "x"})"));
  EXPECT_EQ(a["k"], 1000);
  EXPECT_EQ(a["l"], ojson::array());
}

TEST(ToolCalls, PythonStartWrapperAndStopTokens) {
  auto p = parse("<|python_start|>[search(query=\"llama 4\")]<|python_end|><|eom|>");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].name, "search");
  p = parse("Sure.<|python_start|>lookup(id=7)<|python_end|>");  // bare call inside the wrapper
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.content, "Sure.");
  EXPECT_EQ(p.tool_calls[0].arguments["id"], 7);
}

TEST(ToolCalls, ProseBeforeTheCall) {
  auto p = parse("Let me look that up for you.\n\n[get_time(tz=\"UTC\")]<|eot|>");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.content, "Let me look that up for you.");
  p = parse("Using x[0] and {braces} first: {\"name\": \"f\", \"parameters\": {\"a\": 1}}");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.content, "Using x[0] and {braces} first:");
}

TEST(ToolCalls, JsonForms) {
  auto p = parse(R"({"name": "get_weather", "parameters": {"city": "Paris", "n": [1, 2]}})");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].arguments, ojson::parse(R"({"city": "Paris", "n": [1, 2]})"));
  p = parse(R"({"type": "function", "name": "f", "arguments": "{\"x\": true}"})");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].arguments["x"], true);
  p = parse(R"([{"name": "a", "parameters": {}}, {"name": "b", "arguments": {"y": null}}])");
  ASSERT_EQ(p.tool_calls.size(), 2u);
  EXPECT_EQ(p.tool_calls[1].name, "b");
}

TEST(ToolCalls, FunctionTags) {
  auto p = parse(
      "Checking.<function=get_weather>{\"city\": \"Rome\"}</function>\n"
      "<function=ping>{}</function>");
  ASSERT_EQ(p.tool_calls.size(), 2u);
  EXPECT_EQ(p.content, "Checking.");
  EXPECT_EQ(p.tool_calls[0].arguments["city"], "Rome");
}

TEST(ToolCalls, MalformedIsPlainText) {
  for (const char* s : {"[f(a=1)", "[f(1, 2)]", "[f(a=)]", "[f(a='unterminated)]", "{\"name\": 3}",
                        "{\"name\": \"f\"}", "<function=f>{bad}</function>", "[f(a=1)] and more",
                        "just prose", "", "[", "[[[[[[[[[[", "<|python_start|>print(", "[f(a=1e)]",
                        "[f(a=\"\\x4\")]", "[f(a={'k' 1})]"}) {
    auto p = parse(s);
    EXPECT_TRUE(p.tool_calls.empty()) << s;
    EXPECT_EQ(p.content, s);
  }
  std::string deep(10000, '[');  // deep nesting must not overflow the stack
  EXPECT_TRUE(parse("[f(a=" + deep + ")]").tool_calls.empty());
}

TEST(ToolCalls, OpenAiMessage) {
  auto m = to_openai_message(parse("[f(a=1, b='x')]"));
  EXPECT_TRUE(m["content"].is_null());
  ASSERT_EQ(m["tool_calls"].size(), 1u);
  EXPECT_EQ(m["tool_calls"][0]["id"], "call_0");
  EXPECT_EQ(m["tool_calls"][0]["type"], "function");
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"], "{\"a\": 1, \"b\": \"x\"}");
  auto plain = to_openai_message(parse("hello"));
  EXPECT_EQ(plain["content"], "hello");
  EXPECT_FALSE(plain.contains("tool_calls"));
}

TEST(ToolCalls, ToolDefinitionsRenderLikeTheTemplate) {
  ojson tools =
      ojson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
  EXPECT_EQ(render_tool_definitions(tools),
            "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"f\",\n"
            "        \"parameters\": {}\n    }\n}\n\n");
  EXPECT_EQ(python_json_dumps(ojson::parse(R"({"a": [1, 2.5, "é"], "b": {}})")),
            "{\"a\": [1, 2.5, \"é\"], \"b\": {}}");
}

}  // namespace
}  // namespace herd
