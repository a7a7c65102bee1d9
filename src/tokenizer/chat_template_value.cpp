#include "tokenizer/chat_template_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/chat_template_pystr.h"
#include "util/error.h"

namespace squeeze::jinja {

namespace {

void check_depth(int depth) {
  if (depth > kMaxDepth) throw Error(fmt("values nest more than %d levels deep", kMaxDepth));
}

const char* seq_open(SeqKind k) {
  switch (k) {
    case SeqKind::tuple: return "(";
    case SeqKind::dict_keys: return "dict_keys([";
    case SeqKind::dict_values: return "dict_values([";
    case SeqKind::dict_items: return "dict_items([";
    default: return "[";
  }
}

const char* seq_close(SeqKind k) {
  switch (k) {
    case SeqKind::tuple: return ")";
    case SeqKind::dict_keys:
    case SeqKind::dict_values:
    case SeqKind::dict_items: return "])";
    default: return "]";
  }
}

// Sequences that compare element by element (generators and views compare by identity).
bool compares_by_value(SeqKind k) { return k == SeqKind::list || k == SeqKind::tuple; }

}  // namespace

Value Value::sequence(std::vector<Value> items, SeqKind kind) {
  auto d = std::make_shared<SeqData>();
  int deepest = 0;
  for (const Value& v : items) {
    deepest = std::max(deepest, depth_of(v));
    d->weight += weight_of(v);
  }
  d->depth = deepest + 1;
  check_depth(d->depth);
  d->items = std::move(items);
  d->kind = kind;
  return Value(Kind::sequence, std::shared_ptr<const SeqData>(std::move(d)));
}

Value Value::callable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn) {
  auto c = std::make_shared<Callable>();
  c->name = std::move(name);
  c->fn = std::move(fn);
  return Value(Kind::callable, std::shared_ptr<const Callable>(std::move(c)));
}

const void* Value::identity() const {
  switch (kind_) {
    case Kind::sequence: return &seq();
    case Kind::dict: return &dict();
    case Kind::ns: return &ns();
    case Kind::callable: return &callable();
    default: return nullptr;
  }
}

const Value* DictData::find(const Value& key) const {
  auto it = index_.find(hash_key(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

void DictData::set(const Value& key, Value value) {
  int d = depth_of(value) + 1;
  check_depth(d);
  depth_ = std::max(depth_, d);
  weight_ += weight_of(key) + weight_of(value);  // a replaced value stays counted: an overestimate
  auto [it, inserted] = index_.emplace(hash_key(key), items_.size());
  if (inserted) items_.emplace_back(key, std::move(value));
  else items_[it->second].second = std::move(value);
}

int depth_of(const Value& v) {
  switch (v.kind()) {
    case Kind::sequence: return v.seq().depth;
    case Kind::dict: return v.dict().depth();
    case Kind::ns: {
      int deepest = 0;  // namespaces never hold namespaces, so this walk is shallow
      for (const auto& [k, item] : v.ns().attrs.items()) deepest = std::max(deepest, depth_of(item));
      return deepest + 1;
    }
    default: return 0;
  }
}

uint64_t weight_of(const Value& v) {
  switch (v.kind()) {
    case Kind::string: return 1 + v.str().size() / 16;
    case Kind::sequence: return v.seq().weight;
    case Kind::dict: return v.dict().weight();
    case Kind::ns: {
      uint64_t w = 1;
      for (const auto& [k, item] : v.ns().attrs.items()) w += weight_of(item);
      return w;
    }
    default: return 1;
  }
}

Value make_dict(std::vector<std::pair<Value, Value>> items) {
  auto d = std::make_shared<DictData>();
  for (auto& [k, v] : items) d->set(k, std::move(v));
  return Value::dict(std::move(d));
}

void throw_undefined(const Value& v) {
  throw Error(v.undefined_message().empty() ? "undefined value" : v.undefined_message());
}

bool holds_namespace(const Value& v) {
  if (v.is_ns()) return true;
  if (v.is_seq())
    for (const Value& item : v.seq().items)
      if (holds_namespace(item)) return true;
  if (v.is_dict())
    for (const auto& [k, item] : v.dict().items())
      if (holds_namespace(item)) return true;
  return false;
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean: return v.as_bool();
    case Kind::integer: return v.as_int() != 0;
    case Kind::floating: return v.as_float() != 0.0;
    case Kind::string: return !v.str().empty();
    case Kind::sequence: return v.seq().kind == SeqKind::generator || !v.seq().items.empty();
    case Kind::dict: return v.dict().size() != 0;
    case Kind::ns:
    case Kind::callable: return true;
  }
  return false;
}

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
    return a.as_float() == b.as_float();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::undefined:
    case Kind::none: return true;
    case Kind::string: return a.str() == b.str();
    case Kind::sequence: {
      const SeqData &x = a.seq(), &y = b.seq();
      if (x.kind != y.kind) return false;
      if (!compares_by_value(x.kind)) return &x == &y;
      if (x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); i++)
        if (!py_equal(x.items[i], y.items[i])) return false;
      return true;
    }
    case Kind::dict: {
      const DictData &x = a.dict(), &y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const Value* other = y.find(k);
        if (!other || !py_equal(v, *other)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

int py_compare(const Value& a, const Value& b) {
  if (a.is_undefined()) throw_undefined(a);
  if (b.is_undefined()) throw_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
    double x = a.as_float(), y = b.as_float();
    return x < y ? -1 : x > y ? 1 : 0;  // NaN compares as equal here, where Python says False
  }
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0;
  }
  if (a.is_seq() && b.is_seq() && a.seq().kind == b.seq().kind && compares_by_value(a.seq().kind)) {
    const auto &x = a.seq().items, &y = b.seq().items;
    for (size_t i = 0; i < x.size() && i < y.size(); i++)
      if (!py_equal(x[i], y[i])) return py_compare(x[i], y[i]);
    return x.size() < y.size() ? -1 : x.size() > y.size();
  }
  throw Error(fmt("'<' not supported between instances of '%s' and '%s'", type_name(a).c_str(),
                  type_name(b).c_str()));
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: positional when the decimal exponent
  // is in [-4, 16), scientific with a two-digit exponent otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string out;
  size_t i = 0;
  if (sci[0] == '-') {
    out += '-';
    i = 1;
  }
  size_t e = sci.find('e');
  std::string digits;
  for (size_t k = i; k < e; k++)
    if (sci[k] != '.') digits += sci[k];
  int exp = std::stoi(sci.substr(e + 1));
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(size_t(-exp - 1), '0') + digits;
    } else if (size_t(exp) + 1 >= digits.size()) {
      out += digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return out + ebuf;
}

std::string py_repr(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return "Undefined";
    case Kind::none: return "None";
    case Kind::boolean: return v.as_bool() ? "True" : "False";
    case Kind::integer: return std::to_string(v.as_int());
    case Kind::floating: return py_float_repr(v.as_float());
    case Kind::string: return v.is_markup() ? "Markup(" + pystr::repr(v.str()) + ")" : pystr::repr(v.str());
    case Kind::sequence: {
      const SeqData& s = v.seq();
      if (s.kind == SeqKind::generator) return "<generator object>";
      std::string out = seq_open(s.kind);
      for (size_t i = 0; i < s.items.size(); i++) {
        if (i) out += ", ";
        out += py_repr(s.items[i]);
      }
      if (s.kind == SeqKind::tuple && s.items.size() == 1) out += ",";
      return out + seq_close(s.kind);
    }
    case Kind::dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, item] : v.dict().items()) {
        if (!first) out += ", ";
        first = false;
        out += py_repr(k) + ": " + py_repr(item);
      }
      return out + "}";
    }
    case Kind::ns: {
      const NamespaceData& n = v.ns();
      if (n.is_loop) {
        const Value* index = n.attrs.find(Value::string("index"));
        const Value* length = n.attrs.find(Value::string("length"));
        return "<LoopContext " + (index ? py_repr(*index) : "?") + "/" + (length ? py_repr(*length) : "?") + ">";
      }
      Value attrs = Value::dict(std::make_shared<DictData>(n.attrs));
      return "<Namespace " + py_repr(attrs) + ">";
    }
    case Kind::callable: return "<function " + v.callable().name + ">";
  }
  return "";
}

std::string py_str(const Value& v) {
  if (v.is_string()) return v.str();
  if (v.is_undefined()) return "";
  return py_repr(v);
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return "Undefined";
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::sequence:
      switch (v.seq().kind) {
        case SeqKind::list: return "list";
        case SeqKind::tuple: return "tuple";
        case SeqKind::generator: return "generator";
        case SeqKind::dict_keys: return "dict_keys";
        case SeqKind::dict_values: return "dict_values";
        case SeqKind::dict_items: return "dict_items";
      }
      return "list";
    case Kind::dict: return "dict";
    case Kind::ns: return v.ns().is_loop ? "LoopContext" : "Namespace";
    case Kind::callable: return "function";
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  return type_name(v) + " object";
}

std::string hash_key(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return "U";
    case Kind::none: return "N";
    case Kind::boolean:
    case Kind::integer: return "i" + std::to_string(v.as_int());
    case Kind::floating: {
      double d = v.as_float();
      if (std::floor(d) == d && std::fabs(d) < 9.2e18) return "i" + std::to_string(int64_t(d));
      return "f" + py_float_repr(d);
    }
    case Kind::string: return "s" + v.str();
    case Kind::sequence:
      if (v.seq().kind == SeqKind::tuple) {
        std::string out = "t(";
        for (const Value& item : v.seq().items) {
          std::string k = hash_key(item);
          out += std::to_string(k.size()) + ":" + k;
        }
        return out + ")";
      }
      if (v.seq().kind == SeqKind::generator) return fmt("p%p", v.identity());
      break;
    case Kind::dict: break;
    case Kind::ns:
    case Kind::callable: return fmt("p%p", v.identity());
  }
  throw Error("unhashable type: '" + type_name(v) + "'");
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return {};
    case Kind::sequence: return v.seq().items;
    case Kind::dict: {
      std::vector<Value> keys;
      keys.reserve(v.dict().size());
      for (const auto& [k, item] : v.dict().items()) keys.push_back(k);
      return keys;
    }
    case Kind::string: {
      std::vector<Value> chars;
      std::vector<size_t> off = pystr::cp_offsets(v.str());
      chars.reserve(off.size());
      for (size_t i = 0; i + 1 < off.size(); i++)
        chars.push_back(Value::string(v.str().substr(off[i], off[i + 1] - off[i])));
      return chars;
    }
    default: throw Error("'" + type_name(v) + "' object is not iterable");
  }
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return 0;
    case Kind::string: return int64_t(pystr::cp_count(v.str()));
    case Kind::sequence:
      if (v.seq().kind == SeqKind::generator) break;
      return int64_t(v.seq().items.size());
    case Kind::dict: return int64_t(v.dict().size());
    default: break;
  }
  throw Error("object of type '" + type_name(v) + "' has no len()");
}

}  // namespace squeeze::jinja
