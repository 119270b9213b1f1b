#include "herd/base/log.h"

#include <atomic>

namespace herd {
namespace {
std::atomic<int> g_level{int(LogLevel::kWarn)};
}
LogLevel log_level() { return LogLevel(g_level.load(std::memory_order_relaxed)); }
void set_log_level(LogLevel level) { g_level.store(int(level)); }
}  // namespace herd
