// Renders messages following chat_template.jinja statement by statement (see the header for
// the two places where we render instead of failing).
#include "herd/tokenizer/chat_format.h"

#include "herd/tokenizer/special_tokens.h"
#include "herd/tokenizer/tool_calls.h"

namespace herd {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kJsonInstruction =
    "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name "
    "and its value}.Do not use variables.\n\n";

// Accumulates the prompt text and, with a tokenizer, its ids: text between specials is
// encoded as one plain-text run when the next special (or the end) arrives.
class Builder {
 public:
  explicit Builder(const Tokenizer* tok) : tok_(tok) {}
  void text(std::string_view s) {
    out_.text += s;
    pending_ += s;
  }
  Status special(std::string_view name) {
    out_.text += name;
    if (!tok_) return Status::ok();
    flush();
    auto id = tok_->special_id(name);
    if (!id) return make_error("the tokenizer ({}) has no special token {}", tok_->source(), name);
    if (name == special::kImage) out_.image_positions.push_back(out_.ids.size());
    out_.ids.push_back(*id);
    return Status::ok();
  }
  RenderedChat finish() {
    if (tok_) flush();
    return std::move(out_);
  }

 private:
  void flush() {
    if (pending_.empty()) return;
    std::vector<int32_t> ids = tok_->encode(pending_, /*allow_special=*/false);
    out_.ids.insert(out_.ids.end(), ids.begin(), ids.end());
    pending_.clear();
  }
  const Tokenizer* tok_;
  RenderedChat out_;
  std::string pending_;
};

// Jinja's {{ value }} for a scalar: Python's str().
std::string python_str(const ojson& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  return python_json_dumps(v);
}

// The template's content loop: a string as is; a list renders text items and <|image|>.
Status render_content(Builder& b, const ojson& content, const std::string& where) {
  if (content.is_null()) return Status::ok();
  if (content.is_string()) {
    b.text(content.get_ref<const std::string&>());
    return Status::ok();
  }
  if (!content.is_array()) return make_error("{}: content must be a string or a list", where);
  for (size_t i = 0; i < content.size(); ++i) {
    const ojson& item = content[i];
    std::string type = item.is_object() ? item.value("type", "") : "";
    if (type == "image" || type == "image_url") {
      HERD_TRY(b.special(special::kImage));
    } else if (type == "text") {
      if (!item.contains("text") || !item["text"].is_string())
        return make_error("{}[{}]: a text item needs a string \"text\"", where, i);
      b.text(item["text"].get_ref<const std::string&>());
    }  // other types render nothing, as in the template
  }
  return Status::ok();
}

Status render_tools_block(Builder& b, const ojson& tools) {
  if (!tools.is_array()) return make_error("tools must be a list");
  b.text(render_tool_definitions(tools));
  return Status::ok();
}

std::string role_of(const ojson& m) {
  return m.is_object() && m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>()
                                                                      : "";
}

Status render_message(Builder& b, const ojson& m, const std::string& where) {
  const std::string role = role_of(m);
  const ojson content = m.contains("content") ? m["content"] : ojson();
  const bool has_calls = m.contains("tool_calls");
  if (!(role == "ipython" || role == "tool" || has_calls)) {
    HERD_TRY(b.special(special::kHeaderStart));
    b.text(role);
    HERD_TRY(b.special(special::kHeaderEnd));
    b.text("\n\n");
    HERD_TRY(render_content(b, content, where + ".content"));
    return b.special(special::kEot);
  }
  if (has_calls && m["tool_calls"].is_array() && !m["tool_calls"].empty()) {
    HERD_TRY(b.special(special::kHeaderStart));
    b.text("assistant");
    HERD_TRY(b.special(special::kHeaderEnd));
    b.text("\n\n");
    HERD_TRY(b.special(special::kPythonStart));
    HERD_TRY(render_content(b, content, where + ".content"));
    HERD_TRY(b.special(special::kPythonEnd));
    const ojson& calls = m["tool_calls"];
    for (size_t i = 0; i < calls.size(); ++i) {
      const ojson& c = calls[i];
      const ojson* fn = c.is_object() && c.contains("function") ? &c["function"] : nullptr;
      if (!fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
        return make_error("{}.tool_calls[{}]: needs function.name", where, i);
      b.text("{\"name\": \"" + (*fn)["name"].get<std::string>() + "\", \"parameters\": ");
      b.text(python_json_dumps(fn->contains("arguments") ? (*fn)["arguments"] : ojson()));
      b.text("}");
    }
    return b.special(special::kEot);
  }
  if (has_calls && !m["tool_calls"].is_array() && !(role == "tool" || role == "ipython"))
    return make_error("{}.tool_calls must be a list", where);
  if (role == "tool" || role == "ipython") {
    HERD_TRY(b.special(special::kHeaderStart));
    b.text("ipython");
    HERD_TRY(b.special(special::kHeaderEnd));
    b.text("\n\n");
    // Strings, lists and objects are all "iterable" to Jinja, so they go through tojson (a
    // plain string result therefore appears quoted).
    if (content.is_string() || content.is_array() || content.is_object())
      b.text(python_json_dumps(content));
    else
      b.text(python_str(content));
    return b.special(special::kEot);
  }
  return Status::ok();  // an assistant message with an empty tool_calls list renders nothing
}

// The first user message's content when tools are given: `content|trim`.
Result<std::string> trimmed_text(const ojson& content, const std::string& where) {
  if (content.is_string()) return python_strip(content.get_ref<const std::string&>());
  Builder text_only(nullptr);
  HERD_TRY(render_content(text_only, content, where));
  return python_strip(text_only.finish().text);
}

Result<RenderedChat> render(const Tokenizer* tok, const ojson& messages, const ChatOptions& opt) {
  if (!messages.is_array()) return make_error("messages must be a list");
  for (size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].is_object()) return make_error("messages[{}] is not an object", i);
  Builder b(tok);
  if (opt.add_bos) HERD_TRY(b.special(special::kBeginOfText));
  const bool tools = opt.tools.has_value() && !opt.tools->is_null();
  size_t next = 0;
  if (!messages.empty() && role_of(messages[0]) == "system") {
    const ojson& c = messages[0].contains("content") ? messages[0]["content"] : ojson();
    std::string system;
    if (c.is_string()) {
      system = python_strip(c.get_ref<const std::string&>());
    } else if (c.is_array() && !c.empty() && c[0].is_object() && c[0].contains("text") &&
               c[0]["text"].is_string()) {
      system = python_strip(c[0]["text"].get_ref<const std::string&>());  // first item only
    } else if (!c.is_null()) {
      return make_error("messages[0].content: a system message needs a string or [{{text}}]");
    }
    next = 1;
    HERD_TRY(b.special(special::kHeaderStart));
    b.text("system");
    HERD_TRY(b.special(special::kHeaderEnd));
    b.text("\n\n");
    if (tools) b.text("Environment: ipython\n");
    if (tools && !opt.tools_in_user_message) {
      b.text(
          "You have access to the following functions. To call a function, please respond "
          "with JSON for a function call.");
      b.text(kJsonInstruction);
      HERD_TRY(render_tools_block(b, *opt.tools));
    }
    b.text(system);
    HERD_TRY(b.special(special::kEot));
  }
  if (tools && opt.tools_in_user_message) {
    if (next >= messages.size())
      return make_error(
          "Cannot put tools in the first user message when there's no first user message!");
    HERD_ASSIGN_OR_RETURN(
        std::string first,
        trimmed_text(messages[next].contains("content") ? messages[next]["content"] : ojson(),
                     fmt::format("messages[{}].content", next)));
    ++next;
    HERD_TRY(b.special(special::kHeaderStart));
    b.text("user");
    HERD_TRY(b.special(special::kHeaderEnd));
    b.text(
        "\n\nGiven the following functions, please respond with a JSON for a function call "
        "with its proper arguments that best answers the given prompt.\n\n");
    b.text(kJsonInstruction);
    HERD_TRY(render_tools_block(b, *opt.tools));
    b.text(first);
    HERD_TRY(b.special(special::kEot));
  }
  for (size_t i = next; i < messages.size(); ++i)
    HERD_TRY(render_message(b, messages[i], fmt::format("messages[{}]", i)));
  if (opt.add_generation_prompt) {
    HERD_TRY(b.special(special::kHeaderStart));
    b.text("assistant");
    HERD_TRY(b.special(special::kHeaderEnd));
    b.text("\n\n");
  }
  return b.finish();
}

}  // namespace

Result<RenderedChat> render_chat(const Tokenizer& tok, const ojson& messages,
                                 const ChatOptions& options) {
  return render(&tok, messages, options);
}

Result<RenderedChat> render_chat_text(const ojson& messages, const ChatOptions& options) {
  return render(nullptr, messages, options);
}

}  // namespace herd
