#include "tokenizer/normalize.h"

#include <utility>

namespace squeeze::tok {

namespace {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty() || s.find(from) == std::string::npos) return s;
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

std::string replace_regex(const std::string& s, const Regex& re, const std::string& to) {
  std::vector<std::pair<size_t, size_t>> spans;
  re.find_all(s, spans);
  if (spans.empty()) return s;
  std::string out;
  size_t pos = 0;
  for (auto [b, e] : spans) {
    out.append(s, pos, b - pos);
    out += to;
    pos = e;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

}  // namespace

void normalize(const std::vector<Normalizer>& steps, std::string& text) {
  for (const Normalizer& n : steps) {
    switch (n.kind) {
      case Normalizer::Kind::prepend:
        // HF Prepend leaves an empty string alone; llama.cpp never sees empty fragments.
        if (!text.empty()) text.insert(0, n.text);
        break;
      case Normalizer::Kind::replace:
        text = replace_all(text, n.pattern, n.text);
        break;
      case Normalizer::Kind::replace_regex:
        text = replace_regex(text, *n.regex, n.text);
        break;
      case Normalizer::Kind::nfc:
        text = nfc(text);
        break;
    }
  }
}

}  // namespace squeeze::tok
