#pragma once
// Pre-tokenizers: split a normalized fragment into the pieces the BPE model encodes one by one.
// llama.cpp's regex lists and HF's Split / ByteLevel / Metaspace / Digits share this code: a
// llama.cpp regex list is a chain of Split(regex, Isolated) steps followed by the byte mapping.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/regex.h"

namespace squeeze::tok {

// What happens to the matched delimiters (HF SplitDelimiterBehavior).
enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct PreTokenizer {
  enum class Kind {
    split,       // split on `regex` matches, or on the literal `literal` when regex is null
    byte_level,  // optional GPT-2 regex split, then spell every byte with the GPT-2 byte map
    metaspace,   // spaces -> `replacement`, optional prefix, optional split before each one
    digits,      // isolate digits (each one, or each run)
  };
  enum class Prepend { always, first, never };

  Kind kind = Kind::split;
  std::shared_ptr<const Regex> regex;
  std::string literal;
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;
  bool add_prefix_space = false;  // byte_level
  std::string replacement;        // metaspace
  Prepend prepend = Prepend::always;
  bool split = true;              // metaspace
  bool individual_digits = false;  // digits
};

// Splits `text` (valid UTF-8) into pieces. at_text_start says whether this fragment begins the
// whole input (Metaspace's "first" prepend scheme only prefixes that one).
void pre_tokenize(const std::vector<PreTokenizer>& steps, const std::string& text,
                  bool at_text_start, std::vector<std::string>& pieces);

// The regex GPT-2 and HF ByteLevel(use_regex=true) split with.
extern const char* const kGpt2Regex;

}  // namespace squeeze::tok
