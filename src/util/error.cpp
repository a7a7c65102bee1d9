#include "util/error.h"

#include <cstdarg>
#include <vector>

namespace squeeze {

std::string fmt(const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, f, ap);
  va_end(ap);
  std::string out(n > 0 ? size_t(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), size_t(n) + 1, f, ap2);
  va_end(ap2);
  return out;
}

void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "squeeze: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace squeeze
