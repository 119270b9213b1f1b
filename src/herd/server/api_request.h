// OpenAI request bodies -> one internal struct (DESIGN.md server/). Parsing and validation are
// pure functions of the body text, so the HTTP threads can run them, the unit tests can table
// them and the fuzzer can hammer them; nothing here touches the engine.
//
// Every error is a 400 whose message names the field at fault ("messages[1].content: expected a
// string or an array of content parts"), in the form request_check.h uses for sampling values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herd/base/status.h"
#include "herd/io/image.h"
#include "herd/model/vision_preprocess.h"
#include "herd/runtime/sampler.h"

namespace herd::server {

enum class Endpoint { kChat, kCompletions };

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

// Fields the client set; unset sampling fields keep generation_config.json's defaults.
struct SamplingOverrides {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<float> presence_penalty, frequency_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::pair<int32_t, float>> logit_bias;
  void apply(SamplingParams& p) const;
};

// Images in chat requests: image_url content parts with base64 data: URLs. They are decoded and
// preprocessed while the request is parsed (in the HTTP thread), so a bad image is a 400 that
// names its content part before anything is queued.
struct ImageSettings {
  bool enabled = false;              // the served model has a vision encoder
  int tile_size = 336;               // vision_config.image_size
  int patch_size = 14;               // vision_config.patch_size
  double pixel_shuffle_ratio = 0.5;  // vision_config.pixel_shuffle_ratio
  ImageLimits limits;                // per image, checked from the header before decoding
  VisionPreprocessOptions preprocess;
  int max_images = 8;  // per request (Meta tested up to 5, vLLM suggests at most 10)
};

struct ApiRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;                // empty: the served model
  nlohmann::ordered_json messages;  // chat: the messages array, content parts normalised
  // chat: one per image content part, in message order (the order of the <|image|> placeholders
  // the chat renderer writes); their data: URLs are dropped from `messages` once decoded.
  std::vector<ImageTiles> images;
  std::string prompt_text;            // completions: a string prompt
  std::vector<int32_t> prompt_ids;    // completions: a token-id prompt
  std::optional<int64_t> max_tokens;  // max_tokens / max_completion_tokens
  SamplingOverrides sampling;
  std::vector<std::string> stop;  // at most kMaxStopStrings, none empty
  int n = 1;                      // choices, 1..kMaxChoices
  bool logprobs = false;
  int top_logprobs = 0;                         // 0..kMaxTopLogprobs
  std::optional<nlohmann::ordered_json> tools;  // OpenAI "tools" array (validated)
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string tool_name;  // kNamed: the function
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;           // completions: not supported (rejected when true)
  // llama.cpp server's extension: false keeps this request's KV out of the prefix cache.
  bool cache_prompt = true;
};

inline constexpr int kMaxChoices = 8;
inline constexpr int kMaxTopLogprobs = 20;
inline constexpr int kMaxStopStrings = 4;
inline constexpr size_t kMaxStopBytes = 256;

// Parses and validates a POST /v1/chat/completions or /v1/completions body. Image parts are an
// error unless `images.enabled`.
Result<ApiRequest> parse_api_request(std::string_view body, Endpoint endpoint,
                                     const ImageSettings& images = {});

}  // namespace herd::server
