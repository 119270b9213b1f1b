// Parsing the JSON of model files (config.json, safetensors headers, the shard index) into a
// Status instead of an exception: syntax errors carry nlohmann's line and column, and where a
// repeated key would silently pick one of two values (a tensor in a header, a weight_map entry)
// it can be refused.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "herd/base/status.h"

namespace herd {

enum class DuplicateKeys { kLastWins, kError };

// `source` names the file in errors ("m/config.json: not valid JSON: parse error at line 3,
// column 5: ..."; "m/x.safetensors: key 'a' appears twice at the top level").
Result<nlohmann::json> parse_json(std::string_view text, const std::string& source,
                                  DuplicateKeys duplicates = DuplicateKeys::kLastWins);

}  // namespace herd
