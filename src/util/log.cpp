#include "util/log.h"

#include <atomic>

namespace squeeze {
namespace {
std::atomic<int> g_level{int(LogLevel::info)};
}
LogLevel log_level() { return LogLevel(g_level.load(std::memory_order_relaxed)); }
void set_log_level(LogLevel level) { g_level.store(int(level), std::memory_order_relaxed); }
}  // namespace squeeze
