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

std::string printable(std::string_view s, size_t max_len) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x20 || ch == 0x7f) out += fmt("\\x%02x", ch);
    else out += char(ch);
  }
  if (s.size() > max_len) out += "...";
  return out;
}

void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "squeeze: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace squeeze
