#include "tokenizer/chat_template_parser.h"

#include "tokenizer/chat_template_parser_impl.h"

namespace squeeze::jinja {

// ---- statements ----

Body Parser::subparse(std::initializer_list<const char*> end_tags) {
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
Body Parser::parse_statements(std::initializer_list<const char*> end_tags, bool drop_needle) {
  skip_op(":");
  expect(TokenType::block_end, "end of statement block");
  Body body = subparse(end_tags);
  if (drop_needle) next();
  return body;
}

void Parser::parse_statement(Body& out) {
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

StmtPtr Parser::parse_if() {
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

StmtPtr Parser::parse_for() {
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

StmtPtr Parser::parse_set() {
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

StmtPtr Parser::parse_macro() {
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

StmtPtr Parser::parse_filter_block() {
  auto node = std::make_unique<FilterBlockStmt>(next().line);
  node->filter = parse_filters(nullptr, true);
  node->body = parse_statements({"endfilter"}, true);
  return node;
}

StmtPtr Parser::parse_with() {
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
Target Parser::parse_target(bool with_namespace, const char* end_name, bool with_tuple) {
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

Body parse_template(const std::vector<Token>& tokens) {
  Body body = Parser(tokens).parse();
  check_filter_and_test_names(body);
  return body;
}

}  // namespace squeeze::jinja
