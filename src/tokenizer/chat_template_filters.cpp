// jinja2's built-in filters, with transformers' tojson. Each one mirrors the Python function of
// the same name in jinja2/filters.py: which inputs it converts with str(), which it iterates,
// and what it returns (select, map, reject, unique and items return generators, which print
// and test differently from lists).
#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_interpreter.h"
#include "tokenizer/chat_template_pystr.h"
#include "tokenizer/regex.h"
#include "util/error.h"

namespace squeeze::jinja {

BoundArgs::BoundArgs(const std::string& function, CallArgs& args, std::initializer_list<const char*> params)
    : bound_(params.size(), nullptr) {
  std::vector<const char*> names(params);
  if (args.positional.size() > names.size())
    throw Error(fmt("%s() takes at most %zu arguments (%zu given)", function.c_str(), names.size(), args.positional.size()));
  for (size_t i = 0; i < args.positional.size(); i++) bound_[i] = &args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    size_t i = 0;
    while (i < names.size() && key != names[i]) i++;
    if (i == names.size()) throw Error(function + "() got an unexpected keyword argument '" + key + "'");
    if (bound_[i]) throw Error(function + "() got multiple values for argument '" + key + "'");
    bound_[i] = &value;
  }
}

const Value& BoundArgs::get(size_t i) const {
  static const Value undefined;
  return bound_[i] ? *bound_[i] : undefined;
}

namespace {

using Filter = std::function<Value(Interpreter&, const Value&, CallArgs&)>;

int64_t int_arg(const Value& v, const char* what) {
  if (v.is_integral()) return v.as_int();
  if (v.is_undefined()) throw_undefined(v);
  throw Error(std::string("'") + type_name(v) + "' object cannot be interpreted as an integer (" + what + ")");
}

std::optional<std::string> opt_str(const Value& v) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  return py_str(v);
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0, each as obj[part].
std::function<Value(const Value&)> attr_getter(Interpreter& in, const Value& attribute, bool lower_strings,
                                               std::optional<Value> fallback = std::nullopt) {
  std::vector<Value> parts;
  if (attribute.is_string()) {
    for (const std::string& p : pystr::split(attribute.str(), std::string("."), -1)) {
      auto n = pystr::parse_int(p, 10);
      parts.push_back(n && p.find_first_not_of("0123456789") == std::string::npos ? Value::integer(*n) : Value::string(p));
    }
  } else if (!attribute.is_none() && !attribute.is_undefined()) {
    parts.push_back(attribute);
  }
  return [&in, parts, lower_strings, fallback](const Value& item) {
    Value v = item;
    for (const Value& p : parts) {
      v = in.get_item(v, p);
      if (fallback && v.is_undefined()) v = *fallback;
    }
    if (lower_strings && v.is_string()) v = Value::string(pystr::lower(v.str()));
    return v;
  };
}

Value generator(std::vector<Value> items) { return Value::sequence(std::move(items), SeqKind::generator); }

// select/reject/selectattr/rejectattr: keep the items whose test result equals `keep`.
Value select_or_reject(Interpreter& in, const Value& value, CallArgs& args, bool keep, bool by_attr) {
  if (!truthy(value)) return generator({});
  size_t off = 0;
  std::function<Value(const Value&)> get = [](const Value& v) { return v; };
  if (by_attr) {
    if (args.positional.empty()) throw Error("Missing parameter for attribute name");
    get = attr_getter(in, args.positional[0], false);
    off = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.positional.size() > off) {
    test = py_str(args.positional[off]);
    test_args.positional.assign(args.positional.begin() + long(off) + 1, args.positional.end());
    test_args.keyword = args.keyword;
  }
  std::vector<Value> out;
  for (const Value& item : iterate(value)) {
    Value probe = get(item);
    CallArgs a = test_args;
    bool r = test ? apply_test(in, *test, probe, a) : truthy(probe);
    if (r == keep) out.push_back(item);
  }
  return generator(std::move(out));
}

Value do_map(Interpreter& in, const Value& value, CallArgs& args) {
  if (!truthy(value)) return generator({});
  std::function<Value(const Value&)> f;
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, v] : args.keyword) {
    if (k == "attribute") attribute = &v;
    else if (k == "default") fallback = &v;
  }
  if (attribute) {
    if (!args.positional.empty() || args.keyword.size() > (fallback ? 2u : 1u))
      throw Error("map() with attribute= takes no other arguments besides default=");
    f = attr_getter(in, *attribute, false, fallback ? std::optional<Value>(*fallback) : std::nullopt);
  } else {
    if (args.positional.empty()) throw Error("map requires a filter argument");
    std::string name = py_str(args.positional[0]);
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    f = [&in, name, rest](const Value& item) {
      CallArgs a = rest;
      return apply_filter(in, name, item, a);
    };
  }
  std::vector<Value> out;
  for (const Value& item : iterate(value)) out.push_back(f(item));
  return generator(std::move(out));
}

std::vector<Value> sorted(Interpreter& in, const Value& value, const Value& attribute, bool case_sensitive, bool reverse) {
  std::vector<Value> items = iterate(value);
  std::vector<Value> keys;
  if (attribute.is_string() && attribute.str().find(',') != std::string::npos) {  // "age,name"
    std::vector<std::function<Value(const Value&)>> getters;
    for (const std::string& part : pystr::split(attribute.str(), std::string(","), -1))
      getters.push_back(attr_getter(in, Value::string(part), !case_sensitive));
    for (const Value& item : items) {
      std::vector<Value> k;
      for (auto& g : getters) k.push_back(g(item));
      keys.push_back(Value::sequence(std::move(k)));
    }
  } else {
    auto get = attr_getter(in, attribute, !case_sensitive);
    for (const Value& item : items) keys.push_back(get(item));
  }
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  // Python's sorted(reverse=True) keeps equal items in their original order, too.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reverse ? py_compare(keys[b], keys[a]) < 0 : py_compare(keys[a], keys[b]) < 0;
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return out;
}

Value min_or_max(Interpreter& in, const Value& value, CallArgs& args, bool want_max, const char* name) {
  BoundArgs a(name, args, {"case_sensitive", "attribute"});
  std::vector<Value> items = iterate(value);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto key = attr_getter(in, a.get(1), !truthy(a.get(0)));
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); i++) {
    Value k = key(items[i]);
    int c = py_compare(k, best_key);
    if (want_max ? c > 0 : c < 0) best = i, best_key = k;
  }
  return items[best];
}

std::string require_str(const Value& v, const char* filter) {
  if (v.is_string()) return v.str();
  if (v.is_undefined()) throw_undefined(v);
  throw Error(std::string(filter) + " filter expects a string, got '" + type_name(v) + "'");
}

Value do_indent(const Value& s, CallArgs& args) {
  BoundArgs a("indent", args, {"width", "first", "blank"});
  std::string text = require_str(s, "indent");
  Value width = a.get_or(0, Value::integer(4));
  std::string indention = width.is_string() ? width.str() : std::string(size_t(std::clamp<int64_t>(int_arg(width, "width"), 0, 100000)), ' ');
  text += "\n";  // jinja2 adds a newline so that splitlines() keeps a trailing empty line
  std::vector<std::string> lines = pystr::splitlines(text, false);
  std::string rv;
  if (truthy(a.get(2))) {
    for (size_t i = 0; i < lines.size(); i++) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); i++) rv += "\n" + (lines[i].empty() ? "" : indention) + lines[i];
  }
  if (truthy(a.get(1))) rv = indention + rv;
  return Value::text(rv, s.is_markup());
}

Value do_round(const Value& v, CallArgs& args) {
  BoundArgs a("round", args, {"precision", "method"});
  int64_t precision = a.has(0) ? int_arg(a.get(0), "precision") : 0;
  std::string method = a.has(1) ? py_str(a.get(1)) : "common";
  if (method != "common" && method != "ceil" && method != "floor") throw Error("method must be common, ceil or floor");
  if (v.is_undefined()) throw_undefined(v);
  if (!v.is_number()) throw Error("type " + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (v.is_integral()) return Value::integer(v.as_int());  // round(int, n) stays an int
    double d = v.as_float();
    if (!std::isfinite(d) || precision > 300) return v;
    if (precision >= 0) {  // correctly rounded, ties to even, like CPython's round()
      std::string text(size_t(std::snprintf(nullptr, 0, "%.*f", int(precision), d)) + 1, '\0');
      std::snprintf(text.data(), text.size(), "%.*f", int(precision), d);
      return Value::floating(std::strtod(text.c_str(), nullptr));
    }
    if (precision < -308) return Value::floating(std::copysign(0.0, d));
    double scale = std::pow(10.0, double(-precision));
    return Value::floating(std::nearbyint(d / scale) * scale);
  }
  double scale = std::pow(10.0, double(precision));
  double d = v.as_float() * scale;
  return Value::floating((method == "ceil" ? std::ceil(d) : std::floor(d)) / scale);
}

Value do_int(const Value& v, CallArgs& args) {
  BoundArgs a("int", args, {"default", "base"});
  Value fallback = a.get_or(0, Value::integer(0));
  int base = a.has(1) ? int(int_arg(a.get(1), "base")) : 10;
  if (v.is_undefined()) throw_undefined(v);  // int(Undefined) raises, which the filter does not catch
  if (v.is_integral()) return Value::integer(v.as_int());
  // Python's int() of inf/nan raises (the filter then returns the default); of a float beyond
  // 64 bits it makes a big integer, which we cannot represent.
  auto from_float = [&](double d) {
    if (!std::isfinite(d)) return fallback;
    if (std::fabs(d) >= 9.2e18) throw Error("integer too large for 64 bits");
    return Value::integer(int64_t(d));
  };
  if (v.is_float()) return from_float(v.as_float());
  if (v.is_string()) {
    if (auto n = pystr::parse_int(v.str(), base)) return Value::integer(*n);
    if (auto d = pystr::parse_float(v.str())) return from_float(*d);
  }
  return fallback;
}

Value do_float(const Value& v, CallArgs& args) {
  BoundArgs a("float", args, {"default"});
  Value fallback = a.get_or(0, Value::floating(0.0));
  if (v.is_undefined()) throw_undefined(v);
  if (v.is_number()) return Value::floating(v.as_float());
  if (v.is_string())
    if (auto d = pystr::parse_float(v.str())) return Value::floating(*d);
  return fallback;
}

Value do_tojson(Interpreter& in, const Value& v, CallArgs& args) {
  BoundArgs a("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonFormat f;
  f.ensure_ascii = truthy(a.get(0));
  const Value& indent = a.get(1);
  if (indent.is_string()) f.indent = indent.str();
  else if (indent.is_integral()) f.indent = std::string(size_t(std::clamp<int64_t>(indent.as_int(), 0, 1000)), ' ');
  else if (!indent.is_none() && !indent.is_undefined()) throw Error("indent must be an int or a string");
  if (f.indent) f.item_sep = ",";
  const Value& seps = a.get(2);
  if (!seps.is_none() && !seps.is_undefined()) {
    std::vector<Value> pair = iterate(seps);
    if (pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) throw Error("separators must be a pair of strings");
    f.item_sep = pair[0].str();
    f.key_sep = pair[1].str();
  }
  f.sort_keys = truthy(a.get(3));
  std::string out = to_json(v, f);
  in.check_size(out.size());
  return Value::string(std::move(out));
}

Value do_join(Interpreter& in, const Value& value, CallArgs& args) {
  BoundArgs a("join", args, {"d", "attribute"});
  std::string sep = a.has(0) ? py_str(a.get(0)) : "";
  std::vector<Value> items = iterate(value);
  auto get = attr_getter(in, a.get(1), false);
  std::string out;
  for (size_t i = 0; i < items.size(); i++) {
    if (i) out += sep;
    out += py_str(a.has(1) ? get(items[i]) : items[i]);
    in.check_size(out.size());
  }
  return Value::string(std::move(out));
}

Value do_sum(Interpreter& in, const Value& value, CallArgs& args) {
  BoundArgs a("sum", args, {"attribute", "start"});
  Value total = a.get_or(1, Value::integer(0));
  auto get = attr_getter(in, a.get(0), false);
  for (const Value& item : iterate(value)) total = binary_op(in, BinaryExpr::Op::add, total, get(item));
  return total;
}

Value do_unique(Interpreter& in, const Value& value, CallArgs& args) {
  BoundArgs a("unique", args, {"case_sensitive", "attribute"});
  auto get = attr_getter(in, a.get(1), !truthy(a.get(0)));
  std::unordered_set<std::string> seen;
  std::vector<Value> out;
  for (const Value& item : iterate(value))
    if (seen.insert(hash_key(get(item))).second) out.push_back(item);
  return generator(std::move(out));
}

Value do_dictsort(const Value& value, CallArgs& args) {
  BoundArgs a("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (!value.is_dict()) throw Error("dictsort expects a mapping");
  std::string by = a.has(1) ? py_str(a.get(1)) : "key";
  if (by != "key" && by != "value") throw Error("You can only sort by either \"key\" or \"value\"");
  bool case_sensitive = truthy(a.get(0)), reverse = truthy(a.get(2));
  std::vector<Value> pairs, keys;
  for (const auto& [k, v] : value.dict().items()) {
    pairs.push_back(Value::sequence({k, v}, SeqKind::tuple));
    Value key = by == "key" ? k : v;
    if (!case_sensitive && key.is_string()) key = Value::string(pystr::lower(key.str()));
    keys.push_back(key);
  }
  std::vector<size_t> order(pairs.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return reverse ? py_compare(keys[y], keys[x]) < 0 : py_compare(keys[x], keys[y]) < 0;
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(pairs[i]);
  return Value::sequence(std::move(out));
}

Value do_reverse(const Value& value) {
  if (value.is_string()) {
    std::vector<size_t> off = pystr::cp_offsets(value.str());
    std::string out;
    for (size_t i = off.size() - 1; i > 0; i--) out.append(value.str(), off[i - 1], off[i] - off[i - 1]);
    return Value::text(std::move(out), value.is_markup());
  }
  if (value.is_seq() && value.seq().kind == SeqKind::generator) {  // not reversible: list() then reverse
    std::vector<Value> items = value.seq().items;
    std::reverse(items.begin(), items.end());
    return Value::sequence(std::move(items));
  }
  std::vector<Value> items = iterate(value);
  std::reverse(items.begin(), items.end());
  return generator(std::move(items));  // reversed(): an iterator
}

Value do_batch(const Value& value, CallArgs& args) {
  BoundArgs a("batch", args, {"linecount", "fill_with"});
  int64_t n = int_arg(a.get(0), "linecount");
  if (n <= 0) throw Error("batch size must be positive");
  std::vector<Value> out, cur;
  for (const Value& item : iterate(value)) {
    cur.push_back(item);
    if (int64_t(cur.size()) == n) out.push_back(Value::sequence(std::move(cur))), cur.clear();
  }
  if (!cur.empty()) {
    if (a.has(1) && !a.get(1).is_none())
      while (int64_t(cur.size()) < n) cur.push_back(a.get(1));
    out.push_back(Value::sequence(std::move(cur)));
  }
  return generator(std::move(out));
}

Value do_center(const Value& value, CallArgs& args) {
  BoundArgs a("center", args, {"width"});
  std::string s = py_str(value);
  int64_t width = a.has(0) ? int_arg(a.get(0), "width") : 80;
  int64_t len = int64_t(pystr::cp_count(s));
  if (width <= len) return Value::text(s, value.is_markup());
  int64_t marg = std::min<int64_t>(width, 1000000) - len;
  int64_t left = marg / 2 + (marg & width & 1);  // CPython's str.center
  return Value::text(std::string(size_t(left), ' ') + s + std::string(size_t(marg - left), ' '), value.is_markup());
}

Value do_wordcount(const Value& value) {
  static const tok::Regex word("\\w+");
  std::vector<std::pair<size_t, size_t>> spans;
  word.find_all(py_str(value), spans);
  return Value::integer(int64_t(spans.size()));
}

Value do_title(const Value& value) {
  // jinja2 capitalizes each piece between runs of - whitespace ( { [ <, not str.title()
  std::string s = py_str(value), out, piece;
  auto is_sep = [](uint32_t cp) { return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || pystr::is_space(cp); };
  std::vector<uint32_t> cps = pystr::code_points(s);
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    bool sep = is_sep(cps[i]);
    while (j < cps.size() && is_sep(cps[j]) == sep) j++;
    std::string chunk;
    for (size_t k = i; k < j; k++) pystr::append_utf8(chunk, cps[k]);
    if (sep) {
      out += chunk;
    } else {
      std::vector<size_t> off = pystr::cp_offsets(chunk);
      out += pystr::upper(chunk.substr(0, off[1])) + pystr::lower(chunk.substr(off[1]));
    }
    i = j;
  }
  return Value::string(out);
}

const std::unordered_map<std::string, Filter>& filters() {
  static const std::unordered_map<std::string, Filter> table = [] {
    std::unordered_map<std::string, Filter> t;
    auto no_args = [](const char* name, CallArgs& args) { BoundArgs(name, args, {}); };
    t["abs"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("abs", args);
      if (v.is_undefined()) throw_undefined(v);
      if (v.is_float()) return Value::floating(std::fabs(v.as_float()));
      if (!v.is_integral()) throw Error("bad operand type for abs(): '" + type_name(v) + "'");
      if (v.as_int() == INT64_MIN) throw Error("integer overflow");
      return Value::integer(std::llabs(v.as_int()));
    };
    t["attr"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      BoundArgs a("attr", args, {"name"});
      std::string name = py_str(a.get(0));
      if (v.is_dict() && !method_of(v, name)) return Value::undefined("'dict object' has no attribute '" + name + "'");
      return in.get_attr(v, name);
    };
    t["batch"] = [](Interpreter&, const Value& v, CallArgs& args) { return do_batch(v, args); };
    t["capitalize"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("capitalize", args);
      return Value::text(pystr::capitalize(py_str(v)), v.is_markup());
    };
    t["center"] = [](Interpreter&, const Value& v, CallArgs& args) { return do_center(v, args); };
    t["length"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("length", args);
      return Value::integer(py_len(v));
    };
    t["count"] = t["length"];
    t["default"] = [](Interpreter&, const Value& v, CallArgs& args) {
      BoundArgs a("default", args, {"default_value", "boolean"});
      if (v.is_undefined() || (truthy(a.get(1)) && !truthy(v))) return a.get_or(0, Value::string(""));
      return v;
    };
    t["d"] = t["default"];
    t["dictsort"] = [](Interpreter&, const Value& v, CallArgs& args) { return do_dictsort(v, args); };
    t["escape"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("escape", args);
      return markup_escape(v);
    };
    t["e"] = t["escape"];
    t["forceescape"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("forceescape", args);
      return Value::markup(pystr::html_escape(py_str(v)));
    };
    t["first"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("first", args);
      std::vector<Value> items = iterate(v);
      return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
    };
    t["last"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("last", args);
      if (v.is_seq_of(SeqKind::generator)) throw Error("'generator' object is not reversible");
      std::vector<Value> items = iterate(v);
      return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
    };
    t["float"] = [](Interpreter&, const Value& v, CallArgs& args) { return do_float(v, args); };
    t["int"] = [](Interpreter&, const Value& v, CallArgs& args) { return do_int(v, args); };
    t["format"] = [](Interpreter&, const Value& v, CallArgs& args) {
      if (!args.positional.empty() && !args.keyword.empty())
        throw Error("can't handle positional and keyword arguments at the same time");
      if (!args.keyword.empty()) {
        std::vector<std::pair<Value, Value>> kw;
        for (auto& [k, x] : args.keyword) kw.emplace_back(Value::string(k), x);
        return Value::text(percent_format(py_str(v), make_dict(std::move(kw)), v.is_markup()), v.is_markup());
      }
      return Value::text(percent_format(py_str(v), Value::sequence(args.positional, SeqKind::tuple), v.is_markup()),
                         v.is_markup());
    };
    t["indent"] = [](Interpreter&, const Value& v, CallArgs& args) { return do_indent(v, args); };
    t["items"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("items", args);
      if (v.is_undefined()) return generator({});
      if (!v.is_dict()) throw Error("Can only get item pairs from a mapping.");
      std::vector<Value> pairs;
      for (const auto& [k, x] : v.dict().items()) pairs.push_back(Value::sequence({k, x}, SeqKind::tuple));
      return generator(std::move(pairs));
    };
    t["join"] = [](Interpreter& in, const Value& v, CallArgs& args) { return do_join(in, v, args); };
    t["list"] = [=](Interpreter& in, const Value& v, CallArgs& args) {
      no_args("list", args);
      std::vector<Value> items = iterate(v);
      in.charge(items.size());
      return Value::sequence(std::move(items));
    };
    t["lower"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("lower", args);
      return Value::text(pystr::lower(py_str(v)), v.is_markup());
    };
    t["upper"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("upper", args);
      return Value::text(pystr::upper(py_str(v)), v.is_markup());
    };
    t["map"] = [](Interpreter& in, const Value& v, CallArgs& args) { return do_map(in, v, args); };
    t["max"] = [](Interpreter& in, const Value& v, CallArgs& args) { return min_or_max(in, v, args, true, "max"); };
    t["min"] = [](Interpreter& in, const Value& v, CallArgs& args) { return min_or_max(in, v, args, false, "min"); };
    t["reject"] = [](Interpreter& in, const Value& v, CallArgs& args) { return select_or_reject(in, v, args, false, false); };
    t["select"] = [](Interpreter& in, const Value& v, CallArgs& args) { return select_or_reject(in, v, args, true, false); };
    t["rejectattr"] = [](Interpreter& in, const Value& v, CallArgs& args) { return select_or_reject(in, v, args, false, true); };
    t["selectattr"] = [](Interpreter& in, const Value& v, CallArgs& args) { return select_or_reject(in, v, args, true, true); };
    t["replace"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      BoundArgs a("replace", args, {"old", "new", "count"});
      int64_t count = a.has(2) && !a.get(2).is_none() ? int_arg(a.get(2), "count") : -1;
      std::string s = py_str(v), old = py_str(a.get(0)), repl = py_str(a.get(1));
      if (!old.empty()) in.check_size(s.size() / old.size() * repl.size() + s.size());
      else in.check_size((pystr::cp_count(s) + 1) * repl.size() + s.size());
      return Value::string(pystr::replace(s, old, repl, count));
    };
    t["reverse"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("reverse", args);
      return do_reverse(v);
    };
    t["round"] = [](Interpreter&, const Value& v, CallArgs& args) { return do_round(v, args); };
    t["safe"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("safe", args);
      return Value::markup(py_str(v));
    };
    t["sort"] = [](Interpreter& in, const Value& v, CallArgs& args) {
      BoundArgs a("sort", args, {"reverse", "case_sensitive", "attribute"});
      return Value::sequence(sorted(in, v, a.get(2), truthy(a.get(1)), truthy(a.get(0))));
    };
    t["string"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("string", args);
      return Value::text(py_str(v), v.is_markup());
    };
    t["sum"] = [](Interpreter& in, const Value& v, CallArgs& args) { return do_sum(in, v, args); };
    t["title"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("title", args);
      return do_title(v);
    };
    t["tojson"] = [](Interpreter& in, const Value& v, CallArgs& args) { return do_tojson(in, v, args); };
    t["trim"] = [](Interpreter&, const Value& v, CallArgs& args) {
      BoundArgs a("trim", args, {"chars"});
      return Value::text(pystr::strip(py_str(v), opt_str(a.get(0)), true, true), v.is_markup());
    };
    t["unique"] = [](Interpreter& in, const Value& v, CallArgs& args) { return do_unique(in, v, args); };
    t["wordcount"] = [=](Interpreter&, const Value& v, CallArgs& args) {
      no_args("wordcount", args);
      return do_wordcount(v);
    };
    return t;
  }();
  return table;
}

}  // namespace

Value markup_escape(const Value& v) {
  if (v.is_markup()) return v;
  return Value::markup(pystr::html_escape(py_str(v)));
}

bool filter_exists(const std::string& name) { return filters().count(name) != 0; }

Value apply_filter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) throw Error("No filter named '" + name + "' found.");
  uint64_t w = weight_of(input);
  in.charge(16 + w * (name == "sort" || name == "dictsort" ? 32 : 1));  // most filters walk their input once
  return it->second(in, input, args);
}

}  // namespace squeeze::jinja
