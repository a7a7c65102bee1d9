// Methods templates call on values ("text".strip(), message.get("x"), d.items()) and the
// global functions transformers' environment defines. jinja2's immutable sandbox refuses the
// mutating methods (list.append, dict.update, ...): reading one gives an Undefined whose use
// raises the sandbox's SecurityError message, which we reproduce.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <unordered_set>

#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_interpreter.h"
#include "tokenizer/chat_template_pystr.h"
#include "util/error.h"

namespace squeeze::jinja {

namespace {

const std::unordered_set<std::string> kStrMethods = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "replace",
    "upper", "lower", "title", "capitalize", "casefold", "find", "rfind", "index", "rindex", "count",
    "join", "format", "isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace", "islower",
    "isupper", "zfill", "center", "ljust", "rjust", "partition", "rpartition", "removeprefix", "removesuffix"};
const std::unordered_set<std::string> kDictMethods = {"get", "items", "keys", "values", "copy"};
const std::unordered_set<std::string> kDictUnsafe = {"clear", "pop", "popitem", "setdefault", "update"};
const std::unordered_set<std::string> kListMethods = {"index", "count", "copy"};
const std::unordered_set<std::string> kListUnsafe = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};

// Checks that a method taking no arguments got none; returns nothing so that a method can read
// `return no_args(m, args), result;`.
void no_args(const std::string& method, CallArgs& args) { BoundArgs(method, args, {}); }

int64_t need_int(const Value& v, const char* method) {
  if (!v.is_integral()) throw Error(std::string(method) + "(): '" + type_name(v) + "' object cannot be interpreted as an integer");
  return v.as_int();
}

const std::string& need_str(const Value& v, const char* method) {
  if (!v.is_string()) throw Error(std::string(method) + "() argument must be str, not " + type_name(v));
  return v.str();
}

std::optional<std::string> chars_arg(const BoundArgs& a, size_t i, const char* method) {
  if (!a.has(i) || a.get(i).is_none()) return std::nullopt;
  return need_str(a.get(i), method);
}

// s[start:end] by code points, for the optional start/end of find/startswith/count.
std::string cp_range(const std::string& s, const BoundArgs& a, size_t first, int64_t* start_out = nullptr) {
  std::vector<size_t> off = pystr::cp_offsets(s);
  int64_t n = int64_t(off.size()) - 1;
  auto index = [&](size_t i, int64_t dflt) {
    if (!a.has(i) || a.get(i).is_none()) return dflt;
    if (!a.get(i).is_integral()) throw Error("slice indices must be integers or None");
    int64_t x = a.get(i).as_int();
    if (x < 0) x += n;
    return std::clamp<int64_t>(x, 0, n);
  };
  int64_t b = index(first, 0), e = index(first + 1, n);
  if (start_out) *start_out = b;
  if (e <= b) return "";
  return s.substr(off[size_t(b)], off[size_t(e)] - off[size_t(b)]);
}

Value str_list(const std::vector<std::string>& parts) {
  std::vector<Value> out;
  for (const std::string& p : parts) out.push_back(Value::string(p));
  return Value::sequence(std::move(out));
}

bool all_chars(const std::string& s, bool (*pred)(uint32_t)) {
  std::vector<uint32_t> cps = pystr::code_points(s);
  return !cps.empty() && std::all_of(cps.begin(), cps.end(), pred);
}

bool is_digit_cp(uint32_t c) { return c >= '0' && c <= '9'; }
bool is_alpha_cp(uint32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  std::string s;
  pystr::append_utf8(s, c);
  return pystr::is_lower(s) || pystr::is_upper(s);  // cased letters only: uncased scripts are missed
}
bool is_alnum_cp(uint32_t c) { return is_digit_cp(c) || is_alpha_cp(c); }

Value pad_str(const std::string& s, int64_t width, const std::string& fill, char how) {
  if (pystr::cp_count(fill) != 1) throw Error("The fill character must be exactly one character long");
  int64_t len = int64_t(pystr::cp_count(s));
  if (width <= len) return Value::string(s);
  int64_t total = std::min<int64_t>(width, 1000000) - len, left = 0;
  if (how == '>') left = total;
  else if (how == '^') left = total / 2 + (total & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; i++) out += fill;
  out += s;
  for (int64_t i = left; i < total; i++) out += fill;
  return Value::string(out);
}

Value call_str_method(Interpreter& in, const std::string& s, const std::string& m, CallArgs& args) {
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    BoundArgs a(m, args, {"chars"});
    return Value::string(pystr::strip(s, chars_arg(a, 0, m.c_str()), m != "rstrip", m != "lstrip"));
  }
  if (m == "split" || m == "rsplit") {
    BoundArgs a(m, args, {"sep", "maxsplit"});
    int64_t maxsplit = a.has(1) ? need_int(a.get(1), m.c_str()) : -1;
    auto sep = chars_arg(a, 0, m.c_str());
    std::vector<std::string> parts = m == "split" ? pystr::split(s, sep, maxsplit) : pystr::rsplit(s, sep, maxsplit);
    in.charge(parts.size() * 16);
    return str_list(parts);
  }
  if (m == "splitlines") {
    BoundArgs a(m, args, {"keepends"});
    return str_list(pystr::splitlines(s, truthy(a.get(0))));
  }
  if (m == "startswith" || m == "endswith") {
    BoundArgs a(m, args, {"prefix", "start", "end"});
    std::string part = cp_range(s, a, 1);
    std::vector<Value> options;
    if (a.get(0).is_seq_of(SeqKind::tuple)) options = a.get(0).seq().items;
    else if (a.get(0).is_string()) options.push_back(a.get(0));
    else throw Error(m + " first arg must be str or a tuple of str, not " + type_name(a.get(0)));
    for (const Value& o : options) {
      const std::string& p = need_str(o, m.c_str());
      if (p.size() <= part.size() && (m == "startswith" ? part.compare(0, p.size(), p) == 0
                                                        : part.compare(part.size() - p.size(), p.size(), p) == 0))
        return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (m == "replace") {
    BoundArgs a(m, args, {"old", "new", "count"});
    const std::string &old = need_str(a.get(0), "replace"), &repl = need_str(a.get(1), "replace");
    in.check_size(old.empty() ? (pystr::cp_count(s) + 1) * repl.size() + s.size() : s.size() / old.size() * repl.size() + s.size());
    return Value::string(pystr::replace(s, old, repl, a.has(2) ? need_int(a.get(2), "replace") : -1));
  }
  if (m == "upper") return no_args(m, args), Value::string(pystr::upper(s));
  if (m == "lower" || m == "casefold") return no_args(m, args), Value::string(pystr::lower(s));
  if (m == "title") return no_args(m, args), Value::string(pystr::title(s));
  if (m == "capitalize") return no_args(m, args), Value::string(pystr::capitalize(s));
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex" || m == "count") {
    BoundArgs a(m, args, {"sub", "start", "end"});
    const std::string& sub = need_str(a.get(0), m.c_str());
    int64_t start = 0;
    std::string part = cp_range(s, a, 1, &start);
    if (m == "count") return Value::integer(pystr::count(part, sub));
    int64_t at = pystr::find(part, sub, m[0] == 'r');
    if (at < 0 && (m == "index" || m == "rindex")) throw Error("substring not found");
    return Value::integer(at < 0 ? -1 : at + start);
  }
  if (m == "join") {
    BoundArgs a(m, args, {"iterable"});
    std::string out;
    std::vector<Value> items = iterate(a.get(0));
    for (size_t i = 0; i < items.size(); i++) {
      if (!items[i].is_string())
        throw Error(fmt("sequence item %zu: expected str instance, %s found", i, type_name(items[i]).c_str()));
      if (i) out += s;
      out += items[i].str();
      in.check_size(out.size());
    }
    return Value::string(out);
  }
  if (m == "format") return Value::string(str_format(s, args));
  if (m == "isdigit" || m == "isdecimal" || m == "isnumeric") return no_args(m, args), Value::boolean(all_chars(s, is_digit_cp));
  if (m == "isalpha") return no_args(m, args), Value::boolean(all_chars(s, is_alpha_cp));
  if (m == "isalnum") return no_args(m, args), Value::boolean(all_chars(s, is_alnum_cp));
  if (m == "isspace") return no_args(m, args), Value::boolean(all_chars(s, pystr::is_space));
  if (m == "islower") return no_args(m, args), Value::boolean(pystr::is_lower(s));
  if (m == "isupper") return no_args(m, args), Value::boolean(pystr::is_upper(s));
  if (m == "zfill") {
    BoundArgs a(m, args, {"width"});
    int64_t width = need_int(a.get(0), "zfill"), len = int64_t(pystr::cp_count(s));
    if (width <= len) return Value::string(s);
    size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(size_t(std::min<int64_t>(width, 1000000) - len), '0') + s.substr(sign));
  }
  if (m == "center" || m == "ljust" || m == "rjust") {
    BoundArgs a(m, args, {"width", "fillchar"});
    if (!a.get(0).is_integral()) throw Error("integer argument expected, got " + type_name(a.get(0)));
    std::string fill = a.has(1) ? need_str(a.get(1), m.c_str()) : " ";
    return pad_str(s, a.get(0).as_int(), fill, m == "center" ? '^' : m == "ljust" ? '<' : '>');
  }
  if (m == "partition" || m == "rpartition") {
    BoundArgs a(m, args, {"sep"});
    const std::string& sep = need_str(a.get(0), m.c_str());
    if (sep.empty()) throw Error("empty separator");
    size_t at = m == "partition" ? s.find(sep) : s.rfind(sep);
    std::vector<Value> parts;
    if (at == std::string::npos) {
      parts = m == "partition" ? std::vector<Value>{Value::string(s), Value::string(""), Value::string("")}
                               : std::vector<Value>{Value::string(""), Value::string(""), Value::string(s)};
    } else {
      parts = {Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))};
    }
    return Value::sequence(std::move(parts), SeqKind::tuple);
  }
  if (m == "removeprefix" || m == "removesuffix") {
    BoundArgs a(m, args, {"affix"});
    const std::string& p = need_str(a.get(0), m.c_str());
    if (m == "removeprefix" && s.compare(0, p.size(), p) == 0) return Value::string(s.substr(p.size()));
    if (m == "removesuffix" && p.size() <= s.size() && !p.empty() && s.compare(s.size() - p.size(), p.size(), p) == 0)
      return Value::string(s.substr(0, s.size() - p.size()));
    return Value::string(s);
  }
  throw Error("'str' object has no attribute '" + m + "'");
}

// Markup's methods (markupsafe): most return Markup again; replace and the padding methods
// escape the text they insert, join escapes the items and format the arguments.
Value call_markup_method(Interpreter& in, const std::string& s, const std::string& m, CallArgs& args) {
  static const std::unordered_set<std::string> kKeepMarkup = {
      "capitalize", "title", "lower", "upper", "replace", "ljust", "rjust", "lstrip", "rstrip", "center", "strip",
      "zfill", "casefold", "removeprefix", "removesuffix", "partition", "rpartition", "split", "rsplit", "splitlines",
      "join"};
  if (m == "format") return Value::markup(str_format(s, args, true));
  if ((m == "replace" || m == "ljust" || m == "rjust" || m == "center") && args.positional.size() >= 2)
    args.positional[1] = markup_escape(args.positional[1]);
  if (m == "join" && args.positional.size() == 1) {
    std::vector<Value> items = iterate(args.positional[0]);
    for (Value& item : items) item = markup_escape(item);
    args.positional[0] = Value::sequence(std::move(items));
  }
  Value r = call_str_method(in, s, m, args);
  if (!kKeepMarkup.count(m)) return r;
  if (r.is_string()) return Value::markup(r.str());
  std::vector<Value> parts = r.seq().items;  // split & co: a list (or tuple) of str
  for (Value& part : parts) part = Value::markup(part.str());
  return Value::sequence(std::move(parts), r.seq().kind);
}

Value call_dict_method(const Value& obj, const std::string& m, CallArgs& args) {
  const DictData& d = obj.dict();
  if (m == "get") {
    BoundArgs a(m, args, {"key", "default"});
    const Value* v = d.find(a.get(0));
    return v ? *v : a.get_or(1, Value::none());
  }
  no_args(m, args);
  if (m == "copy") return obj;
  std::vector<Value> out;
  for (const auto& [k, v] : d.items()) {
    if (m == "keys") out.push_back(k);
    else if (m == "values") out.push_back(v);
    else out.push_back(Value::sequence({k, v}, SeqKind::tuple));
  }
  return Value::sequence(std::move(out), m == "keys" ? SeqKind::dict_keys : m == "values" ? SeqKind::dict_values : SeqKind::dict_items);
}

Value call_list_method(const Value& obj, const std::string& m, CallArgs& args) {
  const auto& items = obj.seq().items;
  if (m == "copy") return no_args(m, args), obj;
  BoundArgs a(m, args, {"value"});
  if (m == "count") return Value::integer(std::count_if(items.begin(), items.end(), [&](const Value& v) { return py_equal(v, a.get(0)); }));
  for (size_t i = 0; i < items.size(); i++)
    if (py_equal(items[i], a.get(0))) return Value::integer(int64_t(i));
  throw Error(py_repr(a.get(0)) + " is not in " + type_name(obj));
}

// --- globals ---

Value range_fn(Interpreter& in, CallArgs& args) {
  if (!args.keyword.empty()) throw Error("range() takes no keyword arguments");
  std::vector<int64_t> n;
  for (const Value& v : args.positional) {
    if (!v.is_integral()) throw Error("'" + type_name(v) + "' object cannot be interpreted as an integer");
    n.push_back(v.as_int());
  }
  if (n.empty() || n.size() > 3) throw Error(fmt("range expected at most 3 arguments, got %zu", n.size()));
  int64_t start = n.size() == 1 ? 0 : n[0], stop = n.size() == 1 ? n[0] : n[1], step = n.size() == 3 ? n[2] : 1;
  if (step == 0) throw Error("range() arg 3 must not be zero");
  long double count = step > 0 ? std::ceil((static_cast<long double>(stop) - start) / step)
                               : std::ceil((static_cast<long double>(start) - stop) / -static_cast<long double>(step));
  if (count > 100000) throw Error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  std::vector<Value> out;
  for (int64_t i = 0; i < int64_t(std::max<long double>(count, 0)); i++) out.push_back(Value::integer(start + i * step));
  in.charge(out.size());
  return Value::sequence(std::move(out));
}

// dict(*args, **kwargs): a mapping or (key, value) pairs, then keywords.
std::vector<std::pair<Value, Value>> dict_items_of(CallArgs& args, const char* fn) {
  if (args.positional.size() > 1) throw Error(fmt("%s expected at most 1 argument, got %zu", fn, args.positional.size()));
  std::vector<std::pair<Value, Value>> items;
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_dict()) {
      items = src.dict().items();
    } else {
      for (const Value& pair : iterate(src)) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) throw Error(fmt("dictionary update sequence element has length %zu; 2 is required", kv.size()));
        items.emplace_back(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : args.keyword) items.emplace_back(Value::string(k), v);
  return items;
}

Value namespace_fn(Interpreter&, CallArgs& args) {
  auto ns = std::make_shared<NamespaceData>();
  for (auto& [k, v] : dict_items_of(args, "namespace")) {
    if (k.is_string() && !k.str().empty() && k.str()[0] == '_')
      throw Error("Chat templates cannot store underscore-prefixed attributes on a namespace, but got " +
                  py_repr(k) + ". Please rename the attribute.");
    if (holds_namespace(v))
      throw Error("storing a namespace inside a namespace is not supported");
    ns->attrs.set(k, v);
  }
  return Value::ns(std::move(ns));
}

Value strftime_now_fn(Interpreter& in, CallArgs& args) {
  BoundArgs a("strftime_now", args, {"format"});
  std::string f = need_str(a.get(0), "strftime_now");
  // Python's datetime handles %f (microseconds) and, for naive times, %z and %Z itself.
  std::string c_fmt;
  for (size_t i = 0; i < f.size(); i++) {
    if (f[i] == '%' && i + 1 < f.size()) {
      char c = f[i + 1];
      i++;
      if (c == 'f') c_fmt += "000000";
      else if (c == 'z' || c == 'Z') continue;
      else c_fmt += '%', c_fmt += c;
    } else {
      c_fmt += f[i];
    }
  }
  if (c_fmt.empty()) return Value::string("");
  std::tm tm = in.now();
  for (size_t size = 256; size <= (size_t(1) << 20); size *= 4) {
    std::string buf(size, '\0');
    size_t n = std::strftime(buf.data(), size, c_fmt.c_str(), &tm);
    if (n > 0) return Value::string(buf.substr(0, n));
  }
  return Value::string("");
}

}  // namespace

std::optional<Value> method_of(const Value& obj, const std::string& name) {
  bool known = false, unsafe = false;
  if (obj.is_string()) known = kStrMethods.count(name);
  else if (obj.is_dict()) known = kDictMethods.count(name), unsafe = kDictUnsafe.count(name);
  else if (obj.is_seq_of(SeqKind::list)) known = kListMethods.count(name), unsafe = kListUnsafe.count(name);
  else if (obj.is_seq_of(SeqKind::tuple)) known = name == "index" || name == "count";
  if (unsafe)
    return Value::undefined("access to attribute '" + name + "' of '" + type_name(obj) + "' object is unsafe.");
  if (!known) return std::nullopt;
  return Value::callable(name, [obj, name](Interpreter& in, CallArgs& args) {
    in.charge(16 + weight_of(obj));
    if (obj.is_string())
      return obj.is_markup() ? call_markup_method(in, obj.str(), name, args) : call_str_method(in, obj.str(), name, args);
    if (obj.is_dict()) return call_dict_method(obj, name, args);
    return call_list_method(obj, name, args);
  });
}

std::optional<Value> global_value(const std::string& name) {
  static const std::unordered_map<std::string, Value> globals = {
      {"range", Value::callable("range", range_fn)},
      {"namespace", Value::callable("namespace", namespace_fn)},
      {"dict", Value::callable("dict", [](Interpreter&, CallArgs& args) { return make_dict(dict_items_of(args, "dict")); })},
      {"raise_exception", Value::callable("raise_exception", [](Interpreter&, CallArgs& args) -> Value {
         BoundArgs a("raise_exception", args, {"message"});
         throw TemplateRaised(py_str(a.get(0)));
       })},
      {"strftime_now", Value::callable("strftime_now", strftime_now_fn)},
  };
  auto it = globals.find(name);
  if (it == globals.end()) return std::nullopt;
  return it->second;
}

}  // namespace squeeze::jinja
