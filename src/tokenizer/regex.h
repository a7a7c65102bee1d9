#pragma once
// A compiled PCRE2 pattern in UTF + UCP mode (so \p{L}, \s and \d follow Unicode properties, as
// the Oniguruma regexes of HF tokenizers and llama.cpp's own tables do), JIT-compiled when the
// library supports it. Immutable after construction and safe to share between threads.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squeeze::tok {

class Regex {
 public:
  explicit Regex(const std::string& pattern);  // throws Error naming the pattern and the problem
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [begin, end) byte spans of the non-overlapping matches in text, left to right.
  // Empty matches are left out (HF drops the empty pieces they would make). text must be valid
  // UTF-8: the tokenizer sanitizes input before any regex sees it.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*, kept opaque so that users need no PCRE2 headers
};

}  // namespace squeeze::tok
