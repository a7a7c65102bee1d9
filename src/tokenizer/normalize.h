#pragma once
// Text normalizers run on each raw fragment (the text between special tokens) before it is split
// into pieces: the SentencePiece dummy prefix and space escaping of llama.cpp, and the HF
// tokenizer.json normalizers Prepend, Replace and NFC.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/regex.h"

namespace squeeze::tok {

struct Normalizer {
  enum class Kind {
    prepend,        // HF Prepend / llama.cpp dummy prefix: `text` before a non-empty fragment
    replace,        // every occurrence of the literal `pattern` becomes `text`
    replace_regex,  // every match of `regex` becomes `text`
    nfc,            // Unicode canonical composition
  };
  Kind kind = Kind::prepend;
  std::string pattern;
  std::string text;
  std::shared_ptr<const Regex> regex;

  static Normalizer prepend(std::string s) { return {Kind::prepend, "", std::move(s), nullptr}; }
  static Normalizer replace(std::string from, std::string to) {
    return {Kind::replace, std::move(from), std::move(to), nullptr};
  }
  static Normalizer replace_regex(std::shared_ptr<const Regex> re, std::string to) {
    return {Kind::replace_regex, "", std::move(to), std::move(re)};
  }
  static Normalizer nfc() { return {Kind::nfc, "", "", nullptr}; }
};

// Applies the steps in order. `text` is valid UTF-8 for every kind but replace/prepend, which
// work on bytes (llama.cpp's SPM path runs them on unvalidated input).
void normalize(const std::vector<Normalizer>& steps, std::string& text);

// Canonical composition (Unicode NFC) of valid UTF-8 text; see nfc.cpp.
std::string nfc(const std::string& text);

}  // namespace squeeze::tok
