// Diagnostics go to stderr; stdout is reserved for results (generated text, JSON).
#pragma once

#include <fmt/format.h>

#include <cstdio>

namespace herd {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };
LogLevel log_level();
void set_log_level(LogLevel level);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (int(level) > int(log_level())) return;
  static const char* const kTags[] = {"error", "warn", "info", "debug"};
  fmt::print(stderr, "herd {}: {}\n", kTags[int(level)], fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace herd
