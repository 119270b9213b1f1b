// data: URLs (RFC 2397) as OpenAI clients send images: "data:image/png;base64,iVBORw0…". The
// server fetches nothing, so any other URL is refused; the media type is not trusted (the
// decoder looks at the bytes).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "herd/base/status.h"

namespace herd::server {

// The payload of a base64 data: URL. Errors (without a field name; callers prefix it): not a
// data: URL, not base64, a bad character (named with its offset in the payload).
Result<std::vector<uint8_t>> decode_data_url(std::string_view url);

}  // namespace herd::server
