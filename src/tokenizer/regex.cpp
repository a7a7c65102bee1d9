#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace squeeze::tok {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  int n = pcre2_get_error_message(code, buf, sizeof buf);
  return n < 0 ? fmt("PCRE2 error %d", code) : std::string(reinterpret_cast<char*>(buf));
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!code)
    throw Error(fmt("cannot compile pre-tokenizer regex at offset %zu: %s (pattern %.200s)",
                    size_t(err_off), pcre2_message(err).c_str(), pattern.c_str()));
  // JIT is an optimization only: a library built without it still matches correctly.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(code, nullptr));
  if (!md) throw Error("out of memory creating regex match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  uint32_t extra = 0;  // PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED after an empty match
  while (pos <= text.size()) {
    uint32_t opts = PCRE2_NO_UTF_CHECK | extra;
    int rc = pcre2_match(code, subject, text.size(), pos, opts, md.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // deep backtracking: the interpreter uses the heap
      rc = pcre2_match(code, subject, text.size(), pos, opts | PCRE2_NO_JIT, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) {
      if (!extra) break;
      // No non-empty match at pos after an empty one: step one character and search again.
      extra = 0;
      size_t len = utf8_valid_len(text.data() + pos, text.size() - pos);
      pos += len ? len : 1;
      continue;
    }
    if (rc < 0)
      throw Error(fmt("pre-tokenizer regex failed: %s (pattern %.200s)", pcre2_message(rc).c_str(),
                      pattern_.c_str()));
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    size_t b = ov[0], e = ov[1];
    if (e < b || e > text.size()) throw Error("pre-tokenizer regex returned a bad match");
    if (e > b) {
      out.emplace_back(b, e);
      pos = e;
      extra = 0;
    } else {
      pos = b;
      extra = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
    }
  }
}

}  // namespace squeeze::tok
