#pragma once
// Logs go to stderr so that stdout carries only program output (generated text, token ids).
#include <cstdio>

namespace squeeze {
enum class LogLevel { quiet = 0, info = 1, debug = 2 };
LogLevel log_level();
void set_log_level(LogLevel level);
}  // namespace squeeze

#define SQZ_LOG(...)                                                                    \
  do {                                                                                  \
    if (::squeeze::log_level() >= ::squeeze::LogLevel::info) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)
#define SQZ_DEBUG(...)                                                                   \
  do {                                                                                   \
    if (::squeeze::log_level() >= ::squeeze::LogLevel::debug) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)
