// The expression half of the chat-template parser (chat_template_parser_impl.h): jinja2's
// precedence levels from the conditional expression down to primaries, postfix operators,
// filters and tests.
#include "tokenizer/chat_template_parser_impl.h"

namespace squeeze::jinja {

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(*this);
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
  int line = cur().line;
  ExprPtr expr = parse_or();
  while (skip_name("if")) {
    ExprPtr test = parse_or();
    ExprPtr no;
    if (skip_name("else")) {
      DepthGuard guard(*this);
      no = parse_condexpr();
    }
    expr = std::make_unique<CondExpr>(std::move(test), std::move(expr), std::move(no), line);
    line = cur().line;
  }
  return expr;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    int line = next().line;
    left = std::make_unique<BinaryExpr>(BinaryExpr::Op::or_, std::move(left), parse_and(), line);
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    int line = next().line;
    left = std::make_unique<BinaryExpr>(BinaryExpr::Op::and_, std::move(left), parse_not(), line);
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    int line = next().line;
    DepthGuard guard(*this);
    return std::make_unique<UnaryExpr>(UnaryExpr::Op::not_, parse_not(), line);
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  int line = cur().line;
  ExprPtr expr = parse_math1();
  std::unique_ptr<CompareExpr> cmp;
  while (true) {
    CompareExpr::Op op;
    if (is_op("==")) op = CompareExpr::Op::eq;
    else if (is_op("!=")) op = CompareExpr::Op::ne;
    else if (is_op("<")) op = CompareExpr::Op::lt;
    else if (is_op("<=")) op = CompareExpr::Op::le;
    else if (is_op(">")) op = CompareExpr::Op::gt;
    else if (is_op(">=")) op = CompareExpr::Op::ge;
    else if (is_name("in")) op = CompareExpr::Op::in;
    else if (is_name("not") && peek().type == TokenType::name && peek().text == "in") {
      next();
      op = CompareExpr::Op::not_in;
    } else {
      break;
    }
    next();
    if (!cmp) cmp = std::make_unique<CompareExpr>(std::move(expr), line);
    cmp->rest.emplace_back(op, parse_math1());
  }
  if (cmp) return cmp;
  return expr;
}

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    auto op = cur().text == "+" ? BinaryExpr::Op::add : BinaryExpr::Op::sub;
    int line = next().line;
    left = std::make_unique<BinaryExpr>(op, std::move(left), parse_concat(), line);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  int line = cur().line;
  ExprPtr first = parse_math2();
  if (!is_op("~")) return first;
  auto node = std::make_unique<ConcatExpr>(line);
  node->parts.push_back(std::move(first));
  while (skip_op("~")) node->parts.push_back(parse_math2());
  return node;
}

ExprPtr Parser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const std::string& t = cur().text;
    auto op = t == "*" ? BinaryExpr::Op::mul : t == "/" ? BinaryExpr::Op::div : t == "//" ? BinaryExpr::Op::floordiv : BinaryExpr::Op::mod;
    int line = next().line;
    left = std::make_unique<BinaryExpr>(op, std::move(left), parse_pow(), line);
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    int line = next().line;
    left = std::make_unique<BinaryExpr>(BinaryExpr::Op::pow, std::move(left), parse_unary(true), line);
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    auto op = cur().text == "-" ? UnaryExpr::Op::neg : UnaryExpr::Op::pos;
    int line = next().line;
    DepthGuard guard(*this);
    node = std::make_unique<UnaryExpr>(op, parse_unary(false), line);
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  switch (t.type) {
    case TokenType::name: {
      next();
      if (t.text == "true" || t.text == "True") return std::make_unique<ConstExpr>(Value::boolean(true), t.line);
      if (t.text == "false" || t.text == "False") return std::make_unique<ConstExpr>(Value::boolean(false), t.line);
      if (t.text == "none" || t.text == "None") return std::make_unique<ConstExpr>(Value::none(), t.line);
      if (macro_extras_ && (t.text == "varargs" || t.text == "kwargs")) (*macro_extras_)[0] = true;
      if (t.text == "loop") loop_name_uses_++;
      return std::make_unique<NameExpr>(t.text, t.line);
    }
    case TokenType::string: {
      std::string s;
      while (cur().type == TokenType::string) s += next().text;  // "a" "b" is "ab"
      return std::make_unique<ConstExpr>(Value::string(std::move(s)), t.line);
    }
    case TokenType::integer: next(); return std::make_unique<ConstExpr>(Value::integer(t.int_value), t.line);
    case TokenType::floating: next(); return std::make_unique<ConstExpr>(Value::floating(t.float_value), t.line);
    case TokenType::op:
      if (t.text == "(") {
        next();
        ExprPtr e = parse_tuple(false, true, {}, true);
        expect_op(")");
        return e;
      }
      if (t.text == "[") return parse_list();
      if (t.text == "{") return parse_dict();
      break;
    default: break;
  }
  fail("unexpected " + describe(t));
}

bool Parser::is_tuple_end(std::initializer_list<const char*> extra_end) const {
  if (cur().type == TokenType::variable_end || cur().type == TokenType::block_end || cur().type == TokenType::eof) return true;
  if (is_op(")")) return true;
  for (const char* n : extra_end)
    if (is_name(n)) return true;
  return false;
}

// Expressions separated by commas make a tuple; one without a comma is itself.
ExprPtr Parser::parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end, bool explicit_parens) {
  int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
    if (is_op(",")) is_tuple = true;
    else break;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) fail("Expected an expression, got " + describe(cur()));
  }
  auto node = std::make_unique<ListExpr>(true, line);
  node->items = std::move(items);
  return node;
}

ExprPtr Parser::parse_list() {
  auto node = std::make_unique<ListExpr>(false, next().line);
  while (!is_op("]")) {
    if (!node->items.empty()) expect_op(",");
    if (is_op("]")) break;
    node->items.push_back(parse_expression(true));
  }
  expect_op("]");
  return node;
}

ExprPtr Parser::parse_dict() {
  auto node = std::make_unique<DictExpr>(next().line);
  while (!is_op("}")) {
    if (!node->items.empty()) expect_op(",");
    if (is_op("}")) break;
    ExprPtr key = parse_expression(true);
    expect_op(":");
    node->items.emplace_back(std::move(key), parse_expression(true));
  }
  expect_op("}");
  return node;
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
    else if (is_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) node = parse_filters(std::move(node), false);
    else if (is_name("is")) node = parse_test(std::move(node));
    else if (is_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const Token& t = next();
  if (t.text == ".") {
    const Token& attr = next();
    if (attr.type == TokenType::name) return std::make_unique<GetattrExpr>(std::move(node), attr.text, t.line);
    if (attr.type != TokenType::integer) fail_at(attr, "expected name or number");
    return std::make_unique<GetitemExpr>(std::move(node), std::make_unique<ConstExpr>(Value::integer(attr.int_value), attr.line), t.line);
  }
  std::vector<ExprPtr> args;
  while (!is_op("]")) {
    if (!args.empty()) expect_op(",");
    args.push_back(parse_subscribed());
  }
  expect_op("]");
  if (args.empty()) fail_at(t, "expected subscript expression");
  ExprPtr key;
  if (args.size() == 1) {
    key = std::move(args[0]);
  } else {
    auto tuple = std::make_unique<ListExpr>(true, t.line);
    tuple->items = std::move(args);
    key = std::move(tuple);
  }
  return std::make_unique<GetitemExpr>(std::move(node), std::move(key), t.line);
}

ExprPtr Parser::parse_subscribed() {
  int line = cur().line;
  ExprPtr start;
  if (!is_op(":")) {
    start = parse_expression(true);
    if (!is_op(":")) return start;
  }
  next();  // the first ':'
  auto slice = std::make_unique<SliceExpr>(line);
  slice->start = std::move(start);
  if (!is_op(":") && !is_op("]") && !is_op(",")) slice->stop = parse_expression(true);
  if (skip_op(":") && !is_op("]") && !is_op(",")) slice->step = parse_expression(true);
  return slice;
}

ArgExprs Parser::parse_call_args() {
  ArgExprs args;
  expect_op("(");
  bool need_comma = false;
  while (!is_op(")")) {
    if (need_comma) {
      expect_op(",");
      if (is_op(")")) break;
    }
    if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
    if (cur().type == TokenType::name && peek().type == TokenType::op && peek().text == "=") {
      std::string key = next().text;
      next();
      args.keyword.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!args.keyword.empty()) fail("invalid syntax for function call expression");
      args.positional.push_back(parse_expression(true));
    }
    need_comma = true;
  }
  expect_op(")");
  return args;
}

ExprPtr Parser::parse_call(ExprPtr callee) {
  int line = cur().line;
  auto node = std::make_unique<CallExpr>(std::move(callee), line);
  node->args = parse_call_args();
  return node;
}

// | name(args) | name ... ; start_inline: the first filter has no leading '|'.
ExprPtr Parser::parse_filters(ExprPtr node, bool start_inline) {
  while (is_op("|") || start_inline) {
    if (!start_inline) next();
    start_inline = false;
    int line = cur().line;
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    auto f = std::make_unique<FilterExpr>(std::move(node), std::move(name), line);
    if (is_op("(")) f->args = parse_call_args();
    node = std::move(f);
  }
  return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
  int line = next().line;  // 'is'
  bool negated = skip_name("not");
  std::string name = expect_name();
  while (skip_op(".")) name += "." + expect_name();
  auto test = std::make_unique<TestExpr>(std::move(node), std::move(name), line);
  const Token& t = cur();
  bool arg_follows = (t.type == TokenType::name || t.type == TokenType::string || t.type == TokenType::integer ||
                      t.type == TokenType::floating || is_op("[") || is_op("{")) &&
                     !is_name("else") && !is_name("or") && !is_name("and");
  if (is_op("(")) {
    test->args = parse_call_args();
  } else if (arg_follows) {  // `x is divisibleby 3`, `x is sameas none`
    if (is_name("is")) fail("You cannot chain multiple tests with is");
    test->args.positional.push_back(parse_postfix(parse_primary()));
  }
  if (negated) return std::make_unique<UnaryExpr>(UnaryExpr::Op::not_, std::move(test), line);
  return test;
}

}  // namespace squeeze::jinja
