#pragma once
// The recursive-descent parser behind parse_template (chat_template_parser.h), shared by its two
// halves: statements and tags (chat_template_parser.cpp) and expressions
// (chat_template_parser_expr.cpp). Private to those two files.
#include <initializer_list>
#include <string>
#include <vector>

#include "tokenizer/chat_template_parser.h"
#include "util/error.h"

namespace squeeze::jinja {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : toks_(tokens) {}

  Body parse() {
    Body body = subparse({});
    if (cur().type != TokenType::eof) fail("unexpected " + describe(cur()));
    return body;
  }

 private:
  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;               // enclosing for loops (break/continue need one)
  int loop_name_uses_ = 0;           // how many times the name `loop` has been read so far
  std::vector<bool>* macro_extras_ = nullptr;  // set while parsing a macro body: uses varargs/kwargs

  // Bounds the recursion of the descent so that "((((..." cannot overflow the stack.
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxParseDepth) p.fail(fmt("template nests more than %d levels deep", kMaxParseDepth));
    }
    ~DepthGuard() { p.depth_--; }
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek() const { return toks_[pos_ + 1 < toks_.size() ? pos_ + 1 : pos_]; }
  const Token& next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) pos_++;
    return t;
  }

  [[noreturn]] void fail(const std::string& msg) const { fail_at(cur(), msg); }
  [[noreturn]] void fail_at(const Token& t, const std::string& msg) const { throw_syntax_error(t.line, t.column, msg); }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::eof: return "end of template";
      case TokenType::block_begin: return "'begin of statement block'";
      case TokenType::block_end: return "'end of statement block'";
      case TokenType::variable_begin: return "'begin of print statement'";
      case TokenType::variable_end: return "'end of print statement'";
      case TokenType::data: return "template data";
      case TokenType::string: return "string literal";
      default: return "'" + t.text + "'";
    }
  }

  bool is_op(const char* op) const { return cur().type == TokenType::op && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::name && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  }
  void expect(TokenType type, const char* what) {
    if (cur().type != type) fail(std::string("expected ") + what + ", got " + describe(cur()));
    next();
  }
  std::string expect_name() {
    if (cur().type != TokenType::name) fail("expected name, got " + describe(cur()));
    return next().text;
  }

  // ---- statements ----

  Body subparse(std::initializer_list<const char*> end_tags);

  // The body of a block tag up to one of end_tags (left current, or dropped).
  Body parse_statements(std::initializer_list<const char*> end_tags, bool drop_needle);

  void parse_statement(Body& out);

  StmtPtr parse_if();

  StmtPtr parse_for();

  StmtPtr parse_set();

  StmtPtr parse_macro();

  StmtPtr parse_filter_block();

  StmtPtr parse_with();

  // Names (a or a, b or (a, b)) or, for set, a namespace attribute ns.attr.
  Target parse_target(bool with_namespace, const char* end_name, bool with_tuple = true);

  // ---- expressions ----

  ExprPtr parse_expression(bool with_condexpr);

  ExprPtr parse_condexpr();

  ExprPtr parse_or();

  ExprPtr parse_and();

  ExprPtr parse_not();

  ExprPtr parse_compare();

  ExprPtr parse_math1();

  ExprPtr parse_concat();

  ExprPtr parse_math2();

  ExprPtr parse_pow();

  ExprPtr parse_unary(bool with_filter);

  ExprPtr parse_primary();

  bool is_tuple_end(std::initializer_list<const char*> extra_end) const;

  // Expressions separated by commas make a tuple; one without a comma is itself.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end, bool explicit_parens);

  ExprPtr parse_list();

  ExprPtr parse_dict();

  ExprPtr parse_postfix(ExprPtr node);

  ExprPtr parse_filter_expr(ExprPtr node);

  ExprPtr parse_subscript(ExprPtr node);

  ExprPtr parse_subscribed();

  ArgExprs parse_call_args();

  ExprPtr parse_call(ExprPtr callee);

  // | name(args) | name ... ; start_inline: the first filter has no leading '|'.
  ExprPtr parse_filters(ExprPtr node, bool start_inline);

  ExprPtr parse_test(ExprPtr node);
};

}  // namespace squeeze::jinja
