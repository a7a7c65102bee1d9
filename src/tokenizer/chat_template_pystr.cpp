#include "tokenizer/chat_template_pystr.h"

#include <cerrno>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <locale.h>
#include <wctype.h>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace squeeze::jinja::pystr {

namespace {

// Decodes the code point at s[i], advancing i. Input is valid UTF-8; a stray byte (which the
// entry checks rule out) is still read as one code point rather than past the end.
uint32_t next_cp(std::string_view s, size_t& i) {
  size_t len = tok::utf8_valid_len(s.data() + i, s.size() - i);
  if (len == 0) return uint8_t(s[i++]);
  uint32_t cp = tok::utf8_decode(s.data() + i, len);
  i += len;
  return cp;
}

// glibc's C.UTF-8 locale holds the Unicode simple case mappings; without it only ASCII maps.
locale_t utf8_locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(0));
  return loc;
}

uint32_t to_upper(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
  locale_t loc = utf8_locale();
  return loc ? uint32_t(towupper_l(wint_t(cp), loc)) : cp;
}

uint32_t to_lower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  locale_t loc = utf8_locale();
  return loc ? uint32_t(towlower_l(wint_t(cp), loc)) : cp;
}

bool is_cased(uint32_t cp) { return to_upper(cp) != cp || to_lower(cp) != cp; }

// Python's full case mappings differ from the simple ones for a few characters.
void append_upper(std::string& out, uint32_t cp) {
  if (cp == 0xDF) {  // ß
    out += "SS";
    return;
  }
  append_utf8(out, to_upper(cp));
}

void append_lower(std::string& out, uint32_t cp) {
  if (cp == 0x130) {  // İ -> i + combining dot above
    out += "i\xCC\x87";
    return;
  }
  append_utf8(out, to_lower(cp));
}

bool is_line_break(uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
         cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

size_t byte_to_cp_index(std::string_view s, size_t byte_pos) {
  return cp_count(s.substr(0, byte_pos));
}

void append_hex(std::string& out, uint32_t v, int digits) {
  static const char* hex = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; i--) out += hex[(v >> (4 * i)) & 15];
}

}  // namespace

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out.push_back(next_cp(s, i));
  return out;
}

std::vector<size_t> cp_offsets(std::string_view s) {
  std::vector<size_t> out;
  out.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    out.push_back(i);
    next_cp(s, i);
  }
  out.push_back(s.size());
  return out;
}

size_t cp_count(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void append_utf8(std::string& out, uint32_t cp) { tok::utf8_append(out, cp); }

bool is_space(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_printable(uint32_t cp) {
  if (cp < 0x80) return cp >= 0x20 && cp < 0x7F;
  // Python: not printable = categories Other (Cc Cf Cs Co Cn) and Separator (Zl Zp Zs).
  // PCRE2 10.42 and Python 3.11 both use Unicode 14.
  static const tok::Regex nonprintable("[\\p{Cc}\\p{Cf}\\p{Co}\\p{Cn}\\p{Zl}\\p{Zp}\\p{Zs}]");
  if (cp >= 0xD800 && cp <= 0xDFFF) return false;
  std::string ch;
  append_utf8(ch, cp);
  std::vector<std::pair<size_t, size_t>> spans;
  nonprintable.find_all(ch, spans);
  return spans.empty();
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::vector<uint32_t> set;
  if (chars) set = code_points(*chars);
  auto strippable = [&](uint32_t cp) {
    if (!chars) return is_space(cp);
    for (uint32_t c : set)
      if (c == cp) return true;
    return false;
  };
  std::vector<size_t> off = cp_offsets(s);
  size_t n = off.size() - 1, b = 0, e = n;
  auto cp_at = [&](size_t k) {
    size_t i = off[k];
    return next_cp(s, i);
  };
  if (left)
    while (b < e && strippable(cp_at(b))) b++;
  if (right)
    while (e > b && strippable(cp_at(e - 1))) e--;
  return std::string(s.substr(off[b], off[e] - off[b]));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (sep->empty()) throw Error("empty separator");
    size_t pos = 0;
    while (int64_t(out.size()) < maxsplit) {
      size_t hit = s.find(*sep, pos);
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, hit - pos));
      pos = hit + sep->size();
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size()) {  // skip whitespace
      size_t k = j;
      if (!is_space(next_cp(s, k))) break;
      j = k;
    }
    i = j;
    if (i >= s.size()) break;
    if (int64_t(out.size()) == maxsplit) {
      out.emplace_back(s.substr(i));
      break;
    }
    while (j < s.size()) {  // the word
      size_t k = j;
      if (is_space(next_cp(s, k))) break;
      j = k;
    }
    out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (maxsplit < 0) return split(s, sep, maxsplit);
  if (sep) {
    if (sep->empty()) throw Error("empty separator");
    size_t end = s.size();
    while (int64_t(out.size()) < maxsplit && end >= sep->size()) {
      size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    out.emplace_back(s.substr(0, end));
  } else {
    std::vector<size_t> off = cp_offsets(s);
    std::vector<uint32_t> cps = code_points(s);
    size_t e = cps.size();
    while (true) {
      while (e > 0 && is_space(cps[e - 1])) e--;
      if (e == 0) break;
      if (int64_t(out.size()) == maxsplit) {
        out.emplace_back(s.substr(0, off[e]));
        break;
      }
      size_t b = e;
      while (b > 0 && !is_space(cps[b - 1])) b--;
      out.emplace_back(s.substr(off[b], off[e] - off[b]));
      e = b;
    }
  }
  return std::vector<std::string>(out.rbegin(), out.rend());
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    size_t at = i;
    uint32_t cp = next_cp(s, i);
    if (!is_line_break(cp)) continue;
    size_t end_of_break = i;
    if (cp == '\r' && i < s.size() && s[i] == '\n') end_of_break = ++i;
    out.emplace_back(s.substr(start, (keepends ? end_of_break : at) - start));
    start = end_of_break;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old.empty()) {  // Python inserts repl before every character and at the end
    std::vector<size_t> off = cp_offsets(s);
    int64_t done = 0;
    for (size_t k = 0; k + 1 < off.size(); k++) {
      if (done < count) out += repl, done++;
      out.append(s.substr(off[k], off[k + 1] - off[k]));
    }
    if (done < count) out += repl;
    return out;
  }
  size_t pos = 0;
  for (int64_t done = 0; done < count; done++) {
    size_t hit = s.find(old, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(repl);
    pos = hit + old.size();
  }
  out.append(s.substr(pos));
  return out;
}

int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return int64_t(cp_count(s)) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size())) n++;
  return n;
}

int64_t find(std::string_view s, std::string_view sub, bool reverse) {
  size_t hit = reverse ? s.rfind(sub) : s.find(sub);
  return hit == std::string_view::npos ? -1 : int64_t(byte_to_cp_index(s, hit));
}

std::string upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) append_upper(out, next_cp(s, i));
  return out;
}

std::string lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) append_lower(out, next_cp(s, i));
  return out;
}

std::string title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_cp(s, i);
    if (prev_cased) append_lower(out, cp);
    else append_upper(out, cp);
    prev_cased = is_cased(cp);
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_cp(s, i);
    if (first) append_upper(out, cp);
    else append_lower(out, cp);
    first = false;
  }
  return out;
}

bool is_lower(std::string_view s) {
  bool any_cased = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_cp(s, i);
    if (!is_cased(cp)) continue;
    if (to_lower(cp) != cp) return false;
    any_cased = true;
  }
  return any_cased;
}

bool is_upper(std::string_view s) {
  bool any_cased = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_cp(s, i);
    if (!is_cased(cp)) continue;
    if (to_upper(cp) != cp) return false;
    any_cased = true;
  }
  return any_cased;
}

std::string repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    uint32_t cp = next_cp(s, i);
    if (cp == uint32_t(quote) || cp == '\\') {
      out += '\\';
      out += char(cp);
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (is_printable(cp)) {
      out.append(s.substr(start, i - start));
    } else if (cp < 0x100) {
      out += "\\x";
      append_hex(out, cp, 2);
    } else if (cp < 0x10000) {
      out += "\\u";
      append_hex(out, cp, 4);
    } else {
      out += "\\U";
      append_hex(out, cp, 8);
    }
  }
  out += quote;
  return out;
}

std::string json_quote(std::string_view s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    uint32_t cp = next_cp(s, i);
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
      if (cp >= 0x10000) {  // a surrogate pair, as Python writes astral characters
        uint32_t v = cp - 0x10000;
        out += "\\u";
        append_hex(out, 0xD800 | (v >> 10), 4);
        out += "\\u";
        append_hex(out, 0xDC00 | (v & 0x3FF), 4);
      } else {
        out += "\\u";
        append_hex(out, cp, 4);
      }
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += '"';
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// Digits with single underscores between them (PEP 515), appended to out without underscores.
bool take_digits(std::string_view s, size_t& i, int base, std::string& out) {
  auto digit = [&](char c) {
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : (c >= 'A' && c <= 'Z') ? c - 'A' + 10 : 99;
    return v < base;
  };
  size_t start = i;
  while (i < s.size()) {
    if (digit(s[i])) {
      out += s[i++];
    } else if (s[i] == '_' && i > start && i + 1 < s.size() && digit(s[i + 1])) {
      i++;
    } else {
      break;
    }
  }
  return i > start;
}

std::string_view trim_space(std::string_view s) {
  std::vector<size_t> off = cp_offsets(s);
  size_t b = 0, e = off.size() - 1;
  auto space_at = [&](size_t k) {
    size_t i = off[k];
    return is_space(next_cp(s, i));
  };
  while (b < e && space_at(b)) b++;
  while (e > b && space_at(e - 1)) e--;
  return s.substr(off[b], off[e] - off[b]);
}

}  // namespace

std::optional<int64_t> parse_int(std::string_view text, int base) {
  std::string_view s = trim_space(text);
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i + 1 < s.size() && s[i] == '0') {
    char p = char(s[i + 1] | 0x20);
    int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefixed && (base == prefixed || base == 0)) {
      base = prefixed;
      i += 2;
      if (i < s.size() && s[i] == '_') i++;
    }
  }
  if (base == 0) base = 10;
  std::string digits;
  if (!take_digits(s, i, base, digits) || i != s.size()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno == ERANGE) return std::nullopt;
  return neg ? -int64_t(v) : int64_t(v);
}

std::optional<double> parse_float(std::string_view text) {
  std::string_view s = trim_space(text);
  size_t i = 0;
  std::string clean;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) clean += s[i++];
  std::string rest(s.substr(i));
  for (auto& c : rest) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (rest == "inf" || rest == "infinity") return clean == "-" ? -INFINITY : INFINITY;
  if (rest == "nan") return NAN;
  bool int_part = take_digits(s, i, 10, clean);
  bool frac_part = false;
  if (i < s.size() && s[i] == '.') {
    clean += s[i++];
    frac_part = take_digits(s, i, 10, clean);
  }
  if (!int_part && !frac_part) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    clean += s[i++];
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) clean += s[i++];
    if (!take_digits(s, i, 10, clean)) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  return std::strtod(clean.c_str(), nullptr);
}

}  // namespace squeeze::jinja::pystr
