// The arithmetic operators and `in` with Python's semantics: int/float promotion, floor
// division and modulo rounding toward negative infinity, str and list concatenation and
// repetition, and Python's TypeError messages. Integers are 64-bit; where Python would grow a
// big integer we report an overflow instead.
#include <cmath>

#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_interpreter.h"
#include "util/error.h"

namespace squeeze::jinja {

namespace {

const char* op_symbol(BinaryExpr::Op op) {
  switch (op) {
    case BinaryExpr::Op::add: return "+";
    case BinaryExpr::Op::sub: return "-";
    case BinaryExpr::Op::mul: return "*";
    case BinaryExpr::Op::div: return "/";
    case BinaryExpr::Op::floordiv: return "//";
    case BinaryExpr::Op::mod: return "%";
    case BinaryExpr::Op::pow: return "** or pow()";
    default: return "?";
  }
}

[[noreturn]] void unsupported(BinaryExpr::Op op, const Value& a, const Value& b) {
  throw Error(fmt("unsupported operand type(s) for %s: '%s' and '%s'", op_symbol(op), type_name(a).c_str(),
                  type_name(b).c_str()));
}

[[noreturn]] void overflow() { throw Error("integer overflow (the result does not fit in 64 bits)"); }

Value int_op(BinaryExpr::Op op, int64_t a, int64_t b) {
  int64_t r = 0;
  switch (op) {
    case BinaryExpr::Op::add:
      if (__builtin_add_overflow(a, b, &r)) overflow();
      return Value::integer(r);
    case BinaryExpr::Op::sub:
      if (__builtin_sub_overflow(a, b, &r)) overflow();
      return Value::integer(r);
    case BinaryExpr::Op::mul:
      if (__builtin_mul_overflow(a, b, &r)) overflow();
      return Value::integer(r);
    case BinaryExpr::Op::div:
      if (b == 0) throw Error("division by zero");
      return Value::floating(double(a) / double(b));
    case BinaryExpr::Op::floordiv: {
      if (b == 0) throw Error("integer division or modulo by zero");
      if (a == INT64_MIN && b == -1) overflow();
      int64_t q = a / b;
      if (a % b != 0 && ((a < 0) != (b < 0))) q--;
      return Value::integer(q);
    }
    case BinaryExpr::Op::mod: {
      if (b == 0) throw Error("integer modulo by zero");
      if (b == -1) return Value::integer(0);
      int64_t m = a % b;
      if (m != 0 && ((m < 0) != (b < 0))) m += b;
      return Value::integer(m);
    }
    case BinaryExpr::Op::pow: {
      if (b < 0) {
        if (a == 0) throw Error("0.0 cannot be raised to a negative power");
        return Value::floating(std::pow(double(a), double(b)));
      }
      int64_t result = 1, base = a;
      for (int64_t e = b; e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(result, base, &result)) overflow();
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return Value::integer(result);
    }
    default: return Value();
  }
}

Value float_op(BinaryExpr::Op op, double a, double b) {
  switch (op) {
    case BinaryExpr::Op::add: return Value::floating(a + b);
    case BinaryExpr::Op::sub: return Value::floating(a - b);
    case BinaryExpr::Op::mul: return Value::floating(a * b);
    case BinaryExpr::Op::div:
      if (b == 0) throw Error("float division by zero");
      return Value::floating(a / b);
    case BinaryExpr::Op::floordiv:
    case BinaryExpr::Op::mod: {
      if (b == 0) throw Error(op == BinaryExpr::Op::mod ? "float modulo" : "float floor division by zero");
      // CPython's float divmod
      double mod = std::fmod(a, b);
      double div = (a - mod) / b;
      if (mod != 0) {
        if ((b < 0) != (mod < 0)) {
          mod += b;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, b);
      }
      if (op == BinaryExpr::Op::mod) return Value::floating(mod);
      double floordiv;
      if (div != 0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
      } else {
        floordiv = std::copysign(0.0, a / b);
      }
      return Value::floating(floordiv);
    }
    case BinaryExpr::Op::pow:
      if (a == 0 && b < 0) throw Error("0.0 cannot be raised to a negative power");
      if (a < 0 && std::floor(b) != b) throw Error("a negative number to a fractional power is complex");
      return Value::floating(std::pow(a, b));
    default: return Value();
  }
}

Value repeat(Interpreter& in, const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    in.check_size(seq.str().size() * size_t(std::min<int64_t>(times, INT32_MAX)));
    in.charge(seq.str().size() * uint64_t(times));
    std::string out;
    out.reserve(seq.str().size() * size_t(times));
    for (int64_t i = 0; i < times; i++) out += seq.str();
    return Value::text(std::move(out), seq.is_markup());
  }
  const auto& items = seq.seq().items;
  uint64_t n = items.size() * uint64_t(times);
  in.check_size(n);  // one byte per item at least
  in.charge(n);
  std::vector<Value> out;
  for (int64_t i = 0; i < times; i++) out.insert(out.end(), items.begin(), items.end());
  return Value::sequence(std::move(out), seq.seq().kind);
}

}  // namespace

Value binary_op(Interpreter& in, BinaryExpr::Op op, const Value& a, const Value& b) {
  if (a.is_undefined()) throw_undefined(a);
  if (b.is_undefined()) throw_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return int_op(op, a.as_int(), b.as_int());
    return float_op(op, a.as_float(), b.as_float());
  }
  switch (op) {
    case BinaryExpr::Op::add:
      if (a.is_string() && b.is_string()) {
        if (a.is_markup() || b.is_markup()) {  // Markup escapes the plain str it is added to
          std::string x = markup_escape(a).str(), y = markup_escape(b).str();
          in.check_size(x.size() + y.size());
          return Value::markup(x + y);
        }
        in.check_size(a.str().size() + b.str().size());
        return Value::string(a.str() + b.str());
      }
      if (a.is_indexable_seq() && b.is_seq() && a.seq().kind == b.seq().kind) {
        std::vector<Value> items = a.seq().items;
        items.insert(items.end(), b.seq().items.begin(), b.seq().items.end());
        in.charge(items.size());
        return Value::sequence(std::move(items), a.seq().kind);
      }
      if (a.is_string() || a.is_indexable_seq())
        throw Error(fmt("can only concatenate %s (not \"%s\") to %s", type_name(a).c_str(), type_name(b).c_str(),
                        type_name(a).c_str()));
      unsupported(op, a, b);
    case BinaryExpr::Op::mul:
      if ((a.is_string() || a.is_indexable_seq()) && b.is_integral()) return repeat(in, a, b.as_int());
      if ((b.is_string() || b.is_indexable_seq()) && a.is_integral()) return repeat(in, b, a.as_int());
      if (a.is_string() || a.is_indexable_seq() || b.is_string() || b.is_indexable_seq())
        throw Error("can't multiply sequence by non-int of type '" +
                    type_name((a.is_string() || a.is_indexable_seq()) ? b : a) + "'");
      unsupported(op, a, b);
    case BinaryExpr::Op::mod:
      if (a.is_string()) return Value::text(percent_format(a.str(), b, a.is_markup()), a.is_markup());
      unsupported(op, a, b);
    default: unsupported(op, a, b);
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::undefined: return false;
    case Kind::string:
      if (!item.is_string())
        throw Error("'in <string>' requires string as left operand, not " + type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Kind::sequence:
      for (const Value& v : container.seq().items)
        if (py_equal(v, item)) return true;
      return false;
    case Kind::dict: return container.dict().find(item) != nullptr;
    default: throw Error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

}  // namespace squeeze::jinja
