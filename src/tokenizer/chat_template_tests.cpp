// jinja2's built-in tests (x is defined, x is string, ...), as jinja2/tests.py defines them.
// Note the Python details they inherit: bool is a number, Undefined is iterable and a
// sequence (it has len() and []), and a generator is iterable but not a sequence.
#include <cmath>
#include <functional>
#include <unordered_map>

#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_interpreter.h"
#include "tokenizer/chat_template_pystr.h"
#include "util/error.h"

namespace squeeze::jinja {

namespace {

using Test = std::function<bool(Interpreter&, const Value&, CallArgs&)>;

// jinja2: odd is `value % 2 == 1`, even `value % 2 == 0`, divisibleby `value % num == 0`, with
// Python's % (so 1.5 is neither odd nor even, and '%s' % 2 is a string, equal to neither).
bool remainder_is(Interpreter& in, const Value& v, const Value& by, int64_t expected) {
  return py_equal(binary_op(in, BinaryExpr::Op::mod, v, by), Value::integer(expected));
}


const std::unordered_map<std::string, Test>& tests() {
  static const std::unordered_map<std::string, Test> table = [] {
    std::unordered_map<std::string, Test> t;
    auto simple = [&](const char* name, std::function<bool(const Value&)> f) {
      std::string n = name;
      t[name] = [n, f](Interpreter&, const Value& v, CallArgs& args) {
        BoundArgs(n, args, {});
        return f(v);
      };
    };
    auto binary = [&](std::initializer_list<const char*> names, std::function<bool(const Value&, const Value&)> f) {
      for (const char* name : names) {
        std::string n = name;
        t[name] = [n, f](Interpreter&, const Value& v, CallArgs& args) {
          BoundArgs a(n, args, {"other"});
          return f(v, a.get(0));
        };
      }
    };
    simple("defined", [](const Value& v) { return !v.is_undefined(); });
    simple("undefined", [](const Value& v) { return v.is_undefined(); });
    simple("none", [](const Value& v) { return v.is_none(); });
    simple("boolean", [](const Value& v) { return v.is_bool(); });
    simple("false", [](const Value& v) { return v.is_bool() && !v.as_bool(); });
    simple("true", [](const Value& v) { return v.is_bool() && v.as_bool(); });
    simple("integer", [](const Value& v) { return v.is_int(); });
    simple("float", [](const Value& v) { return v.is_float(); });
    simple("number", [](const Value& v) { return v.is_number(); });
    simple("string", [](const Value& v) { return v.is_string(); });
    simple("mapping", [](const Value& v) { return v.is_dict(); });
    simple("iterable", [](const Value& v) { return v.is_undefined() || v.is_string() || v.is_seq() || v.is_dict(); });
    // len() and [] both work: str, list, tuple, dict, and Undefined (which has both)
    simple("sequence", [](const Value& v) { return v.is_undefined() || v.is_string() || v.is_indexable_seq() || v.is_dict(); });
    simple("callable", [](const Value& v) { return v.is_callable(); });
    simple("escaped", [](const Value& v) { return v.is_markup(); });
    simple("lower", [](const Value& v) { return pystr::is_lower(py_str(v)); });
    simple("upper", [](const Value& v) { return pystr::is_upper(py_str(v)); });
    t["odd"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      BoundArgs("odd", args, {});
      return remainder_is(in, v, Value::integer(2), 1);
    };
    t["even"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      BoundArgs("even", args, {});
      return remainder_is(in, v, Value::integer(2), 0);
    };
    t["divisibleby"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      BoundArgs a("divisibleby", args, {"num"});
      return remainder_is(in, v, a.get(0), 0);
    };
    binary({"sameas"}, [](const Value& v, const Value& o) {
      if (v.kind() != o.kind()) return false;
      if (v.identity()) return v.identity() == o.identity();
      return py_equal(v, o);
    });
    binary({"in"}, [](const Value& v, const Value& seq) { return contains(seq, v); });
    binary({"==", "eq", "equalto"}, [](const Value& a, const Value& b) { return py_equal(a, b); });
    binary({"!=", "ne"}, [](const Value& a, const Value& b) { return !py_equal(a, b); });
    binary({">", "gt", "greaterthan"}, [](const Value& a, const Value& b) { return py_compare(a, b) > 0; });
    binary({">=", "ge"}, [](const Value& a, const Value& b) { return py_compare(a, b) >= 0; });
    binary({"<", "lt", "lessthan"}, [](const Value& a, const Value& b) { return py_compare(a, b) < 0; });
    binary({"<=", "le"}, [](const Value& a, const Value& b) { return py_compare(a, b) <= 0; });
    simple("filter", [](const Value& v) { return v.is_string() && filter_exists(v.str()); });
    simple("test", [](const Value& v) { return v.is_string() && test_exists(v.str()); });
    return t;
  }();
  return table;
}

}  // namespace

bool test_exists(const std::string& name) { return tests().count(name) != 0; }

bool apply_test(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw Error("No test named '" + name + "' found.");
  uint64_t w = weight_of(input);
  for (const Value& arg : args.positional) w += weight_of(arg);  // `x is in big_list` walks the list
  in.charge(16 + w);
  return it->second(in, input, args);
}

}  // namespace squeeze::jinja
