#pragma once
// Splits a chat template into tokens the way jinja2's lexer does with trim_blocks=True and
// lstrip_blocks=True (transformers' settings): template text between tags comes out as data
// tokens with the whitespace control of {%- -%} {{- -}} {#- -#}, trim_blocks and lstrip_blocks
// already applied, so the parser never deals with whitespace.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace squeeze::jinja {

enum class TokenType : uint8_t {
  data,            // template text
  variable_begin,  // {{
  variable_end,    // }}
  block_begin,     // {%
  block_end,       // %}
  name,            // identifiers and keywords (if, in, not, ...)
  string,          // a string literal, escapes decoded
  integer,
  floating,
  op,              // an operator or punctuation: + // == ( , ...
  eof,
};

struct Token {
  TokenType type;
  std::string text;  // data, name, decoded string, operator; source spelling for numbers
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

// Throws Error("chat template syntax error at line L, column C: ...") for text jinja2's lexer
// rejects: an unterminated comment or raw block, a bad character or escape, unbalanced brackets.
// The source is expected to be valid UTF-8.
std::vector<Token> lex_template(std::string_view source);

// The message format every syntax error uses (column <= 0: unknown, left out).
[[noreturn]] void throw_syntax_error(int line, int column, const std::string& message);

}  // namespace squeeze::jinja
