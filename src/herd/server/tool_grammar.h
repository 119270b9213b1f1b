// The grammar of a forced tool call (`tool_choice: "required"` or a named function): Llama 4's
// pythonic call list (spec §4.4), the form its instruct models are prompted for,
//   [get_weather(city="Paris", days=3), other_tool()]
// with each function's arguments taken from its JSON schema: only declared parameter names, each
// at most once, every required one before ")", and values of the declared type (string, integer,
// number, boolean, null, enum, array of items; anything else takes any Python literal). The
// separators are exactly ", " and "=", so the text parse_tool_calls reads is the text generated.
//
// ToolCallGrammar is a fixed-size value type, copied for every candidate token by
// GrammarConstraint (runtime/token_constraint.h); names and enums are matched with bit masks of
// the candidates still possible, so the limits below are per request.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "herd/base/status.h"

namespace herd::server {

struct ToolSchema {
  static constexpr size_t kMaxChoices = 64;  // tools, parameters of one tool, enum values
  static constexpr int kMaxDepth = 8;        // nested arrays / dicts in one value
  struct Node {
    enum Kind : uint8_t { kString, kInteger, kNumber, kLiterals, kArray, kDict, kAny };
    Kind kind = kAny;
    std::vector<std::string> literals;  // kLiterals: the values as Python literals
    int32_t item = -1;                  // kArray: the items' node
  };
  // Nodes every schema has, at fixed indices (kAny turns into them at its first byte).
  static constexpr int32_t kStringNode = 0, kAnyNode = 1, kConstNode = 2, kAnyArrayNode = 3,
                           kDictNode = 4, kNumberNode = 5;
  struct Param {
    std::string name;
    int32_t node = kAnyNode;
  };
  struct Tool {
    std::string name;
    std::vector<Param> params;
    uint64_t required = 0;  // bit i: params[i] must be given
  };
  std::vector<Node> nodes;
  std::vector<Tool> tools;
  uint64_t allowed = 0;  // bit i: tools[i] may be called
};

// From the request's validated OpenAI `tools` array; `only` names the forced function (empty:
// any of them). Errors name the tools[i] field beyond the limits.
Result<std::shared_ptr<const ToolSchema>> compile_tool_schema(const nlohmann::ordered_json& tools,
                                                              const std::string& only);

class ToolCallGrammar {
 public:
  explicit ToolCallGrammar(std::shared_ptr<const ToolSchema> schema);
  bool feed(uint8_t c);
  bool complete() const { return phase_ == kDone; }

 private:
  enum Phase : uint8_t {
    kOpen,
    kName,
    kArgs,
    kArgsNext,
    kParam,
    kValue,
    kAfterValue,
    kArgSep,
    kAfterCall,
    kCallSep,
    kDone,
  };
  struct Frame {
    uint64_t cand = 0;  // kLiterals: literals still matching
    int32_t node = 0;
    uint16_t len = 0;  // bytes of this value so far
    uint8_t kind = 0;  // the node's kind, or what kAny became
    uint8_t phase = 0;
  };
  enum class Step : uint8_t { kTake, kTakeDone, kEnd, kPushed, kBad };

  bool feed_value(uint8_t c);
  Step step(Frame& f, uint8_t c);
  bool push(int32_t node);
  bool start_param(uint8_t c);

  std::shared_ptr<const ToolSchema> s_;
  Phase phase_ = kOpen;
  int32_t tool_ = -1;
  uint16_t pos_ = 0;  // bytes of the name being matched
  uint64_t cand_ = 0, used_ = 0;
  std::array<Frame, ToolSchema::kMaxDepth> stack_{};
  uint8_t depth_ = 0;
};

}  // namespace herd::server
