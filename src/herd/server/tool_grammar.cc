#include "herd/server/tool_grammar.h"

#include <fmt/format.h>

#include <bit>

namespace herd::server {
namespace {

using ojson = nlohmann::ordered_json;
using Node = ToolSchema::Node;

// A JSON value as the Python literal the model writes (parse_tool_calls reads both spellings of
// true/false/null; Python's is what Meta's prompt asks for).
Result<std::string> python_literal(const ojson& v, const std::string& where) {
  if (v.is_boolean()) return std::string(v.get<bool>() ? "True" : "False");
  if (v.is_null()) return std::string("None");
  if (v.is_number()) return v.dump();
  if (!v.is_string())
    return make_error("{}: only strings, numbers, booleans and null can be forced", where);
  std::string out = "\"";
  for (const char c : v.get<std::string>()) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (uint8_t(c) < 0x20) {
      return make_error("{}: a control character other than \\n, \\t, \\r", where);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct Compiler {
  ToolSchema& s;

  int32_t add(Node n) {
    s.nodes.push_back(std::move(n));
    return int32_t(s.nodes.size() - 1);
  }

  Result<int32_t> literals(const ojson& values, const std::string& where) {
    if (!values.is_array() || values.empty())
      return make_error("{}: expected a non-empty array", where);
    if (values.size() > ToolSchema::kMaxChoices)
      return make_error("{}: {} values, at most {} can be forced", where, values.size(),
                        ToolSchema::kMaxChoices);
    Node n;
    n.kind = Node::kLiterals;
    for (size_t i = 0; i < values.size(); ++i) {
      HERD_ASSIGN_OR_RETURN(std::string lit,
                            python_literal(values[i], fmt::format("{}[{}]", where, i)));
      n.literals.push_back(std::move(lit));
    }
    return add(std::move(n));
  }

  // A JSON schema -> node. What the grammar cannot express exactly (unions, $ref, objects with
  // properties) takes any literal: the call still parses, and the tool validates its input.
  Result<int32_t> node(const ojson& schema, const std::string& where, int depth) {
    if (!schema.is_object()) return ToolSchema::kAnyNode;
    if (schema.contains("enum")) return literals(schema["enum"], where + ".enum");
    if (schema.contains("const"))
      return literals(ojson::array({schema["const"]}), where + ".const");
    const ojson type = schema.value("type", ojson());
    if (!type.is_string()) return ToolSchema::kAnyNode;
    const std::string t = type.get<std::string>();
    if (t == "string") return ToolSchema::kStringNode;
    if (t == "number") return ToolSchema::kNumberNode;
    if (t == "integer") return add(Node{Node::kInteger, {}, -1});
    if (t == "boolean") return add(Node{Node::kLiterals, {"True", "False"}, -1});
    if (t == "null") return add(Node{Node::kLiterals, {"None"}, -1});
    if (t == "object") return ToolSchema::kDictNode;
    if (t == "array") {
      if (depth + 1 >= ToolSchema::kMaxDepth) return ToolSchema::kAnyArrayNode;
      HERD_ASSIGN_OR_RETURN(int32_t item,
                            node(schema.value("items", ojson()), where + ".items", depth + 1));
      return add(Node{Node::kArray, {}, item});
    }
    return ToolSchema::kAnyNode;
  }
};

uint64_t all_bits(size_t n) {
  return n >= 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
}

// The candidates whose name continues with c at byte pos.
template <class Get>
uint64_t narrow(uint64_t cand, uint16_t pos, uint8_t c, Get name) {
  uint64_t out = 0;
  for (uint64_t m = cand; m; m &= m - 1) {
    const int i = std::countr_zero(m);
    const std::string& n = name(i);
    if (n.size() > pos && uint8_t(n[pos]) == c) out |= uint64_t(1) << i;
  }
  return out;
}

// The candidate whose whole name is the pos bytes matched, or -1.
template <class Get>
int exact(uint64_t cand, uint16_t pos, Get name) {
  for (uint64_t m = cand; m; m &= m - 1) {
    const int i = std::countr_zero(m);
    if (name(i).size() == pos) return i;
  }
  return -1;
}

bool is_digit(uint8_t c) {
  return c >= '0' && c <= '9';
}

// Digits before the point: 18 always fit an int64 (JSON readers turn longer integers into
// doubles, which an "integer" parameter must not become).
constexpr uint16_t kMaxIntegerDigits = 18;
// Digits after it: more than a double holds is noise.
constexpr uint16_t kMaxFractionDigits = 17;

}  // namespace

Result<std::shared_ptr<const ToolSchema>> compile_tool_schema(const ojson& tools,
                                                              const std::string& only) {
  auto s = std::make_shared<ToolSchema>();
  s->nodes = {Node{Node::kString, {}, -1},
              Node{Node::kAny, {}, -1},
              Node{Node::kLiterals, {"True", "False", "None"}, -1},
              Node{Node::kArray, {}, ToolSchema::kAnyNode},
              Node{Node::kDict, {}, -1},
              Node{Node::kNumber, {}, -1}};
  if (tools.size() > ToolSchema::kMaxChoices)
    return make_error("tools: {} functions, at most {} can be forced with tool_choice",
                      tools.size(), ToolSchema::kMaxChoices);
  Compiler c{*s};
  for (size_t i = 0; i < tools.size(); ++i) {
    const ojson& fn = tools[i]["function"];
    const std::string where = fmt::format("tools[{}].function", i);
    ToolSchema::Tool t;
    t.name = fn["name"].get<std::string>();
    if (t.name.empty()) return make_error("{}.name: empty", where);
    const ojson params = fn.value("parameters", ojson::object());
    const ojson props =
        params.is_object() ? params.value("properties", ojson::object()) : ojson::object();
    if (props.is_object()) {
      if (props.size() > ToolSchema::kMaxChoices)
        return make_error("{}.parameters.properties: {} parameters, at most {} can be forced",
                          where, props.size(), ToolSchema::kMaxChoices);
      for (auto it = props.begin(); it != props.end(); ++it) {
        if (it.key().empty()) return make_error("{}.parameters.properties: an empty name", where);
        HERD_ASSIGN_OR_RETURN(int32_t n,
                              c.node(it.value(), where + ".parameters.properties." + it.key(), 0));
        t.params.push_back({it.key(), n});
      }
    }
    const ojson req = params.is_object() ? params.value("required", ojson::array()) : ojson();
    if (req.is_array())
      for (const ojson& r : req)
        for (size_t p = 0; p < t.params.size(); ++p)
          if (r.is_string() && r.get<std::string>() == t.params[p].name)
            t.required |= uint64_t(1) << p;
    if (only.empty() || t.name == only) s->allowed |= uint64_t(1) << i;
    s->tools.push_back(std::move(t));
  }
  if (!s->allowed) return make_error("tool_choice: no tool named \"{}\"", only);
  return std::shared_ptr<const ToolSchema>(std::move(s));
}

ToolCallGrammar::ToolCallGrammar(std::shared_ptr<const ToolSchema> schema)
    : s_(std::move(schema)) {}

bool ToolCallGrammar::push(int32_t node) {
  if (depth_ == ToolSchema::kMaxDepth) return false;
  Frame& f = stack_[depth_++];
  f = Frame{};
  f.node = node;
  f.kind = s_->nodes[size_t(node)].kind;
  f.cand = all_bits(s_->nodes[size_t(node)].literals.size());
  return true;
}

// One byte of the value on top of the stack.
ToolCallGrammar::Step ToolCallGrammar::step(Frame& f, uint8_t c) {
  const Node& n = s_->nodes[size_t(f.node)];
  switch (f.kind) {
    case Node::kAny: {  // becomes what its first byte starts
      int32_t to = -1;
      if (c == '"')
        to = ToolSchema::kStringNode;
      else if (c == '-' || is_digit(c))
        to = ToolSchema::kNumberNode;
      else if (c == 'T' || c == 'F' || c == 'N')
        to = ToolSchema::kConstNode;
      else if (c == '[')
        to = ToolSchema::kAnyArrayNode;
      else if (c == '{')
        to = ToolSchema::kDictNode;
      if (to < 0) return Step::kBad;
      f.node = to;
      f.kind = s_->nodes[size_t(to)].kind;
      f.cand = all_bits(s_->nodes[size_t(to)].literals.size());
      return step(f, c);
    }
    case Node::kString:
      if (f.phase == 0) return c == '"' ? (f.phase = 1, Step::kTake) : Step::kBad;
      if (f.phase == 2) {  // after a backslash: the escapes parse_python_literal reads
        if (c != '"' && c != '\\' && c != 'n' && c != 't' && c != 'r') return Step::kBad;
        f.phase = 1;
        return Step::kTake;
      }
      if (c == '"') return Step::kTakeDone;
      if (c == '\\') return f.phase = 2, Step::kTake;
      return c < 0x20 ? Step::kBad : Step::kTake;
    case Node::kInteger:
    case Node::kNumber: {
      // phase 0 start, 1 after '-', 2 digits, 3 after '.', 4 fraction digits, 5 a leading 0;
      // len counts the digits of the current part.
      const bool number = f.kind == Node::kNumber;
      switch (f.phase) {
        case 0:
        case 1:
          if (c == '-' && f.phase == 0) return f.phase = 1, Step::kTake;
          if (!is_digit(c)) return Step::kBad;
          f.phase = c == '0' ? 5 : 2;
          f.len = 1;
          return Step::kTake;
        case 2:
        case 5:
          if (is_digit(c) && f.phase == 2 && f.len < kMaxIntegerDigits) return ++f.len, Step::kTake;
          if (c == '.' && number) return f.phase = 3, f.len = 0, Step::kTake;
          return Step::kEnd;
        case 3:
          return is_digit(c) ? (f.phase = 4, f.len = 1, Step::kTake) : Step::kBad;
        default:
          return is_digit(c) && f.len < kMaxFractionDigits ? (++f.len, Step::kTake) : Step::kEnd;
      }
    }
    case Node::kLiterals: {
      const auto lit = [&](int i) -> const std::string& { return n.literals[size_t(i)]; };
      const uint64_t next = narrow(f.cand, f.len, c, lit);
      if (!next) return exact(f.cand, f.len, lit) >= 0 ? Step::kEnd : Step::kBad;
      f.cand = next;
      ++f.len;
      // Done when no candidate is longer than what was matched.
      for (uint64_t m = next; m; m &= m - 1)
        if (lit(std::countr_zero(m)).size() > f.len) return Step::kTake;
      return Step::kTakeDone;
    }
    case Node::kArray:
      // phase 0 '[', 1 after '[', 2 after an item, 3 after ',', 4 after ", "
      switch (f.phase) {
        case 0:
          return c == '[' ? (f.phase = 1, Step::kTake) : Step::kBad;
        case 2:
          if (c == ',') return f.phase = 3, Step::kTake;
          return c == ']' ? Step::kTakeDone : Step::kBad;
        case 3:
          return c == ' ' ? (f.phase = 4, Step::kTake) : Step::kBad;
        default:
          if (c == ']' && f.phase == 1) return Step::kTakeDone;
          f.phase = 2;
          return push(n.item) ? Step::kPushed : Step::kBad;
      }
    default:  // kDict: {"key": value, "key": value}
      // phase 0 '{', 1 after '{', 2 after a key, 3 after ':', 4 after ": ", 5 after a value,
      // 6 after ',', 7 after ", "
      switch (f.phase) {
        case 0:
          return c == '{' ? (f.phase = 1, Step::kTake) : Step::kBad;
        case 1:
        case 7:
          if (c == '}' && f.phase == 1) return Step::kTakeDone;
          f.phase = 2;
          return push(ToolSchema::kStringNode) ? Step::kPushed : Step::kBad;
        case 2:
          return c == ':' ? (f.phase = 3, Step::kTake) : Step::kBad;
        case 3:
          return c == ' ' ? (f.phase = 4, Step::kTake) : Step::kBad;
        case 4:
          f.phase = 5;
          return push(ToolSchema::kAnyNode) ? Step::kPushed : Step::kBad;
        case 5:
          if (c == ',') return f.phase = 6, Step::kTake;
          return c == '}' ? Step::kTakeDone : Step::kBad;
        default:
          return c == ' ' ? (f.phase = 7, Step::kTake) : Step::kBad;
      }
  }
}

// Feeds c to the innermost open value. A finished value returns control to its parent; one that
// ends only because c cannot extend it (a number, a literal that is a prefix of another) hands c
// on to the parent.
bool ToolCallGrammar::feed_value(uint8_t c) {
  for (;;) {
    switch (step(stack_[depth_ - 1], c)) {
      case Step::kBad:
        return false;
      case Step::kTake:
        return true;
      case Step::kPushed:
        continue;
      case Step::kTakeDone:
        if (--depth_ == 0) phase_ = kAfterValue;
        return true;
      case Step::kEnd:
        if (--depth_ == 0) {
          phase_ = kAfterValue;
          return feed(c);
        }
        continue;
    }
  }
}

bool ToolCallGrammar::start_param(uint8_t c) {
  const ToolSchema::Tool& t = s_->tools[size_t(tool_)];
  cand_ = all_bits(t.params.size()) & ~used_;
  pos_ = 0;
  phase_ = kParam;
  return feed(c);
}

bool ToolCallGrammar::feed(uint8_t c) {
  const auto tool_name = [&](int i) -> const std::string& { return s_->tools[size_t(i)].name; };
  switch (phase_) {
    case kOpen:
      if (c != '[') return false;
      phase_ = kName, cand_ = s_->allowed, pos_ = 0;
      return true;
    case kName: {
      if (c == '(') {
        tool_ = exact(cand_, pos_, tool_name);
        if (tool_ < 0) return false;
        phase_ = kArgs, used_ = 0;
        return true;
      }
      const uint64_t next = narrow(cand_, pos_, c, tool_name);
      if (!next) return false;
      cand_ = next, ++pos_;
      return true;
    }
    case kArgs:
    case kArgsNext: {
      const ToolSchema::Tool& t = s_->tools[size_t(tool_)];
      if (c == ')')
        return phase_ == kArgs && (t.required & ~used_) == 0 ? (phase_ = kAfterCall, true) : false;
      return start_param(c);
    }
    case kParam: {
      const ToolSchema::Tool& t = s_->tools[size_t(tool_)];
      const auto param = [&](int i) -> const std::string& { return t.params[size_t(i)].name; };
      if (c == '=') {
        const int p = exact(cand_, pos_, param);
        if (p < 0) return false;
        used_ |= uint64_t(1) << p;
        phase_ = kValue;
        return push(t.params[size_t(p)].node);
      }
      const uint64_t next = narrow(cand_, pos_, c, param);
      if (!next) return false;
      cand_ = next, ++pos_;
      return true;
    }
    case kValue:
      return feed_value(c);
    case kAfterValue: {
      const ToolSchema::Tool& t = s_->tools[size_t(tool_)];
      if (c == ',') {  // only when a parameter is left to give
        if ((all_bits(t.params.size()) & ~used_) == 0) return false;
        phase_ = kArgSep;
        return true;
      }
      if (c == ')' && (t.required & ~used_) == 0) return phase_ = kAfterCall, true;
      return false;
    }
    case kArgSep:
      return c == ' ' ? (phase_ = kArgsNext, true) : false;
    case kAfterCall:
      if (c == ',') return phase_ = kCallSep, true;
      if (c == ']') return phase_ = kDone, true;
      return false;
    case kCallSep:
      if (c != ' ') return false;
      phase_ = kName, cand_ = s_->allowed, pos_ = 0;
      return true;
    case kDone:
      return false;
  }
  return false;
}

}  // namespace herd::server
