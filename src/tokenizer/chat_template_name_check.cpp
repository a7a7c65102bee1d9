// jinja2 rejects an unknown filter or test when it compiles the template, except inside an
// {% if %} or an inline `x if c else y`, where only reaching it at run time is an error. Loop,
// macro, with and block bodies start afresh (jinja2 compiles them into new frames).
#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_parser.h"

namespace squeeze::jinja {

namespace {

class UnknownNameCheck {
 public:
  void body(const Body& b, bool soft) {
    for (const StmtPtr& s : b) stmt(*s, soft);
  }

 private:
  void stmt(const Stmt& s, bool soft) {
    switch (s.type) {
      case Stmt::Type::output: expr(static_cast<const OutputStmt&>(s).expr.get(), soft); break;
      case Stmt::Type::if_: {
        const auto& n = static_cast<const IfStmt&>(s);
        for (const auto& [test, b] : n.branches) {
          expr(test.get(), true);
          body(b, true);
        }
        body(n.else_body, true);
        break;
      }
      case Stmt::Type::for_: {
        const auto& n = static_cast<const ForStmt&>(s);
        expr(n.iter.get(), soft);
        expr(n.filter.get(), false);
        body(n.body, false);
        body(n.else_body, false);
        break;
      }
      case Stmt::Type::set: expr(static_cast<const SetStmt&>(s).value.get(), soft); break;
      case Stmt::Type::set_block: {
        const auto& n = static_cast<const SetBlockStmt&>(s);
        expr(n.filter.get(), false);
        body(n.body, false);
        break;
      }
      case Stmt::Type::macro: {
        const auto& n = static_cast<const MacroStmt&>(s);
        for (const ExprPtr& d : n.defaults) expr(d.get(), false);
        body(n.body, false);
        break;
      }
      case Stmt::Type::filter_block: {
        const auto& n = static_cast<const FilterBlockStmt&>(s);
        expr(n.filter.get(), false);
        body(n.body, false);
        break;
      }
      case Stmt::Type::with: {
        const auto& n = static_cast<const WithStmt&>(s);
        for (const auto& [target, value] : n.assigns) expr(value.get(), soft);
        body(n.body, false);
        break;
      }
      default: break;
    }
  }

  void args(const ArgExprs& a, bool soft) {
    for (const ExprPtr& e : a.positional) expr(e.get(), soft);
    for (const auto& [k, e] : a.keyword) expr(e.get(), soft);
  }

  void expr(const Expr* e, bool soft) {
    if (!e) return;
    switch (e->type) {
      case Expr::Type::list:
        for (const ExprPtr& item : static_cast<const ListExpr*>(e)->items) expr(item.get(), soft);
        break;
      case Expr::Type::dict:
        for (const auto& [k, v] : static_cast<const DictExpr*>(e)->items) expr(k.get(), soft), expr(v.get(), soft);
        break;
      case Expr::Type::getattr: expr(static_cast<const GetattrExpr*>(e)->obj.get(), soft); break;
      case Expr::Type::getitem: {
        const auto* n = static_cast<const GetitemExpr*>(e);
        expr(n->obj.get(), soft);
        expr(n->key.get(), soft);
        break;
      }
      case Expr::Type::slice: {
        const auto* n = static_cast<const SliceExpr*>(e);
        expr(n->start.get(), soft), expr(n->stop.get(), soft), expr(n->step.get(), soft);
        break;
      }
      case Expr::Type::call: {
        const auto* n = static_cast<const CallExpr*>(e);
        expr(n->callee.get(), soft);
        args(n->args, soft);
        break;
      }
      case Expr::Type::filter: {
        const auto* n = static_cast<const FilterExpr*>(e);
        if (!soft && !filter_exists(n->name)) throw_syntax_error(e->line, 0, "No filter named '" + n->name + "'.");
        expr(n->input.get(), soft);
        args(n->args, soft);
        break;
      }
      case Expr::Type::test: {
        const auto* n = static_cast<const TestExpr*>(e);
        if (!soft && !test_exists(n->name)) throw_syntax_error(e->line, 0, "No test named '" + n->name + "'.");
        expr(n->input.get(), soft);
        args(n->args, soft);
        break;
      }
      case Expr::Type::unary: expr(static_cast<const UnaryExpr*>(e)->operand.get(), soft); break;
      case Expr::Type::binary: {
        const auto* n = static_cast<const BinaryExpr*>(e);
        expr(n->left.get(), soft), expr(n->right.get(), soft);
        break;
      }
      case Expr::Type::concat:
        for (const ExprPtr& p : static_cast<const ConcatExpr*>(e)->parts) expr(p.get(), soft);
        break;
      case Expr::Type::compare: {
        const auto* n = static_cast<const CompareExpr*>(e);
        expr(n->first.get(), soft);
        for (const auto& [op, rhs] : n->rest) expr(rhs.get(), soft);
        break;
      }
      case Expr::Type::cond: {
        const auto* n = static_cast<const CondExpr*>(e);
        expr(n->test.get(), true), expr(n->yes.get(), true), expr(n->no.get(), true);
        break;
      }
      default: break;
    }
  }
};

}  // namespace

void check_filter_and_test_names(const Body& body) { UnknownNameCheck().body(body, false); }

}  // namespace squeeze::jinja
