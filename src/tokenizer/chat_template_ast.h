#pragma once
// The syntax tree of a parsed chat template: expressions (what {{ }} and tag arguments compute)
// and statements (text, output, if, for, set, macro, ...). Nodes carry their source line for
// runtime error messages. Each node records its type, and the interpreter dispatches on it.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/chat_template_value.h"

namespace squeeze::jinja {

struct Expr {
  enum class Type { constant, name, list, dict, getattr, getitem, slice, call, filter, test, unary, binary, concat, compare, cond };
  Expr(Type t, int l) : type(t), line(l) {}
  virtual ~Expr() = default;
  Type type;
  int line;
};
using ExprPtr = std::unique_ptr<Expr>;

// Arguments as written at a call site, filter or test: f(a, b, key=c).
struct ArgExprs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct ConstExpr : Expr {
  ConstExpr(Value v, int l) : Expr(Type::constant, l), value(std::move(v)) {}
  Value value;
};

struct NameExpr : Expr {
  NameExpr(std::string n, int l) : Expr(Type::name, l), name(std::move(n)) {}
  std::string name;
};

struct ListExpr : Expr {  // [a, b] or (a, b)
  ListExpr(bool t, int l) : Expr(Type::list, l), tuple(t) {}
  std::vector<ExprPtr> items;
  bool tuple;
};

struct DictExpr : Expr {
  explicit DictExpr(int l) : Expr(Type::dict, l) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct GetattrExpr : Expr {  // obj.name
  GetattrExpr(ExprPtr o, std::string n, int l) : Expr(Type::getattr, l), obj(std::move(o)), name(std::move(n)) {}
  ExprPtr obj;
  std::string name;
};

struct GetitemExpr : Expr {  // obj[key]; key may be a SliceExpr
  GetitemExpr(ExprPtr o, ExprPtr k, int l) : Expr(Type::getitem, l), obj(std::move(o)), key(std::move(k)) {}
  ExprPtr obj, key;
};

struct SliceExpr : Expr {  // start:stop:step, any part may be missing (null)
  explicit SliceExpr(int l) : Expr(Type::slice, l) {}
  ExprPtr start, stop, step;
};

struct CallExpr : Expr {
  CallExpr(ExprPtr c, int l) : Expr(Type::call, l), callee(std::move(c)) {}
  ExprPtr callee;
  ArgExprs args;
};

struct FilterExpr : Expr {  // input|name(args); input is null inside {% filter %} and {% set x | f %}
  FilterExpr(ExprPtr in, std::string n, int l) : Expr(Type::filter, l), input(std::move(in)), name(std::move(n)) {}
  ExprPtr input;
  std::string name;
  ArgExprs args;
};

struct TestExpr : Expr {  // input is name(args)
  TestExpr(ExprPtr in, std::string n, int l) : Expr(Type::test, l), input(std::move(in)), name(std::move(n)) {}
  ExprPtr input;
  std::string name;
  ArgExprs args;
};

struct UnaryExpr : Expr {
  enum class Op { neg, pos, not_ };
  UnaryExpr(Op o, ExprPtr e, int l) : Expr(Type::unary, l), op(o), operand(std::move(e)) {}
  Op op;
  ExprPtr operand;
};

struct BinaryExpr : Expr {
  enum class Op { add, sub, mul, div, floordiv, mod, pow, and_, or_ };
  BinaryExpr(Op o, ExprPtr a, ExprPtr b, int l) : Expr(Type::binary, l), op(o), left(std::move(a)), right(std::move(b)) {}
  Op op;
  ExprPtr left, right;
};

struct ConcatExpr : Expr {  // a ~ b ~ c
  explicit ConcatExpr(int l) : Expr(Type::concat, l) {}
  std::vector<ExprPtr> parts;
};

struct CompareExpr : Expr {  // a < b == c: each operator compares its neighbours
  enum class Op { eq, ne, lt, le, gt, ge, in, not_in };
  CompareExpr(ExprPtr f, int l) : Expr(Type::compare, l), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<Op, ExprPtr>> rest;
};

struct CondExpr : Expr {  // yes if test else no; no may be null
  CondExpr(ExprPtr t, ExprPtr y, ExprPtr n, int l) : Expr(Type::cond, l), test(std::move(t)), yes(std::move(y)), no(std::move(n)) {}
  ExprPtr test, yes, no;
};

// What {% set %}, {% for %} and {% with %} assign to: a name, names to unpack a sequence
// into, or a namespace attribute (ns.attr).
struct Target {
  std::vector<std::string> names;
  bool unpack = false;
  std::string ns_attr;  // non-empty: names[0] is the namespace
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Type { text, output, if_, for_, set, set_block, macro, filter_block, with, break_, continue_ };
  Stmt(Type t, int l) : type(t), line(l) {}
  virtual ~Stmt() = default;
  Type type;
  int line;
};

struct TextStmt : Stmt {
  TextStmt(std::string t, int l) : Stmt(Type::text, l), text(std::move(t)) {}
  std::string text;
};

struct OutputStmt : Stmt {  // {{ expr }}
  OutputStmt(ExprPtr e, int l) : Stmt(Type::output, l), expr(std::move(e)) {}
  ExprPtr expr;
};

struct IfStmt : Stmt {
  explicit IfStmt(int l) : Stmt(Type::if_, l) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, then each elif
  Body else_body;
};

struct ForStmt : Stmt {
  explicit ForStmt(int l) : Stmt(Type::for_, l) {}
  Target target;
  ExprPtr iter;
  ExprPtr filter;  // {% for x in xs if cond %}; may be null
  bool uses_loop_var = false;  // the body mentions `loop`, so each iteration needs a loop object
  Body body, else_body;
};

struct SetStmt : Stmt {
  explicit SetStmt(int l) : Stmt(Type::set, l) {}
  Target target;
  ExprPtr value;
};

struct SetBlockStmt : Stmt {  // {% set x | filters %}...{% endset %}
  explicit SetBlockStmt(int l) : Stmt(Type::set_block, l) {}
  Target target;
  ExprPtr filter;  // a FilterExpr chain whose innermost input is null; may be null
  Body body;
};

struct MacroStmt : Stmt {
  explicit MacroStmt(int l) : Stmt(Type::macro, l) {}
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null where there is none
  // The body reads varargs or kwargs: then extra arguments land there instead of being an error.
  bool takes_extra_args = false;
  Body body;
};

struct FilterBlockStmt : Stmt {  // {% filter f %}...{% endfilter %}
  explicit FilterBlockStmt(int l) : Stmt(Type::filter_block, l) {}
  ExprPtr filter;
  Body body;
};

struct WithStmt : Stmt {
  explicit WithStmt(int l) : Stmt(Type::with, l) {}
  std::vector<std::pair<Target, ExprPtr>> assigns;
  Body body;
};

struct LoopControlStmt : Stmt {  // {% break %} / {% continue %}
  LoopControlStmt(Type t, int l) : Stmt(t, l) {}
};

}  // namespace squeeze::jinja
