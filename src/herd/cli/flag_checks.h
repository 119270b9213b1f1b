// Validators for numeric and list flags. CLI11 runs a validator on the text of a flag before
// converting it, so these see exactly what was typed: "", "abc", "nan", "1e999" and
// "1000000000000" get a message naming the value and the allowed range instead of CLI11's
// "Could not convert" or a 308-digit bound. main() prints them as "herd: error: --flag: ...".
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "herd/runtime/request_check.h"

namespace herd::cli {

// Largest token count a flag accepts (-n, --ctx, prompt lengths): 2^31, beyond any context.
inline constexpr int64_t kMaxTokensFlag = int64_t(1) << 31;

// Most threads a command starts (ThreadPool::kMaxThreads); more than the machine's cores only
// warns, since oversubscription is slow but not wrong.
CLI::Validator threads_flag();
// An integer in [lo, hi]; `note` is appended to the range ("0 = skip").
CLI::Validator int_in(int64_t lo, int64_t hi, const std::string& note = "");
// A non-negative integer that fits in 64 bits (seeds).
CLI::Validator uint64_flag();
// A finite number in [lo, hi] (or (lo, hi] when lo_open).
CLI::Validator real_in(double lo, double hi, bool lo_open = false);
// A sampling setting, by the rules of runtime/request_check.h.
CLI::Validator sampling_flag(RequestField field);
// A list of integers ("1,2,3", "1 2 3", "[1, 2]"): not empty, no empty element ("1,,2").
CLI::Validator int_list_flag();

}  // namespace herd::cli
