#include "herd/server/api_request.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "herd/runtime/request_check.h"
#include "herd/server/data_url.h"

namespace herd::server {
namespace {

using ojson = nlohmann::ordered_json;

// Bodies nest far less than this; the limit keeps every later walk over them (the chat
// renderer, json.dumps of tool schemas) shallow, whatever a client sends.
constexpr int kMaxNesting = 64;

std::string type_name(const ojson& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

Status wrong_type(const std::string& field, const ojson& v, const char* expected) {
  return make_error("{}: got {}, expected {}", field, type_name(v), expected);
}

// Depth of [ and { outside strings, without parsing (so the parser never sees deep input).
bool nesting_within(std::string_view s, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

Result<double> get_number(const ojson& body, const char* field) {
  const ojson& v = body[field];
  if (!v.is_number()) return wrong_type(field, v, "a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) return make_error("{}: got {}, expected a finite number", field, d);
  return d;
}

// Integers may be written 3 or 3.0 (some clients serialise every number as a float).
Result<int64_t> get_integer(const ojson& body, const char* field, int64_t lo, int64_t hi) {
  const ojson& v = body[field];
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    x = u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                          : int64_t(u);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(d == std::trunc(d) && d >= -9.2e18 && d <= 9.2e18))
      return make_error("{}: got {}, expected an integer", field, d);
    x = int64_t(d);
  } else {
    return wrong_type(field, v, "an integer");
  }
  if (x < lo || x > hi) {
    if (hi == std::numeric_limits<int64_t>::max())
      return make_error("{}: got {}, expected an integer >= {}", field, x, lo);
    return make_error("{}: got {}, expected an integer in [{}, {}]", field, x, lo, hi);
  }
  return x;
}

Result<bool> get_bool(const ojson& body, const char* field) {
  const ojson& v = body[field];
  if (!v.is_boolean()) return wrong_type(field, v, "a boolean");
  return v.get<bool>();
}

bool has(const ojson& body, const char* field) {
  return body.contains(field) && !body[field].is_null();
}

// An image part: {"type": "image_url", "image_url": {"url": "data:…"}} (or the URL as a plain
// string), decoded and preprocessed into `images`.
Status read_image_part(ojson& part, const std::string& where, const ImageSettings& settings,
                       std::vector<ImageTiles>& images) {
  if (!settings.enabled)
    return make_error("{}: image content needs a model with a vision encoder; this one has none",
                      where);
  if (int(images.size()) >= settings.max_images)
    return make_error("{}: more than {} images in one request", where, settings.max_images);
  ojson& u = part["image_url"];
  ojson* url = u.is_string() ? &u : u.is_object() && u.contains("url") ? &u["url"] : nullptr;
  if (!url || !url->is_string())
    return make_error("{}.image_url.url: expected a string (a data: URL)", where);
  auto bytes = decode_data_url(url->get_ref<const std::string&>());
  if (!bytes) return bytes.status().with_context(where + ".image_url.url");
  HERD_ASSIGN_OR_RETURN(Image img, decode_image(*bytes, settings.limits, where + ".image_url"));
  auto tiles = preprocess_image(img, settings.tile_size, settings.preprocess);
  if (!tiles) return tiles.status().with_context(where + ".image_url");
  images.push_back(std::move(tiles).value());
  *url = "data:";  // the pixels live in `images` now; keep the body small
  return Status::ok();
}

Status check_content_part(ojson& part, const std::string& where, const ImageSettings& settings,
                          std::vector<ImageTiles>& images) {
  if (!part.is_object()) return wrong_type(where, part, "a content part object");
  if (!part.contains("type") || !part["type"].is_string())
    return make_error("{}.type: expected a string (\"text\")", where);
  const std::string type = part["type"].get<std::string>();
  if (type == "text") {
    if (!part.contains("text") || !part["text"].is_string())
      return make_error("{}.text: expected a string", where);
    return Status::ok();
  }
  if (type == "image_url") return read_image_part(part, where, settings, images);
  if (type == "image")
    return make_error(
        "{}.type: an \"image\" part carries no pixels; send {{\"type\": \"image_url\", "
        "\"image_url\": {{\"url\": \"data:image/png;base64,…\"}}}}",
        where);
  if (type == "input_audio" || type == "file")
    return make_error("{}.type: \"{}\" content is not supported by this server yet", where, type);
  return make_error("{}.type: got \"{}\", expected \"text\" or \"image_url\"", where, type);
}

Status check_tool_calls(ojson& calls, const std::string& where) {
  if (!calls.is_array()) return wrong_type(where, calls, "an array");
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string w = fmt::format("{}[{}]", where, i);
    ojson& c = calls[i];
    if (!c.is_object()) return wrong_type(w, c, "an object");
    if (!c.contains("function") || !c["function"].is_object())
      return make_error("{}.function: expected an object", w);
    ojson& fn = c["function"];
    if (!fn.contains("name") || !fn["name"].is_string())
      return make_error("{}.function.name: expected a string", w);
    if (fn.contains("arguments")) {
      ojson& a = fn["arguments"];
      // OpenAI sends arguments as JSON text; the template prints them with tojson, so they are
      // turned back into the object (as vLLM does) instead of printing a quoted string.
      if (a.is_string()) {
        ojson parsed = ojson::parse(a.get<std::string>(), nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object())
          return make_error("{}.function.arguments: expected a JSON object (as text)", w);
        a = std::move(parsed);
      } else if (!a.is_object()) {
        return wrong_type(w + ".function.arguments", a, "a JSON object or its text");
      }
    }
  }
  return Status::ok();
}

Status check_messages(ojson& messages, const ImageSettings& settings,
                      std::vector<ImageTiles>& images) {
  if (!messages.is_array()) return wrong_type("messages", messages, "an array of messages");
  if (messages.empty()) return make_error("messages: expected at least one message");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = fmt::format("messages[{}]", i);
    ojson& m = messages[i];
    if (!m.is_object()) return wrong_type(where, m, "a message object");
    if (!m.contains("role") || !m["role"].is_string())
      return make_error("{}.role: expected one of system, user, assistant, tool", where);
    std::string role = m["role"].get<std::string>();
    if (role == "developer") {  // OpenAI's newer name for the system role
      role = "system";
      m["role"] = role;
    }
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" &&
        role != "ipython")
      return make_error("{}.role: got \"{}\", expected one of system, user, assistant, tool", where,
                        role);
    const bool calls =
        role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null();
    if (calls)
      HERD_TRY(check_tool_calls(m["tool_calls"], where + ".tool_calls"));
    else if (m.contains("tool_calls"))
      m.erase("tool_calls");
    if (!m.contains("content") || m["content"].is_null()) {
      if (!calls)
        return make_error("{}.content: expected a string or an array of content parts", where);
      continue;
    }
    ojson& c = m["content"];
    if (c.is_string()) continue;
    if (!c.is_array())
      return wrong_type(where + ".content", c, "a string or an array of content parts");
    for (size_t j = 0; j < c.size(); ++j)
      HERD_TRY(check_content_part(c[j], fmt::format("{}.content[{}]", where, j), settings, images));
  }
  return Status::ok();
}

Status check_tools(const ojson& tools) {
  if (!tools.is_array()) return wrong_type("tools", tools, "an array of tools");
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string where = fmt::format("tools[{}]", i);
    const ojson& t = tools[i];
    if (!t.is_object()) return wrong_type(where, t, "a tool object");
    if (!t.contains("type") || t["type"] != "function")
      return make_error("{}.type: expected \"function\"", where);
    if (!t.contains("function") || !t["function"].is_object())
      return make_error("{}.function: expected an object", where);
    const ojson& fn = t["function"];
    if (!fn.contains("name") || !fn["name"].is_string() || fn["name"].get<std::string>().empty())
      return make_error("{}.function.name: expected a non-empty string", where);
    if (fn.contains("parameters") && !fn["parameters"].is_object() && !fn["parameters"].is_null())
      return wrong_type(where + ".function.parameters", fn["parameters"], "a JSON schema object");
    if (fn.contains("description") && !fn["description"].is_string() &&
        !fn["description"].is_null())
      return wrong_type(where + ".function.description", fn["description"], "a string");
  }
  return Status::ok();
}

bool tools_name(const ojson& tools, const std::string& name) {
  for (const ojson& t : tools)
    if (t["function"]["name"] == name) return true;
  return false;
}

Status parse_tool_choice(const ojson& body, ApiRequest& r) {
  if (!has(body, "tool_choice")) return Status::ok();
  const ojson& v = body["tool_choice"];
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "auto")
      r.tool_choice = ToolChoice::kAuto;
    else if (s == "none")
      r.tool_choice = ToolChoice::kNone;
    else if (s == "required")
      r.tool_choice = ToolChoice::kRequired;
    else
      return make_error(
          "tool_choice: got \"{}\", expected \"auto\", \"none\", \"required\" or "
          "{{\"type\": \"function\", \"function\": {{\"name\": …}}}}",
          s);
  } else if (v.is_object()) {
    if (!v.contains("function") || !v["function"].is_object() || !v["function"].contains("name") ||
        !v["function"]["name"].is_string())
      return make_error("tool_choice.function.name: expected a string");
    r.tool_choice = ToolChoice::kNamed;
    r.tool_name = v["function"]["name"].get<std::string>();
  } else {
    return wrong_type("tool_choice", v, "a string or an object");
  }
  if (r.tool_choice == ToolChoice::kRequired || r.tool_choice == ToolChoice::kNamed) {
    if (!r.tools || r.tools->empty())
      return make_error("tool_choice: a tool is required but tools is empty or missing");
    if (r.tool_choice == ToolChoice::kNamed && !tools_name(*r.tools, r.tool_name))
      return make_error("tool_choice.function.name: \"{}\" is not one of the tools", r.tool_name);
  }
  return Status::ok();
}

Status parse_stop(const ojson& body, ApiRequest& r) {
  if (!has(body, "stop")) return Status::ok();
  const ojson& v = body["stop"];
  auto add = [&](const ojson& s, const std::string& where) -> Status {
    if (!s.is_string()) return wrong_type(where, s, "a string");
    std::string text = s.get<std::string>();
    if (text.empty()) return make_error("{}: expected a non-empty string", where);
    if (text.size() > kMaxStopBytes)
      return make_error("{}: {} bytes, expected at most {}", where, text.size(), kMaxStopBytes);
    r.stop.push_back(std::move(text));
    return Status::ok();
  };
  if (v.is_string()) return add(v, "stop");
  if (!v.is_array()) return wrong_type("stop", v, "a string or an array of strings");
  if (v.size() > size_t(kMaxStopStrings))
    return make_error("stop: {} strings, expected at most {}", v.size(), kMaxStopStrings);
  for (size_t i = 0; i < v.size(); ++i) HERD_TRY(add(v[i], fmt::format("stop[{}]", i)));
  return Status::ok();
}

Status parse_prompt(const ojson& body, ApiRequest& r) {
  if (!body.contains("prompt")) return make_error("prompt: required");
  const ojson& v = body["prompt"];
  if (v.is_string()) {
    r.prompt_text = v.get<std::string>();
  } else if (v.is_array() && v.size() == 1 && v[0].is_string()) {
    r.prompt_text = v[0].get<std::string>();
  } else if (v.is_array() && !v.empty() && v[0].is_number()) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number_integer() || v[i].get<int64_t>() < 0 ||
          v[i].get<int64_t>() > std::numeric_limits<int32_t>::max())
        return make_error("prompt[{}]: expected a token id (an integer >= 0)", i);
      r.prompt_ids.push_back(int32_t(v[i].get<int64_t>()));
    }
  } else if (v.is_array() && v.size() > 1) {
    return make_error("prompt: several prompts in one request are not supported; send one each");
  } else {
    return wrong_type("prompt", v, "a string or an array of token ids");
  }
  if (r.prompt_text.empty() && r.prompt_ids.empty())
    return make_error("prompt: expected a non-empty prompt");
  return Status::ok();
}

Status parse_sampling(const ojson& body, ApiRequest& r) {
  struct Field {
    const char* name;
    RequestField kind;
    std::optional<float>* out;
  };
  const Field floats[] = {
      {"temperature", RequestField::kTemperature, &r.sampling.temperature},
      {"top_p", RequestField::kTopP, &r.sampling.top_p},
      {"min_p", RequestField::kMinP, &r.sampling.min_p},
      {"repetition_penalty", RequestField::kRepetitionPenalty, &r.sampling.repetition_penalty}};
  for (const Field& f : floats) {
    if (!has(body, f.name)) continue;
    HERD_ASSIGN_OR_RETURN(const double v, get_number(body, f.name));
    const std::string problem = sampling_value_problem(f.kind, v);
    if (!problem.empty()) return make_error("{}: {}", f.name, problem);
    if (f.kind == RequestField::kTemperature && v > 2)
      return make_error("temperature: got {}, expected a number in [0, 2]", v);
    *f.out = float(v);
  }
  if (has(body, "top_k")) {
    // -1 is how several clients (vLLM's) say "off".
    HERD_ASSIGN_OR_RETURN(const int64_t k, get_integer(body, "top_k", -1, 1 << 30));
    r.sampling.top_k = k < 0 ? 0 : int(k);
  }
  if (has(body, "seed")) {
    HERD_ASSIGN_OR_RETURN(const int64_t s,
                          get_integer(body, "seed", std::numeric_limits<int64_t>::min(),
                                      std::numeric_limits<int64_t>::max()));
    r.sampling.seed = uint64_t(s);
  }
  // OpenAI's additive penalties and logit_bias (runtime/sampler.h).
  for (auto [f, out] : {std::pair{"presence_penalty", &r.sampling.presence_penalty},
                        std::pair{"frequency_penalty", &r.sampling.frequency_penalty}}) {
    if (!has(body, f)) continue;
    HERD_ASSIGN_OR_RETURN(const double v, get_number(body, f));
    if (!(v >= -2 && v <= 2)) return make_error("{}: got {}, expected a number in [-2, 2]", f, v);
    *out = float(v);
  }
  if (has(body, "logit_bias")) {
    const ojson& v = body["logit_bias"];
    if (!v.is_object()) return wrong_type("logit_bias", v, "an object");
    if (v.size() > 1024) return make_error("logit_bias: {} entries, at most 1024", v.size());
    for (const auto& [key, val] : v.items()) {
      char* end = nullptr;
      const long long id = std::strtoll(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id < 0 || id > std::numeric_limits<int32_t>::max())
        return make_error("logit_bias: key '{}' is not a token id", key);
      if (!val.is_number())
        return make_error("logit_bias.{}: got {}, expected a number in [-100, 100]", key,
                          val.dump());
      const double b = val.get<double>();
      if (!(b >= -100 && b <= 100))
        return make_error("logit_bias.{}: got {}, expected a number in [-100, 100]", key, b);
      r.sampling.logit_bias.push_back({int32_t(id), float(b)});
    }
  }
  return Status::ok();
}

Status parse_logprobs(const ojson& body, ApiRequest& r) {
  if (r.endpoint == Endpoint::kCompletions) {
    // Legacy completions: logprobs is the number of alternatives (0..5).
    if (has(body, "logprobs")) {
      HERD_ASSIGN_OR_RETURN(const int64_t k, get_integer(body, "logprobs", 0, 5));
      r.logprobs = true;
      r.top_logprobs = int(k);
    }
    return Status::ok();
  }
  if (has(body, "logprobs")) {
    HERD_ASSIGN_OR_RETURN(r.logprobs, get_bool(body, "logprobs"));
  }
  if (has(body, "top_logprobs")) {
    HERD_ASSIGN_OR_RETURN(const int64_t k, get_integer(body, "top_logprobs", 0, kMaxTopLogprobs));
    if (!r.logprobs && k > 0) return make_error("top_logprobs: requires logprobs: true");
    r.top_logprobs = int(k);
  }
  return Status::ok();
}

Status parse_body(const ojson& b, ApiRequest& r, const ImageSettings& images) {
  if (has(b, "model")) {
    if (!b["model"].is_string()) return wrong_type("model", b["model"], "a string");
    r.model = b["model"].get<std::string>();
  }
  if (r.endpoint == Endpoint::kChat) {
    if (!b.contains("messages")) return make_error("messages: required");
    r.messages = b["messages"];
    HERD_TRY(check_messages(r.messages, images, r.images));
  } else {
    HERD_TRY(parse_prompt(b, r));
    if (has(b, "echo")) {
      HERD_ASSIGN_OR_RETURN(r.echo, get_bool(b, "echo"));
    }
    if (r.echo) return make_error("echo: not supported by this server yet");
    if (has(b, "suffix")) return make_error("suffix: not supported by this server yet");
    if (has(b, "best_of")) {
      HERD_ASSIGN_OR_RETURN(const int64_t best, get_integer(b, "best_of", 1, kMaxChoices));
      if (best != 1) return make_error("best_of: got {}, only 1 is supported", best);
    }
  }
  for (const char* f : {"max_completion_tokens", "max_tokens"}) {
    if (!has(b, f)) continue;
    HERD_ASSIGN_OR_RETURN(r.max_tokens, get_integer(b, f, 1, std::numeric_limits<int64_t>::max()));
    break;
  }
  HERD_TRY(parse_sampling(b, r));
  HERD_TRY(parse_stop(b, r));
  if (has(b, "n")) {
    HERD_ASSIGN_OR_RETURN(r.n, get_integer(b, "n", 1, kMaxChoices));
  }
  HERD_TRY(parse_logprobs(b, r));
  if (r.endpoint == Endpoint::kChat && has(b, "tools")) {
    HERD_TRY(check_tools(b["tools"]));
    if (!b["tools"].empty()) r.tools = b["tools"];
  }
  if (r.endpoint == Endpoint::kChat) HERD_TRY(parse_tool_choice(b, r));
  if (has(b, "stream")) {
    HERD_ASSIGN_OR_RETURN(r.stream, get_bool(b, "stream"));
  }
  if (has(b, "cache_prompt")) {
    HERD_ASSIGN_OR_RETURN(r.cache_prompt, get_bool(b, "cache_prompt"));
  }
  if (has(b, "stream_options")) {
    const ojson& so = b["stream_options"];
    if (!so.is_object()) return wrong_type("stream_options", so, "an object");
    if (!r.stream) return make_error("stream_options: only allowed with stream: true");
    if (so.contains("include_usage") && !so["include_usage"].is_null()) {
      if (!so["include_usage"].is_boolean())
        return wrong_type("stream_options.include_usage", so["include_usage"], "a boolean");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  if (has(b, "response_format")) {
    const ojson& rf = b["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      return make_error("response_format.type: expected a string");
    const std::string t = rf["type"].get<std::string>();
    if (t != "text")
      return make_error(
          "response_format.type: \"{}\" is not supported by this server yet "
          "(only \"text\")",
          t);
  }
  return Status::ok();
}

}  // namespace

void SamplingOverrides::apply(SamplingParams& p) const {
  if (temperature) p.temperature = *temperature;
  if (top_p) p.top_p = *top_p;
  if (top_k) p.top_k = *top_k;
  if (min_p) p.min_p = *min_p;
  if (repetition_penalty) p.repetition_penalty = *repetition_penalty;
  if (seed) p.seed = *seed;
  if (presence_penalty) p.presence_penalty = *presence_penalty;
  if (frequency_penalty) p.frequency_penalty = *frequency_penalty;
  if (!logit_bias.empty()) p.logit_bias = logit_bias;
}

Result<ApiRequest> parse_api_request(std::string_view body, Endpoint endpoint,
                                     const ImageSettings& images) {
  if (!nesting_within(body, kMaxNesting))
    return make_error("request body: JSON nested deeper than {} levels", kMaxNesting);
  ojson b = ojson::parse(body, nullptr, /*allow_exceptions=*/false);
  if (b.is_discarded()) {
    // Parse again with exceptions only to get the position for the message.
    try {
      [[maybe_unused]] ojson again = ojson::parse(body);
    } catch (const nlohmann::json::exception& e) {
      return make_error("request body: malformed JSON ({})", e.what());
    }
    return make_error("request body: malformed JSON");
  }
  if (!b.is_object()) return wrong_type("request body", b, "a JSON object");
  ApiRequest r;
  r.endpoint = endpoint;
  HERD_TRY(parse_body(b, r, images));
  return r;
}

}  // namespace herd::server
