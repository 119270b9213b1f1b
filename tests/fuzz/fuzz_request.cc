// libFuzzer target over the server's request parser and validator (server/api_request.h), then
// the chat renderer on whatever it accepts (messages, content parts, tool definitions and
// tool-call arguments all reach render_chat_text). Built with clang by tests/fuzz/build.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "herd/server/api_request.h"
#include "herd/tokenizer/chat_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the endpoint and whether images are accepted (data: URLs decoded and
  // preprocessed, small limits to stay fast); the rest is the body.
  const auto endpoint =
      data[0] & 1 ? herd::server::Endpoint::kCompletions : herd::server::Endpoint::kChat;
  herd::server::ImageSettings images;
  images.enabled = data[0] & 2;
  images.tile_size = 28;
  images.limits.max_pixels = 1 << 16;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto r = herd::server::parse_api_request(body, endpoint, images);
  if (r && endpoint == herd::server::Endpoint::kChat) {
    herd::ChatOptions opt;
    if (r->tools) opt.tools = *r->tools;
    (void)herd::render_chat_text(r->messages, opt);
  }
  return 0;
}
