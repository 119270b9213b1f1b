// Parsing of token-id and position lists given on the command line or in files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "herd/base/status.h"

namespace herd::cli {

// "1,2,3", "1 2 3" or a JSON array "[1, 2, 3]" of any integers; an empty element ("1,,2",
// "1,") is an error. `source` names the flag or file in errors.
Result<std::vector<int64_t>> parse_int_list(const std::string& text, const std::string& source);
// The same, each a token id in [0, INT32_MAX].
Result<std::vector<int32_t>> parse_token_list(const std::string& text, const std::string& source);
// "0,17,-1": negative values count from the end of n tokens; each must fall in [0, n).
Result<std::vector<int64_t>> parse_position_list(const std::string& text, int64_t n);

}  // namespace herd::cli
