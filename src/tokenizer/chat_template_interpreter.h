#pragma once
// Runs a parsed chat template: evaluates expressions and executes statements with jinja2's
// semantics (scoping, Undefined, loop variables, macros), under limits that keep a hostile
// template from hanging or exhausting memory: a work budget, an output size cap and a bound on
// evaluation depth.
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/chat_template_ast.h"
#include "tokenizer/chat_template_value.h"

namespace squeeze::jinja {

struct RenderLimits {
  size_t max_output_bytes = size_t(64) << 20;  // of the result and of any one string
  uint64_t max_work = uint64_t(1) << 28;       // ~ 64 per evaluated node + bytes and items built
  int max_depth = 300;                         // nested evaluations, macro calls included
};

// Variables visible at a point of the template: a for iteration, a macro call and {% with %}
// open a child scope; {% if %} does not (as in jinja2).
struct Scope {
  Scope* parent = nullptr;
  std::unordered_map<std::string, Value> vars;
};

class Interpreter {
 public:
  Interpreter(const std::tm& now, const RenderLimits& limits) : now_(now), limits_(limits) {}

  // context: the template's variables (messages, add_generation_prompt, ...).
  std::string render(const Body& body, const DictData& context);

  // For filters, tests, methods and globals.
  Value call(const Value& callee, CallArgs& args);
  Value get_attr(const Value& obj, const std::string& name);
  Value get_item(const Value& obj, const Value& key);
  // Counts work against the budget; throws Error once it is spent.
  void charge(uint64_t units);
  // Throws Error when a string about to be built would exceed the output limit.
  void check_size(size_t bytes) const;
  const std::tm& now() const { return now_; }

 private:
  enum class Flow { normal, break_, continue_ };

  std::tm now_;
  RenderLimits limits_;
  uint64_t work_ = 0;
  int depth_ = 0;
  const DictData* context_ = nullptr;
  Scope* root_ = nullptr;  // the template's top-level scope
  // Scopes that macros were defined in: kept until the render ends because the macro (a value
  // that may be stored anywhere) resolves names through them.
  std::vector<std::unique_ptr<Scope>> macro_scopes_;

  struct DepthGuard {
    Interpreter& in;
    explicit DepthGuard(Interpreter& i);
    ~DepthGuard() { in.depth_--; }
  };

  Flow exec_body(const Body& body, Scope& scope, std::string& out);
  Flow exec(const Stmt& s, Scope& scope, std::string& out);
  Flow exec_for(const ForStmt& s, Scope& scope, std::string& out);
  void exec_macro_def(const MacroStmt& s, Scope& scope);
  Value invoke_macro(const MacroStmt& m, Scope* defined_in, CallArgs& args);
  void assign(const Target& t, const Value& v, Scope& scope);
  void append(std::string& out, const std::string& text);

  Value eval(const Expr& e, Scope& scope);
  Value eval_node(const Expr& e, Scope& scope);
  Value lookup(const std::string& name, const Scope& scope) const;
  CallArgs eval_args(const ArgExprs& a, Scope& scope);
  Value eval_filter_chain(const Expr& e, Scope& scope, const Value& block_input);
  Value eval_binary(const BinaryExpr& e, Scope& scope);
  Value eval_compare(const CompareExpr& e, Scope& scope);
  Value slice(const Value& obj, const SliceExpr& s, Scope& scope);
  Value make_loop(const std::vector<Value>& items, size_t i);
};

// Python semantics of the operators, shared with filters (sum) and tests.
Value binary_op(Interpreter& in, BinaryExpr::Op op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);

}  // namespace squeeze::jinja
