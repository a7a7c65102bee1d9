#include "tokenizer/chat_template_interpreter.h"

#include <algorithm>
#include <optional>

#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_pystr.h"
#include "util/error.h"

namespace squeeze::jinja {

namespace {

// A runtime error that already knows its template line (the innermost node that failed).
struct LocatedError : Error {
  LocatedError(int l, const std::string& msg) : Error(msg), line(l) {}
  int line;
};

// Python's slice.indices(): clamps start/stop for a sequence of length n.
std::vector<size_t> slice_positions(int64_t n, const Value& start, const Value& stop, const Value& step) {
  auto as_index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_integral()) throw Error("slice indices must be integers or None");
    return v.as_int();
  };
  int64_t st = as_index(step).value_or(1);
  if (st == 0) throw Error("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) x += n;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  int64_t b = clamp(as_index(start), st > 0 ? 0 : n - 1);
  int64_t e = clamp(as_index(stop), st > 0 ? n : -1);
  // Positions b, b+st, ... short of e, counted first so that a huge step cannot overflow.
  uint64_t span = st > 0 ? (e > b ? uint64_t(e - b) : 0) : (b > e ? uint64_t(b - e) : 0);
  uint64_t stride = st > 0 ? uint64_t(st) : uint64_t(0) - uint64_t(st);
  uint64_t count = span == 0 ? 0 : (span - 1) / stride + 1;
  std::vector<size_t> out;
  for (uint64_t k = 0; k < count; k++) out.push_back(size_t(st > 0 ? uint64_t(b) + k * stride : uint64_t(b) - k * stride));
  return out;
}

// jinja2's Undefined for a missing attribute: "'dict object' has no attribute 'x'".
Value no_attribute(const Value& obj, const std::string& name) {
  std::string msg = "'";  // built by appending: GCC 12 misreports "'" + std::string (-Wrestrict)
  msg += object_type_repr(obj);
  msg += "' has no attribute '";
  msg += name;
  msg += "'";
  return Value::undefined(std::move(msg));
}

}  // namespace

Interpreter::DepthGuard::DepthGuard(Interpreter& i) : in(i) {
  if (++in.depth_ > in.limits_.max_depth) {
    in.depth_--;
    throw Error(fmt("chat template nests more than %d evaluations deep (runaway recursion?)", in.limits_.max_depth));
  }
}

void Interpreter::charge(uint64_t units) {
  work_ += units;
  if (work_ > limits_.max_work) throw Error("chat template exceeded its work limit (runaway loop?)");
}

void Interpreter::check_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes)
    throw Error(fmt("chat template output would exceed %zu bytes", limits_.max_output_bytes));
}

std::string Interpreter::render(const Body& body, const DictData& context) {
  context_ = &context;
  Scope root;
  root_ = &root;
  std::string out;
  try {
    exec_body(body, root, out);
  } catch (const LocatedError& e) {
    throw Error(fmt("chat template error at line %d: %s", e.line, e.what()));
  } catch (const TemplateRaised& e) {
    throw Error(e.what());
  }
  return out;
}

void Interpreter::append(std::string& out, const std::string& text) {
  check_size(out.size() + text.size());
  charge(text.size());
  out += text;
}

// ---- statements ----

Interpreter::Flow Interpreter::exec_body(const Body& body, Scope& scope, std::string& out) {
  for (const StmtPtr& s : body) {
    Flow f = exec(*s, scope, out);
    if (f != Flow::normal) return f;
  }
  return Flow::normal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, Scope& scope, std::string& out) {
  DepthGuard guard(*this);
  charge(16);
  try {
    switch (s.type) {
      case Stmt::Type::text: append(out, static_cast<const TextStmt&>(s).text); break;
      case Stmt::Type::output: append(out, py_str(eval(*static_cast<const OutputStmt&>(s).expr, scope))); break;
      case Stmt::Type::if_: {
        const auto& n = static_cast<const IfStmt&>(s);
        for (const auto& [test, body] : n.branches)
          if (truthy(eval(*test, scope))) return exec_body(body, scope, out);
        return exec_body(n.else_body, scope, out);
      }
      case Stmt::Type::for_: return exec_for(static_cast<const ForStmt&>(s), scope, out);
      case Stmt::Type::set: {
        const auto& n = static_cast<const SetStmt&>(s);
        assign(n.target, eval(*n.value, scope), scope);
        break;
      }
      case Stmt::Type::set_block: {
        const auto& n = static_cast<const SetBlockStmt&>(s);
        std::string buf;
        exec_body(n.body, scope, buf);
        Value v = Value::string(std::move(buf));
        if (n.filter) v = eval_filter_chain(*n.filter, scope, v);
        assign(n.target, v, scope);
        break;
      }
      case Stmt::Type::macro: exec_macro_def(static_cast<const MacroStmt&>(s), scope); break;
      case Stmt::Type::filter_block: {
        const auto& n = static_cast<const FilterBlockStmt&>(s);
        std::string buf;
        exec_body(n.body, scope, buf);
        append(out, py_str(eval_filter_chain(*n.filter, scope, Value::string(std::move(buf)))));
        break;
      }
      case Stmt::Type::with: {
        const auto& n = static_cast<const WithStmt&>(s);
        std::vector<Value> values;
        for (const auto& [target, expr] : n.assigns) values.push_back(eval(*expr, scope));
        Scope inner{&scope, {}};
        for (size_t i = 0; i < values.size(); i++) assign(n.assigns[i].first, values[i], inner);
        return exec_body(n.body, inner, out);
      }
      case Stmt::Type::break_: return Flow::break_;
      case Stmt::Type::continue_: return Flow::continue_;
    }
  } catch (const LocatedError&) {
    throw;
  } catch (const Error& e) {
    throw LocatedError(s.line, e.what());
  }
  return Flow::normal;
}

Interpreter::Flow Interpreter::exec_for(const ForStmt& s, Scope& scope, std::string& out) {
  Value iterable = eval(*s.iter, scope);
  std::vector<Value> items = iterate(iterable);
  charge(items.size());
  if (s.filter) {  // {% for x in xs if cond %}: loop.length etc. count the kept items only
    std::vector<Value> kept;
    for (Value& item : items) {
      Scope probe{&scope, {}};
      assign(s.target, item, probe);
      if (truthy(eval(*s.filter, probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    Scope inner{&scope, {}};
    return exec_body(s.else_body, inner, out);
  }
  for (size_t i = 0; i < items.size(); i++) {
    charge(64);
    Scope iteration{&scope, {}};  // sets inside the body stay in this iteration, as in jinja2
    assign(s.target, items[i], iteration);
    if (s.uses_loop_var) iteration.vars["loop"] = make_loop(items, i);
    if (exec_body(s.body, iteration, out) == Flow::break_) break;
  }
  return Flow::normal;
}

Value Interpreter::make_loop(const std::vector<Value>& items, size_t i) {
  auto loop = std::make_shared<NamespaceData>();
  loop->is_loop = true;
  int64_t n = int64_t(items.size()), k = int64_t(i);
  auto set = [&](const char* name, Value v) { loop->attrs.set(Value::string(name), std::move(v)); };
  set("index", Value::integer(k + 1));
  set("index0", Value::integer(k));
  set("revindex", Value::integer(n - k));
  set("revindex0", Value::integer(n - k - 1));
  set("first", Value::boolean(k == 0));
  set("last", Value::boolean(k == n - 1));
  set("length", Value::integer(n));
  set("depth", Value::integer(1));
  set("depth0", Value::integer(0));
  set("previtem", k > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
  set("nextitem", k + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
  set("cycle", Value::callable("cycle", [k](Interpreter&, CallArgs& args) {
        if (args.positional.empty()) throw Error("no items for cycling given");
        return args.positional[size_t(k) % args.positional.size()];
      }));
  return Value::ns(std::move(loop));
}

void Interpreter::assign(const Target& t, const Value& v, Scope& scope) {
  if (!t.ns_attr.empty()) {
    Value target = lookup(t.names[0], scope);
    if (!target.is_ns() || target.ns().is_loop) throw Error("Cannot assign attribute on non-namespace object.");
    if (t.ns_attr[0] == '_')
      throw Error("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                  t.ns_attr + "'. Please rename the attribute.");
    // Keeping namespaces out of namespaces rules out reference cycles and unbounded nesting.
    if (holds_namespace(v)) throw Error("storing a namespace inside a namespace is not supported");
    target.ns().attrs.set(Value::string(t.ns_attr), v);
    return;
  }
  if (!t.unpack) {
    scope.vars[t.names[0]] = v;
    return;
  }
  std::vector<Value> items = iterate(v);
  if (items.size() < t.names.size())
    throw Error(fmt("not enough values to unpack (expected %zu, got %zu)", t.names.size(), items.size()));
  if (items.size() > t.names.size()) throw Error(fmt("too many values to unpack (expected %zu)", t.names.size()));
  for (size_t i = 0; i < items.size(); i++) scope.vars[t.names[i]] = items[i];
}

void Interpreter::exec_macro_def(const MacroStmt& s, Scope& scope) {
  // Top-level macros resolve names through the template's scope, which lives as long as the
  // render. One defined inside a loop or macro gets a copy of what it can see, since the scope
  // it was defined in ends before the macro may be called.
  Scope* home = &scope;
  if (home != root_) {
    auto copy = std::make_unique<Scope>();
    copy->parent = root_;
    for (Scope* sc = &scope; sc && sc != root_; sc = sc->parent)
      for (const auto& [name, value] : sc->vars) copy->vars.emplace(name, value);
    home = copy.get();
    macro_scopes_.push_back(std::move(copy));
  }
  const MacroStmt* macro = &s;
  scope.vars[s.name] = Value::callable(s.name, [macro, home](Interpreter& in, CallArgs& args) {
    return in.invoke_macro(*macro, home, args);
  });
}

Value Interpreter::invoke_macro(const MacroStmt& m, Scope* home, CallArgs& args) {
  DepthGuard guard(*this);
  Scope local{home, {}};
  const size_t n = m.params.size();
  std::vector<bool> bound(n, false);
  std::vector<Value> varargs;
  auto kwargs = std::make_shared<DictData>();
  for (size_t i = 0; i < args.positional.size(); i++) {
    if (i < n) {
      local.vars[m.params[i]] = args.positional[i];
      bound[i] = true;
    } else if (m.takes_extra_args) {
      varargs.push_back(args.positional[i]);
    } else {
      throw Error(fmt("macro '%s' takes not more than %zu argument(s)", m.name.c_str(), n));
    }
  }
  for (auto& [key, value] : args.keyword) {
    size_t i = size_t(std::find(m.params.begin(), m.params.end(), key) - m.params.begin());
    if (i < n) {
      if (bound[i]) throw Error(fmt("macro '%s' got multiple values for argument '%s'", m.name.c_str(), key.c_str()));
      local.vars[key] = value;
      bound[i] = true;
    } else if (m.takes_extra_args) {
      kwargs->set(Value::string(key), value);
    } else {
      throw Error(fmt("macro '%s' takes no keyword argument '%s'", m.name.c_str(), key.c_str()));
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (bound[i]) continue;
    local.vars[m.params[i]] = m.defaults[i] ? eval(*m.defaults[i], local)
                                            : Value::undefined("parameter '" + m.params[i] + "' was not provided");
  }
  local.vars["varargs"] = Value::sequence(std::move(varargs), SeqKind::tuple);
  local.vars["kwargs"] = Value::dict(std::move(kwargs));
  std::string out;
  exec_body(m.body, local, out);
  return Value::string(std::move(out));
}

// ---- expressions ----

Value Interpreter::eval(const Expr& e, Scope& scope) {
  DepthGuard guard(*this);
  charge(64);
  try {
    Value v = eval_node(e, scope);
    if (v.is_string()) charge(v.str().size());
    return v;
  } catch (const LocatedError&) {
    throw;
  } catch (const Error& err) {
    throw LocatedError(e.line, err.what());
  }
}

Value Interpreter::lookup(const std::string& name, const Scope& scope) const {
  for (const Scope* s = &scope; s; s = s->parent) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  if (context_)
    if (const Value* v = context_->find(Value::string(name))) return *v;
  if (auto g = global_value(name)) return *g;
  return Value::undefined("'" + name + "' is undefined");
}

CallArgs Interpreter::eval_args(const ArgExprs& a, Scope& scope) {
  CallArgs args;
  for (const ExprPtr& e : a.positional) args.positional.push_back(eval(*e, scope));
  for (const auto& [key, e] : a.keyword) args.keyword.emplace_back(key, eval(*e, scope));
  return args;
}

Value Interpreter::eval_filter_chain(const Expr& e, Scope& scope, const Value& block_input) {
  const auto& f = static_cast<const FilterExpr&>(e);
  Value input = f.input ? eval_filter_chain(*f.input, scope, block_input) : block_input;
  CallArgs args = eval_args(f.args, scope);
  return apply_filter(*this, f.name, input, args);
}

Value Interpreter::eval_node(const Expr& e, Scope& scope) {
  switch (e.type) {
    case Expr::Type::constant: return static_cast<const ConstExpr&>(e).value;
    case Expr::Type::name: return lookup(static_cast<const NameExpr&>(e).name, scope);
    case Expr::Type::list: {
      const auto& n = static_cast<const ListExpr&>(e);
      std::vector<Value> items;
      for (const ExprPtr& item : n.items) items.push_back(eval(*item, scope));
      return Value::sequence(std::move(items), n.tuple ? SeqKind::tuple : SeqKind::list);
    }
    case Expr::Type::dict: {
      std::vector<std::pair<Value, Value>> items;
      for (const auto& [k, v] : static_cast<const DictExpr&>(e).items) {
        Value key = eval(*k, scope);
        items.emplace_back(std::move(key), eval(*v, scope));
      }
      return make_dict(std::move(items));
    }
    case Expr::Type::getattr: {
      const auto& n = static_cast<const GetattrExpr&>(e);
      return get_attr(eval(*n.obj, scope), n.name);
    }
    case Expr::Type::getitem: {
      const auto& n = static_cast<const GetitemExpr&>(e);
      Value obj = eval(*n.obj, scope);
      if (n.key->type == Expr::Type::slice) return slice(obj, static_cast<const SliceExpr&>(*n.key), scope);
      return get_item(obj, eval(*n.key, scope));
    }
    case Expr::Type::slice: throw Error("a slice is only valid inside [ ]");
    case Expr::Type::call: {
      const auto& n = static_cast<const CallExpr&>(e);
      Value callee = eval(*n.callee, scope);
      CallArgs args = eval_args(n.args, scope);
      return call(callee, args);
    }
    case Expr::Type::filter: {
      const auto& n = static_cast<const FilterExpr&>(e);
      Value input = eval(*n.input, scope);
      CallArgs args = eval_args(n.args, scope);
      return apply_filter(*this, n.name, input, args);
    }
    case Expr::Type::test: {
      const auto& n = static_cast<const TestExpr&>(e);
      Value input = eval(*n.input, scope);
      CallArgs args = eval_args(n.args, scope);
      return Value::boolean(apply_test(*this, n.name, input, args));
    }
    case Expr::Type::unary: {
      const auto& n = static_cast<const UnaryExpr&>(e);
      Value v = eval(*n.operand, scope);
      if (n.op == UnaryExpr::Op::not_) return Value::boolean(!truthy(v));
      if (v.is_undefined()) throw_undefined(v);
      if (!v.is_number())
        throw Error(fmt("bad operand type for unary %c: '%s'", n.op == UnaryExpr::Op::neg ? '-' : '+', type_name(v).c_str()));
      if (n.op == UnaryExpr::Op::pos) return v.is_bool() ? Value::integer(v.as_int()) : v;
      if (v.is_float()) return Value::floating(-v.as_float());
      if (v.as_int() == INT64_MIN) throw Error("integer overflow");
      return Value::integer(-v.as_int());
    }
    case Expr::Type::binary: return eval_binary(static_cast<const BinaryExpr&>(e), scope);
    case Expr::Type::concat: {
      std::string s;
      for (const ExprPtr& part : static_cast<const ConcatExpr&>(e).parts) {
        std::string piece = py_str(eval(*part, scope));
        check_size(s.size() + piece.size());
        s += piece;
      }
      return Value::string(std::move(s));
    }
    case Expr::Type::compare: return eval_compare(static_cast<const CompareExpr&>(e), scope);
    case Expr::Type::cond: {
      const auto& n = static_cast<const CondExpr&>(e);
      if (truthy(eval(*n.test, scope))) return eval(*n.yes, scope);
      if (n.no) return eval(*n.no, scope);
      return Value::undefined(fmt("the inline if-expression on line %d evaluated to false and no else section was defined.", e.line));
    }
  }
  return Value();
}

Value Interpreter::eval_binary(const BinaryExpr& e, Scope& scope) {
  Value left = eval(*e.left, scope);
  if (e.op == BinaryExpr::Op::and_) return truthy(left) ? eval(*e.right, scope) : left;
  if (e.op == BinaryExpr::Op::or_) return truthy(left) ? left : eval(*e.right, scope);
  return binary_op(*this, e.op, left, eval(*e.right, scope));
}

Value Interpreter::eval_compare(const CompareExpr& e, Scope& scope) {
  Value left = eval(*e.first, scope);
  for (const auto& [op, expr] : e.rest) {
    Value right = eval(*expr, scope);
    charge(weight_of(left) + weight_of(right));  // comparing and searching walk both sides
    bool ok = false;
    switch (op) {
      case CompareExpr::Op::eq: ok = py_equal(left, right); break;
      case CompareExpr::Op::ne: ok = !py_equal(left, right); break;
      case CompareExpr::Op::lt: ok = py_compare(left, right) < 0; break;
      case CompareExpr::Op::le: ok = py_compare(left, right) <= 0; break;
      case CompareExpr::Op::gt: ok = py_compare(left, right) > 0; break;
      case CompareExpr::Op::ge: ok = py_compare(left, right) >= 0; break;
      case CompareExpr::Op::in: ok = contains(right, left); break;
      case CompareExpr::Op::not_in: ok = !contains(right, left); break;
    }
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::slice(const Value& obj, const SliceExpr& s, Scope& scope) {
  Value start = s.start ? eval(*s.start, scope) : Value::none();
  Value stop = s.stop ? eval(*s.stop, scope) : Value::none();
  Value step = s.step ? eval(*s.step, scope) : Value::none();
  if (obj.is_undefined()) throw_undefined(obj);
  try {
    if (obj.is_string()) {
      std::vector<size_t> off = pystr::cp_offsets(obj.str());
      std::string out;
      for (size_t i : slice_positions(int64_t(off.size() - 1), start, stop, step))
        out.append(obj.str(), off[i], off[i + 1] - off[i]);
      return Value::text(std::move(out), obj.is_markup());
    }
    if (obj.is_indexable_seq()) {
      const auto& items = obj.seq().items;
      std::vector<Value> out;
      for (size_t i : slice_positions(int64_t(items.size()), start, stop, step)) out.push_back(items[i]);
      charge(out.size());
      return Value::sequence(std::move(out), obj.seq().kind);
    }
  } catch (const Error&) {
    // jinja2 turns the TypeError of a bad slice into Undefined; a zero step is a ValueError
    if (step.is_integral() && step.as_int() == 0) throw;
    return Value::undefined(object_type_repr(obj) + " has no element slice");
  }
  return Value::undefined(object_type_repr(obj) + " has no element slice");
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_callable()) return callee.callable().fn(*this, args);
  if (callee.is_undefined()) throw_undefined(callee);
  throw Error("'" + type_name(callee) + "' object is not callable");
}

Value Interpreter::get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (obj.is_ns()) {
    if (const Value* v = obj.ns().attrs.find(Value::string(name))) return *v;
  } else {
    if (auto m = method_of(obj, name)) return *m;  // Python finds dict.items before d["items"]
    if (obj.is_dict())
      if (const Value* v = obj.dict().find(Value::string(name))) return *v;
  }
  return no_attribute(obj, name);
}

Value Interpreter::get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (obj.is_dict()) {
    const Value* v = nullptr;
    try {
      v = obj.dict().find(key);
    } catch (const Error&) {  // unhashable key: a TypeError, which jinja2 turns into Undefined
    }
    if (v) return *v;
  } else if ((obj.is_indexable_seq() || obj.is_string()) && key.is_integral()) {
    int64_t i = key.as_int();
    if (obj.is_string()) {
      std::vector<size_t> off = pystr::cp_offsets(obj.str());
      int64_t n = int64_t(off.size()) - 1;
      if (i < 0) i += n;
      if (i >= 0 && i < n)
        return Value::text(obj.str().substr(off[size_t(i)], off[size_t(i) + 1] - off[size_t(i)]), obj.is_markup());
    } else {
      const auto& items = obj.seq().items;
      if (i < 0) i += int64_t(items.size());
      if (i >= 0 && i < int64_t(items.size())) return items[size_t(i)];
    }
  }
  if (key.is_string()) {  // jinja2 falls back to the attribute: d["items"] is the method
    if (obj.is_ns()) {
      if (const Value* v = obj.ns().attrs.find(key)) return *v;
    } else if (auto m = method_of(obj, key.str())) {
      return *m;
    }
    return no_attribute(obj, key.str());
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + py_repr(key));
}

}  // namespace squeeze::jinja
