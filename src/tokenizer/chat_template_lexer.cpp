#include "tokenizer/chat_template_lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tokenizer/chat_template_pystr.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace squeeze::jinja {

void throw_syntax_error(int line, int column, const std::string& message) {
  if (column <= 0) throw Error(fmt("chat template syntax error at line %d: %s", line, message.c_str()));
  throw Error(fmt("chat template syntax error at line %d, column %d: %s", line, column, message.c_str()));
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || uint8_t(c) >= 0x80; }
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

// jinja2 splits the source on \r\n, \r and \n, joins the lines with \n and, since
// keep_trailing_newline is off, drops one newline at the very end.
std::string normalize_newlines(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); i++) {
    if (src[i] == '\r') {
      out += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') i++;
    } else {
      out += src[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); i++)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;  // did the previous match end with a newline (lstrip_blocks rule)
    while (pos < src_.size()) {
      size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        push_data(src_.substr(pos), pos);
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      size_t after = tag + 2;
      char sign = (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) ? src_[after] : 0;
      size_t raw_end = kind == '%' ? match_raw_begin(tag) : std::string::npos;
      push_data(strip_text(src_.substr(pos, tag - pos), sign, kind != '{', line_starting), pos);
      if (sign) after++;
      if (raw_end != std::string::npos) {
        pos = lex_raw(raw_end, line_starting);
      } else if (kind == '#') {
        pos = skip_comment(tag, after);
      } else {
        pos = lex_tag(tag, after, kind == '%');
      }
      line_starting = src_[pos - 1] == '\n';
    }
    tokens_.push_back(make(TokenType::eof, "", src_.size()));
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;

  [[noreturn]] void fail(size_t pos, const std::string& msg) const {
    auto [line, col] = where(pos);
    throw_syntax_error(line, col, msg);
  }

  std::pair<int, int> where(size_t pos) const {
    size_t l = size_t(std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin()) - 1;
    size_t col = pystr::cp_count(std::string_view(src_).substr(line_starts_[l], pos - line_starts_[l]));
    return {int(l + 1), int(col + 1)};
  }

  Token make(TokenType type, std::string text, size_t pos) const {
    Token t;
    t.type = type;
    t.text = std::move(text);
    auto [line, col] = where(pos);
    t.line = line;
    t.column = col;
    return t;
  }

  void push_data(std::string text, size_t pos) {
    if (!text.empty()) tokens_.push_back(make(TokenType::data, std::move(text), pos));
  }

  size_t find_tag(size_t pos) const {
    for (size_t i = src_.find('{', pos); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  size_t skip_space(size_t i) const {
    while (i < src_.size()) {
      size_t len = tok::utf8_valid_len(src_.data() + i, src_.size() - i);
      if (len == 0 || !pystr::is_space(tok::utf8_decode(src_.data() + i, len))) break;
      i += len;
    }
    return i;
  }

  bool at(size_t i, const char* s) const { return src_.compare(i, std::strlen(s), s) == 0; }

  // Text before a tag: "-" strips all whitespace before it; otherwise lstrip_blocks removes
  // spaces between the start of the line and a block or comment tag ("+" opts out).
  std::string strip_text(std::string text, char sign, bool lstrip_applies, bool line_starting) const {
    if (sign == '-') return pystr::strip(text, std::nullopt, false, true);
    if (sign == '+' || !lstrip_applies) return text;
    size_t line_pos = text.rfind('\n');
    line_pos = line_pos == std::string::npos ? 0 : line_pos + 1;
    if (line_pos == 0 && !line_starting) return text;
    std::string_view tail = std::string_view(text).substr(line_pos);
    if (!tail.empty() && pystr::strip(tail, std::nullopt, true, false).empty()) text.resize(line_pos);
    return text;
  }

  // End of the closing "%}" of a block tag at i: "+%}" keeps what follows, "-%}" eats the
  // whitespace after it, "%}" eats one newline (trim_blocks). npos when there is none at i.
  size_t match_block_end(size_t i) const {
    if (at(i, "+%}")) return i + 3;
    if (at(i, "-%}")) return skip_space(i + 3);
    if (at(i, "%}")) return (i + 2 < src_.size() && src_[i + 2] == '\n') ? i + 3 : i + 2;
    return std::string::npos;
  }

  // {% raw %} (with optional - or + signs): the end of the opening tag, or npos.
  size_t match_raw_begin(size_t tag) const {
    size_t i = tag + 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) i++;
    i = skip_space(i);
    if (!at(i, "raw")) return std::string::npos;
    i = skip_space(i + 3);
    if (at(i, "-%}")) return skip_space(i + 3);
    if (at(i, "%}")) return i + 2;
    return std::string::npos;
  }

  size_t lex_raw(size_t begin, bool& line_starting) {
    line_starting = src_[begin - 1] == '\n';
    for (size_t i = src_.find("{%", begin); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t j = i + 2;
      char sign = (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) ? src_[j] : 0;
      if (sign) j++;
      j = skip_space(j);
      if (!at(j, "endraw")) continue;
      size_t end = match_block_end(skip_space(j + 6));
      if (end == std::string::npos) continue;
      push_data(strip_text(src_.substr(begin, i - begin), sign, true, line_starting), begin);
      return end;
    }
    fail(begin, "Missing end of raw directive");
  }

  size_t skip_comment(size_t tag, size_t body) {
    for (size_t i = body; i < src_.size(); i++) {
      if (at(i, "+#}")) return i + 3;
      if (at(i, "-#}")) return skip_space(i + 3);
      if (at(i, "#}")) return (i + 2 < src_.size() && src_[i + 2] == '\n') ? i + 3 : i + 2;
    }
    fail(tag, "Missing end of comment tag");
  }

  // Tokens of a {% %} or {{ }} tag from i up to and including its end; returns where text resumes.
  size_t lex_tag(size_t tag, size_t i, bool block) {
    tokens_.push_back(make(block ? TokenType::block_begin : TokenType::variable_begin, "", tag));
    std::vector<char> closers;  // the end tag only counts with brackets balanced, as in jinja2
    while (i < src_.size()) {
      if (closers.empty()) {
        size_t end = std::string::npos;
        if (block) end = match_block_end(i);
        else if (at(i, "-}}")) end = skip_space(i + 3);
        else if (at(i, "}}")) end = i + 2;
        if (end != std::string::npos) {
          tokens_.push_back(make(block ? TokenType::block_end : TokenType::variable_end, "", i));
          return end;
        }
      }
      size_t next = skip_space(i);
      if (next != i) {
        i = next;
        continue;
      }
      if (size_t end = match_float(i)) {
        i = push_float(i, end);
      } else if (size_t end = match_integer(i)) {
        i = push_integer(i, end);
      } else if (is_ident_start(src_[i])) {
        size_t j = i;
        while (j < src_.size() && is_ident_char(src_[j])) j++;
        tokens_.push_back(make(TokenType::name, src_.substr(i, j - i), i));
        i = j;
      } else if (src_[i] == '\'' || src_[i] == '"') {
        i = lex_string(i);
      } else {
        i = lex_operator(i, closers);
      }
    }
    return i;  // unterminated tag: the parser reports the unexpected end
  }

  size_t digits_with_underscores(size_t i, bool (*ok)(char)) const {
    // (\d+_)*\d+ style: digits, single underscores only between digits
    size_t j = i;
    if (j >= src_.size() || !ok(src_[j])) return i;
    while (j < src_.size()) {
      if (ok(src_[j])) j++;
      else if (src_[j] == '_' && j + 1 < src_.size() && ok(src_[j + 1])) j++;
      else break;
    }
    return j;
  }

  // jinja2's float_re: digits, then an exponent (optionally after a fraction) or a fraction.
  size_t match_float(size_t i) const {
    if (!is_digit(src_[i]) || (i > 0 && src_[i - 1] == '.')) return 0;
    size_t j = digits_with_underscores(i, is_digit);
    auto exponent = [&](size_t k) -> size_t {
      if (k >= src_.size() || (src_[k] != 'e' && src_[k] != 'E')) return 0;
      k++;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) k++;
      size_t e = digits_with_underscores(k, is_digit);
      return e == k ? 0 : e;
    };
    size_t frac = 0;
    if (j < src_.size() && src_[j] == '.') {
      size_t f = digits_with_underscores(j + 1, is_digit);
      if (f != j + 1) frac = f;
    }
    if (frac) {
      if (size_t e = exponent(frac)) return e;
      return frac;
    }
    if (size_t e = exponent(j)) return e;
    return 0;
  }

  size_t match_integer(size_t i) const {
    if (!is_digit(src_[i])) return 0;
    if (src_[i] == '0' && i + 1 < src_.size()) {
      char p = char(src_[i + 1] | 0x20);
      bool (*ok)(char) = p == 'b' ? +[](char c) { return c == '0' || c == '1'; }
                         : p == 'o' ? +[](char c) { return c >= '0' && c <= '7'; }
                         : p == 'x' ? +[](char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
                                    : nullptr;
      if (ok) {
        size_t j = i + 2;
        if (j < src_.size() && src_[j] == '_') j++;
        size_t e = digits_with_underscores(j, ok);
        if (e != j) return e;
      }
    }
    if (src_[i] == '0') {  // 0(_?0)*
      size_t j = i + 1;
      while (j < src_.size()) {
        if (src_[j] == '0') j++;
        else if (src_[j] == '_' && j + 1 < src_.size() && src_[j + 1] == '0') j += 2;
        else break;
      }
      return j;
    }
    return digits_with_underscores(i, is_digit);
  }

  size_t push_float(size_t i, size_t end) {
    std::string text = src_.substr(i, end - i);
    std::string clean;
    for (char c : text)
      if (c != '_') clean += c;
    Token t = make(TokenType::floating, text, i);
    t.float_value = std::strtod(clean.c_str(), nullptr);
    tokens_.push_back(std::move(t));
    return end;
  }

  size_t push_integer(size_t i, size_t end) {
    std::string text = src_.substr(i, end - i);
    std::string clean;
    for (char c : text)
      if (c != '_') clean += c;
    int base = 10;
    size_t skip = 0;
    if (clean.size() > 1 && clean[0] == '0') {
      char p = char(clean[1] | 0x20);
      base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 10;
      if (base != 10) skip = 2;
    }
    errno = 0;
    long long v = std::strtoll(clean.c_str() + skip, nullptr, base);
    if (errno == ERANGE) fail(i, "integer literal too large");
    Token t = make(TokenType::integer, text, i);
    t.int_value = v;
    tokens_.push_back(std::move(t));
    return end;
  }

  size_t lex_operator(size_t i, std::vector<char>& closers) {
    static const char* const kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                       "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};
    for (const char* op : kOps) {
      if (!at(i, op)) continue;
      char c = op[0];
      if (c == '(' || c == '[' || c == '{') {
        closers.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (c == ')' || c == ']' || c == '}') {
        if (closers.empty()) fail(i, fmt("unexpected '%c'", c));
        if (closers.back() != c) fail(i, fmt("unexpected '%c', expected '%c'", c, closers.back()));
        closers.pop_back();
      }
      tokens_.push_back(make(TokenType::op, op, i));
      return i + std::strlen(op);
    }
    size_t len = std::max<size_t>(1, tok::utf8_valid_len(src_.data() + i, src_.size() - i));
    fail(i, "unexpected char " + pystr::repr(src_.substr(i, len)));
  }

  // A quoted string; its escapes decode as Python's unicode-escape codec does (jinja2 encodes
  // the text with backslashreplace first, so a backslash before a non-ASCII character stays
  // literal and the character comes out as its \x/\u escape text).
  size_t lex_string(size_t start) {
    char quote = src_[start];
    size_t i = start + 1;
    while (i < src_.size() && src_[i] != quote) {
      if (src_[i] == '\\') i++;
      if (i < src_.size()) i += std::max<size_t>(1, tok::utf8_valid_len(src_.data() + i, src_.size() - i));
    }
    if (i >= src_.size()) fail(start, "unexpected char " + pystr::repr(std::string(1, quote)));
    std::string body = src_.substr(start + 1, i - start - 1);
    tokens_.push_back(make(TokenType::string, decode_escapes(body, start), start));
    return i + 1;
  }

  std::string decode_escapes(const std::string& s, size_t pos) const {
    std::string out;
    auto hex_value = [&](size_t at, size_t n, uint32_t& v) {
      if (at + n > s.size()) return false;
      v = 0;
      for (size_t k = at; k < at + n; k++) {
        char c = s[k];
        int d = is_digit(c) ? c - '0' : ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') ? (c | 0x20) - 'a' + 10 : -1;
        if (d < 0) return false;
        v = v * 16 + uint32_t(d);
      }
      return true;
    };
    auto put = [&](uint32_t cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) fail(pos, "surrogate code points are not supported in string literals");
      pystr::append_utf8(out, cp);
    };
    for (size_t i = 0; i < s.size(); i++) {
      if (s[i] != '\\') {
        out += s[i];
        continue;
      }
      char n = s[++i];  // the string scan guarantees a character after each backslash
      uint32_t v = 0;
      switch (n) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x':
          if (!hex_value(i + 1, 2, v)) fail(pos, "truncated \\xXX escape");
          put(v), i += 2;
          break;
        case 'u':
          if (!hex_value(i + 1, 4, v)) fail(pos, "truncated \\uXXXX escape");
          put(v), i += 4;
          break;
        case 'U':
          if (!hex_value(i + 1, 8, v)) fail(pos, "truncated \\UXXXXXXXX escape");
          if (v > 0x10FFFF) fail(pos, "illegal Unicode character");
          put(v), i += 8;
          break;
        case 'N': fail(pos, "\\N{...} escapes are not supported");
        default:
          if (n >= '0' && n <= '7') {
            v = uint32_t(n - '0');
            for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; k++) v = v * 8 + uint32_t(s[++i] - '0');
            put(v);
          } else if (uint8_t(n) >= 0x80) {  // backslash + the character's backslashreplace text
            size_t len = std::max<size_t>(1, tok::utf8_valid_len(s.data() + i, s.size() - i));
            uint32_t cp = tok::utf8_decode(s.data() + i, len);
            i += len - 1;
            char buf[16];
            if (cp < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", cp);
            else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", cp);
            else std::snprintf(buf, sizeof buf, "\\U%08x", cp);
            out += '\\';
            out += buf + 1;
          } else {  // unknown escapes stay as written
            out += '\\';
            out += n;
          }
      }
    }
    return out;
  }
};

}  // namespace

std::vector<Token> lex_template(std::string_view source) {
  return Lexer(normalize_newlines(source)).run();
}

}  // namespace squeeze::jinja
