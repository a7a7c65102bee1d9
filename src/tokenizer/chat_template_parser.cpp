#include "tokenizer/chat_template_parser.h"

#include <initializer_list>

#include "util/error.h"

namespace squeeze::jinja {

namespace {

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

  Body subparse(std::initializer_list<const char*> end_tags) {
    Body body;
    while (cur().type != TokenType::eof) {
      const Token& t = cur();
      if (t.type == TokenType::data) {
        body.push_back(std::make_unique<TextStmt>(t.text, t.line));
        next();
      } else if (t.type == TokenType::variable_begin) {
        next();
        ExprPtr e = parse_tuple(false, true, {}, false);
        expect(TokenType::variable_end, "end of print statement");
        body.push_back(std::make_unique<OutputStmt>(std::move(e), t.line));
      } else if (t.type == TokenType::block_begin) {
        next();
        for (const char* tag : end_tags)
          if (is_name(tag)) return body;
        parse_statement(body);
        expect(TokenType::block_end, "end of statement block");
      } else {
        fail("unexpected " + describe(t));
      }
    }
    if (end_tags.size()) {
      std::string want;
      for (const char* tag : end_tags) want += std::string(want.empty() ? "" : " or ") + "'" + tag + "'";
      fail("unexpected end of template, expected " + want);
    }
    return body;
  }

  // The body of a block tag up to one of end_tags (left current, or dropped).
  Body parse_statements(std::initializer_list<const char*> end_tags, bool drop_needle) {
    skip_op(":");
    expect(TokenType::block_end, "end of statement block");
    Body body = subparse(end_tags);
    if (drop_needle) next();
    return body;
  }

  void parse_statement(Body& out) {
    DepthGuard guard(*this);
    if (cur().type != TokenType::name) fail("tag name expected");
    const Token& tag = cur();
    const std::string& name = tag.text;
    if (name == "if") return out.push_back(parse_if());
    if (name == "for") return out.push_back(parse_for());
    if (name == "set") return out.push_back(parse_set());
    if (name == "macro") return out.push_back(parse_macro());
    if (name == "filter") return out.push_back(parse_filter_block());
    if (name == "with") return out.push_back(parse_with());
    if (name == "print") {
      next();
      auto list = std::make_unique<ListExpr>(true, tag.line);
      while (cur().type != TokenType::block_end) {
        if (!list->items.empty()) expect_op(",");
        list->items.push_back(parse_expression(true));
      }
      for (auto& e : list->items) out.push_back(std::make_unique<OutputStmt>(std::move(e), tag.line));
      return;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) fail("'" + name + "' outside loop");
      next();
      return out.push_back(std::make_unique<LoopControlStmt>(
          name == "break" ? Stmt::Type::break_ : Stmt::Type::continue_, tag.line));
    }
    if (name == "generation") {  // transformers' assistant-mask tag: renders its body as is
      next();
      Body body = parse_statements({"endgeneration"}, true);
      for (auto& s : body) out.push_back(std::move(s));
      return;
    }
    for (const char* unsupported : {"block", "extends", "include", "import", "from", "call", "autoescape", "raw"})
      if (name == unsupported) fail("the '" + name + "' tag is not supported in chat templates");
    fail("Encountered unknown tag '" + name + "'.");
  }

  StmtPtr parse_if() {
    auto node = std::make_unique<IfStmt>(next().line);
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false);
      Body body = parse_statements({"elif", "else", "endif"}, false);
      node->branches.emplace_back(std::move(test), std::move(body));
      std::string tag = next().text;
      if (tag == "elif") continue;
      if (tag == "else") node->else_body = parse_statements({"endif"}, true);
      break;
    }
    return node;
  }

  StmtPtr parse_for() {
    auto node = std::make_unique<ForStmt>(next().line);
    node->target = parse_target(false, "in");
    if (!skip_name("in")) fail("expected 'in', got " + describe(cur()));
    node->iter = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) node->filter = parse_expression(true);
    if (is_name("recursive")) fail("recursive for loops are not supported");
    loop_depth_++;
    int loop_uses_before = loop_name_uses_;
    node->body = parse_statements({"endfor", "else"}, false);
    node->uses_loop_var = loop_name_uses_ != loop_uses_before;
    loop_depth_--;
    if (next().text == "else") node->else_body = parse_statements({"endfor"}, true);
    return node;
  }

  StmtPtr parse_set() {
    int line = next().line;
    Target target = parse_target(true, nullptr);
    if (skip_op("=")) {
      auto node = std::make_unique<SetStmt>(line);
      node->target = std::move(target);
      node->value = parse_tuple(false, true, {}, false);
      return node;
    }
    auto node = std::make_unique<SetBlockStmt>(line);
    node->target = std::move(target);
    if (is_op("|")) node->filter = parse_filters(nullptr, false);
    node->body = parse_statements({"endset"}, true);
    return node;
  }

  StmtPtr parse_macro() {
    auto node = std::make_unique<MacroStmt>(next().line);
    node->name = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!node->params.empty()) expect_op(",");
      node->params.push_back(expect_name());
      if (skip_op("=")) node->defaults.push_back(parse_expression(true));
      else if (!node->defaults.empty() && node->defaults.back()) fail("non-default argument follows default argument");
      else node->defaults.push_back(nullptr);
    }
    expect_op(")");
    int saved_loops = loop_depth_;
    loop_depth_ = 0;  // a loop around the definition does not enclose the macro's body
    std::vector<bool> extras{false};
    auto* saved_extras = macro_extras_;
    macro_extras_ = &extras;
    node->body = parse_statements({"endmacro"}, true);
    macro_extras_ = saved_extras;
    loop_depth_ = saved_loops;
    node->takes_extra_args = extras[0];
    return node;
  }

  StmtPtr parse_filter_block() {
    auto node = std::make_unique<FilterBlockStmt>(next().line);
    node->filter = parse_filters(nullptr, true);
    node->body = parse_statements({"endfilter"}, true);
    return node;
  }

  StmtPtr parse_with() {
    auto node = std::make_unique<WithStmt>(next().line);
    while (cur().type != TokenType::block_end) {
      if (!node->assigns.empty()) expect_op(",");
      Target t = parse_target(false, nullptr, false);
      expect_op("=");
      node->assigns.emplace_back(std::move(t), parse_expression(true));
    }
    node->body = parse_statements({"endwith"}, true);
    return node;
  }

  // Names (a or a, b or (a, b)) or, for set, a namespace attribute ns.attr.
  Target parse_target(bool with_namespace, const char* end_name, bool with_tuple = true) {
    Target t;
    bool parens = with_tuple && skip_op("(");
    while (true) {
      if (cur().type != TokenType::name) fail("can't assign to " + describe(cur()));
      std::string name = next().text;
      if (name == "true" || name == "false" || name == "none" || name == "True" || name == "False" || name == "None")
        fail("can't assign to 'const'");
      if (with_namespace && t.names.empty() && is_op(".")) {
        next();
        t.names.push_back(name);
        t.ns_attr = expect_name();
        return t;
      }
      t.names.push_back(name);
      if (!with_tuple || !is_op(",")) break;
      next();
      t.unpack = true;
      if ((end_name && is_name(end_name)) || is_op(")") || is_op("=")) break;  // trailing comma
    }
    if (parens) {
      expect_op(")");
      t.unpack = true;
    }
    return t;
  }

  // ---- expressions ----

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
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

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      int line = next().line;
      left = std::make_unique<BinaryExpr>(BinaryExpr::Op::or_, std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      int line = next().line;
      left = std::make_unique<BinaryExpr>(BinaryExpr::Op::and_, std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      int line = next().line;
      DepthGuard guard(*this);
      return std::make_unique<UnaryExpr>(UnaryExpr::Op::not_, parse_not(), line);
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
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

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      auto op = cur().text == "+" ? BinaryExpr::Op::add : BinaryExpr::Op::sub;
      int line = next().line;
      left = std::make_unique<BinaryExpr>(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto node = std::make_unique<ConcatExpr>(line);
    node->parts.push_back(std::move(first));
    while (skip_op("~")) node->parts.push_back(parse_math2());
    return node;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string& t = cur().text;
      auto op = t == "*" ? BinaryExpr::Op::mul : t == "/" ? BinaryExpr::Op::div : t == "//" ? BinaryExpr::Op::floordiv : BinaryExpr::Op::mod;
      int line = next().line;
      left = std::make_unique<BinaryExpr>(op, std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      int line = next().line;
      left = std::make_unique<BinaryExpr>(BinaryExpr::Op::pow, std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr parse_primary() {
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

  bool is_tuple_end(std::initializer_list<const char*> extra_end) const {
    if (cur().type == TokenType::variable_end || cur().type == TokenType::block_end || cur().type == TokenType::eof) return true;
    if (is_op(")")) return true;
    for (const char* n : extra_end)
      if (is_name(n)) return true;
    return false;
  }

  // Expressions separated by commas make a tuple; one without a comma is itself.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end, bool explicit_parens) {
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

  ExprPtr parse_list() {
    auto node = std::make_unique<ListExpr>(false, next().line);
    while (!is_op("]")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op("]")) break;
      node->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
  }

  ExprPtr parse_dict() {
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

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filters(std::move(node), false);
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
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

  ExprPtr parse_subscribed() {
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

  ArgExprs parse_call_args() {
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

  ExprPtr parse_call(ExprPtr callee) {
    int line = cur().line;
    auto node = std::make_unique<CallExpr>(std::move(callee), line);
    node->args = parse_call_args();
    return node;
  }

  // | name(args) | name ... ; start_inline: the first filter has no leading '|'.
  ExprPtr parse_filters(ExprPtr node, bool start_inline) {
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

  ExprPtr parse_test(ExprPtr node) {
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
};

}  // namespace

Body parse_template(const std::vector<Token>& tokens) {
  Body body = Parser(tokens).parse();
  check_filter_and_test_names(body);
  return body;
}

}  // namespace squeeze::jinja
