#pragma once
// Errors the engine reports to users. Every failure caused by input (a file, a flag, a request)
// is thrown as squeeze::Error with a one-line message naming the problem; the CLI prints it and
// exits non-zero. Programming errors use SQZ_ASSERT, which aborts with a location.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace squeeze {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// printf-style message builder for errors, e.g. throw Error(fmt("bad %s", x)).
std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));

// Input-provided text made safe for a one-line error message: control bytes escaped as \xHH
// and the length capped, so a corrupt name cannot split the line or flood the terminal.
std::string printable(std::string_view s, size_t max_len = 96);

[[noreturn]] void assert_fail(const char* expr, const char* file, int line);

}  // namespace squeeze

#define SQZ_ASSERT(x) ((x) ? (void)0 : ::squeeze::assert_fail(#x, __FILE__, __LINE__))
