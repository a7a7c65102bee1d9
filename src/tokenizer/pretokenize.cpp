#include "tokenizer/pretokenize.h"

#include <utility>

#include "tokenizer/unicode.h"

namespace squeeze::tok {

const char* const kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

struct Piece {
  std::string text;
  bool at_start;  // begins at offset 0 of the whole input
};

struct Span {
  size_t b, e;
  bool match;
};

// HF tokenizers' NormalizedString::split: the text cut at the matches, then the delimiters kept,
// dropped or glued to a neighbour as the behavior says. Empty spans are dropped.
void split_spans(const std::string& text, const std::vector<std::pair<size_t, size_t>>& matches,
                 bool invert, SplitBehavior behavior, std::vector<std::pair<size_t, size_t>>& out) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (b > prev) spans.push_back({prev, b, false});
    spans.push_back({b, e, true});
    prev = e;
  }
  if (prev < text.size()) spans.push_back({prev, text.size(), false});
  if (invert)
    for (Span& s : spans) s.match = !s.match;

  std::vector<Span> res;
  switch (behavior) {
    case SplitBehavior::isolated:
      res = spans;
      break;
    case SplitBehavior::removed:
      for (const Span& s : spans)
        if (!s.match) res.push_back(s);
      break;
    case SplitBehavior::merged_with_previous: {
      bool prev_match = false;
      for (const Span& s : spans) {
        if (s.match && !prev_match && !res.empty()) res.back().e = s.e;
        else res.push_back(s);
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::merged_with_next: {
      bool prev_match = false;
      for (size_t i = spans.size(); i-- > 0;) {
        const Span& s = spans[i];
        if (s.match && !prev_match && !res.empty()) res.back().b = s.b;
        else res.push_back(s);
        prev_match = s.match;
      }
      res = std::vector<Span>(res.rbegin(), res.rend());
      break;
    }
    case SplitBehavior::contiguous: {
      bool prev_match = false;
      for (const Span& s : spans) {
        if (s.match == prev_match && !res.empty()) res.back().e = s.e;
        else res.push_back(s);
        prev_match = s.match;
      }
      break;
    }
  }
  for (const Span& s : res)
    if (s.e > s.b) out.emplace_back(s.b, s.e);
}

void find_literal(const std::string& text, const std::string& lit,
                  std::vector<std::pair<size_t, size_t>>& out) {
  if (lit.empty()) return;
  for (size_t pos = text.find(lit); pos != std::string::npos; pos = text.find(lit, pos + lit.size()))
    out.emplace_back(pos, pos + lit.size());
}

void replace_spaces(std::string& s, const std::string& rep) {
  if (s.find(' ') == std::string::npos) return;
  std::string out;
  out.reserve(s.size() * 2);
  for (char c : s) {
    if (c == ' ') out += rep;
    else out += c;
  }
  s = std::move(out);
}

// HF Digits tests char::is_numeric, i.e. the Unicode N categories, one character at a time;
// the contiguous variant glues neighbouring matches together.
const Regex& digit_regex() {
  static const Regex one("\\p{N}");
  return one;
}

// Splits every piece with `matcher`, carrying the at_start flag to the first sub-piece.
template <class Matcher>
void split_all(std::vector<Piece>& pieces, bool invert, SplitBehavior behavior, Matcher&& matcher) {
  std::vector<Piece> next;
  std::vector<std::pair<size_t, size_t>> matches, spans;
  for (Piece& p : pieces) {
    matches.clear();
    spans.clear();
    matcher(p.text, matches);
    split_spans(p.text, matches, invert, behavior, spans);
    for (auto [b, e] : spans) next.push_back({p.text.substr(b, e - b), p.at_start && b == 0});
  }
  pieces = std::move(next);
}

}  // namespace

void pre_tokenize(const std::vector<PreTokenizer>& steps, const std::string& text,
                  bool at_text_start, std::vector<std::string>& out) {
  std::vector<Piece> pieces;
  if (!text.empty()) pieces.push_back({text, at_text_start});
  for (const PreTokenizer& st : steps) {
    switch (st.kind) {
      case PreTokenizer::Kind::split:
        split_all(pieces, st.invert, st.behavior, [&](const std::string& t, auto& m) {
          if (st.regex) st.regex->find_all(t, m);
          else find_literal(t, st.literal, m);
        });
        break;
      case PreTokenizer::Kind::digits:
        split_all(pieces, false,
                  st.individual_digits ? SplitBehavior::isolated : SplitBehavior::contiguous,
                  [&](const std::string& t, auto& m) { digit_regex().find_all(t, m); });
        break;
      case PreTokenizer::Kind::byte_level:
        if (st.add_prefix_space)
          for (Piece& p : pieces)
            if (p.text[0] != ' ') p.text.insert(0, " ");
        // use_regex=true arrives as a non-null regex (the GPT-2 one) from the loader.
        if (st.regex)
          split_all(pieces, false, SplitBehavior::isolated,
                    [&](const std::string& t, auto& m) { st.regex->find_all(t, m); });
        for (Piece& p : pieces) p.text = bytes_to_unicode_string(p.text);
        break;
      case PreTokenizer::Kind::metaspace:
        for (Piece& p : pieces) {
          replace_spaces(p.text, st.replacement);
          bool starts = p.text.compare(0, st.replacement.size(), st.replacement) == 0;
          bool want = st.prepend == PreTokenizer::Prepend::always ||
                      (st.prepend == PreTokenizer::Prepend::first && p.at_start);
          if (want && !starts) p.text.insert(0, st.replacement);
        }
        if (st.split)
          split_all(pieces, false, SplitBehavior::merged_with_next,
                    [&](const std::string& t, auto& m) { find_literal(t, st.replacement, m); });
        break;
    }
  }
  for (Piece& p : pieces) out.push_back(std::move(p.text));
}

}  // namespace squeeze::tok
