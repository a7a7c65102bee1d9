#pragma once
// Builds the syntax tree of a chat template from its tokens, following jinja2's grammar and
// operator precedence (lowest first): `x if c else y`, or, and, not, comparisons and `in`,
// + -, ~, * / // %, **, unary - +, then postfix . [] () and the | filter and `is` test chains.
#include <vector>

#include "tokenizer/chat_template_ast.h"
#include "tokenizer/chat_template_lexer.h"

namespace squeeze::jinja {

// Throws Error("chat template syntax error at line L, column C: ...") for malformed templates,
// tags outside the supported subset, and nesting deeper than kMaxParseDepth.
Body parse_template(const std::vector<Token>& tokens);

constexpr int kMaxParseDepth = 100;

// Throws a syntax error for a filter or test name jinja2 would reject while compiling
// (parse_template runs it).
void check_filter_and_test_names(const Body& body);

}  // namespace squeeze::jinja
