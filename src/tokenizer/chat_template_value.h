#pragma once
// The values a chat template computes with. They model the Python objects jinja2 hands a
// template (str, int, float, bool, None, list, tuple, dict, jinja2's Undefined and Namespace),
// because the output must match jinja2 byte for byte: printing, comparing and truth-testing all
// follow Python's rules, and dicts keep insertion order.
//
// Lists and dicts are immutable once built (transformers renders in jinja2's
// ImmutableSandboxedEnvironment, where list.append and dict.update are refused), so they are
// shared by pointer and copying a Value is cheap. Namespaces are the one mutable object.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace squeeze::jinja {

class Value;
class Interpreter;
struct CallArgs;
struct SeqData;
class DictData;
struct NamespaceData;
struct Callable;

// Python sequence types a template meets: they print, compare and index differently.
// generator: what jinja2's select/map/reject filters return (always true, no len(), no [i]);
// dict_*: what dict.keys()/values()/items() return (len() and iteration but no [i]).
enum class SeqKind : uint8_t { list, tuple, generator, dict_keys, dict_values, dict_items };

enum class Kind : uint8_t { undefined, none, boolean, integer, floating, string, sequence, dict, ns, callable };

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string message) { return Value(Kind::undefined, std::move(message)); }
  static Value none() { return Value(Kind::none, std::monostate{}); }
  static Value boolean(bool b) { return Value(Kind::boolean, b); }
  static Value integer(int64_t i) { return Value(Kind::integer, i); }
  static Value floating(double f) { return Value(Kind::floating, f); }
  static Value string(std::string s) { return Value(Kind::string, std::move(s)); }
  // markupsafe's Markup: a str that jinja2 considers HTML-safe (|safe, |escape). Adding a plain
  // str to it escapes that str, and its string methods return Markup again.
  static Value markup(std::string s) {
    Value v(Kind::string, std::move(s));
    v.markup_ = true;
    return v;
  }
  // A str result of an operation on `like`: Markup where `like` is Markup.
  static Value text(std::string s, bool as_markup) { return as_markup ? markup(std::move(s)) : string(std::move(s)); }
  // Throws Error when the items nest deeper than kMaxDepth.
  static Value sequence(std::vector<Value> items, SeqKind kind = SeqKind::list);
  static Value dict(std::shared_ptr<const DictData> d) { return Value(Kind::dict, std::move(d)); }
  static Value ns(std::shared_ptr<NamespaceData> n) { return Value(Kind::ns, std::move(n)); }
  static Value callable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_int() const { return kind_ == Kind::integer; }
  bool is_float() const { return kind_ == Kind::floating; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_markup() const { return markup_; }
  bool is_seq() const { return kind_ == Kind::sequence; }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_ns() const { return kind_ == Kind::ns; }
  bool is_callable() const { return kind_ == Kind::callable; }
  bool is_integral() const { return is_int() || is_bool(); }  // Python: bool is an int
  bool is_number() const { return is_integral() || is_float(); }
  bool is_seq_of(SeqKind k) const;
  bool is_indexable_seq() const;  // list or tuple: what supports len(), [i] and slicing

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return is_bool() ? int64_t(as_bool()) : std::get<int64_t>(data_); }
  double as_float() const { return is_float() ? std::get<double>(data_) : double(as_int()); }
  const std::string& str() const { return std::get<std::string>(data_); }
  const std::string& undefined_message() const { return std::get<std::string>(data_); }
  const SeqData& seq() const;
  const DictData& dict() const;
  NamespaceData& ns() const;
  const Callable& callable() const;
  // Identity of shared objects (Python `is`), for namespaces.
  const void* identity() const;

 private:
  using Data = std::variant<std::monostate, bool, int64_t, double, std::string,
                            std::shared_ptr<const SeqData>, std::shared_ptr<const DictData>,
                            std::shared_ptr<NamespaceData>, std::shared_ptr<const Callable>>;
  template <class T>
  Value(Kind k, T&& d) : kind_(k), data_(std::forward<T>(d)) {}

  Kind kind_ = Kind::undefined;
  bool markup_ = false;
  Data data_ = std::string();
};

// Arguments of a call written f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct SeqData {
  std::vector<Value> items;
  SeqKind kind = SeqKind::list;
  int depth = 1;  // nesting depth, bounded so that printing and comparing cannot overflow the stack
  uint64_t weight = 1;  // see weight_of
};

// An insertion-ordered dict keyed by any hashable Value (Python: 1, 1.0 and True are one key).
class DictData {
 public:
  const Value* find(const Value& key) const;  // throws Error for unhashable keys
  void set(const Value& key, Value value);    // replaces in place or appends
  size_t size() const { return items_.size(); }
  const std::vector<std::pair<Value, Value>>& items() const { return items_; }
  int depth() const { return depth_; }
  uint64_t weight() const { return weight_; }

 private:
  std::vector<std::pair<Value, Value>> items_;
  std::unordered_map<std::string, size_t> index_;  // hash_key(key) -> position in items_
  int depth_ = 1;
  uint64_t weight_ = 1;
};

// jinja2's namespace(): attributes that {% set ns.attr = ... %} may change from inside loops.
// Loop objects (loop.index, ...) are read-only namespaces.
struct NamespaceData {
  DictData attrs;
  bool is_loop = false;
};

struct Callable {
  std::string name;  // for messages and repr
  std::function<Value(Interpreter&, CallArgs&)> fn;
};

inline const SeqData& Value::seq() const { return *std::get<std::shared_ptr<const SeqData>>(data_); }
inline const DictData& Value::dict() const { return *std::get<std::shared_ptr<const DictData>>(data_); }
inline NamespaceData& Value::ns() const { return *std::get<std::shared_ptr<NamespaceData>>(data_); }
inline const Callable& Value::callable() const { return *std::get<std::shared_ptr<const Callable>>(data_); }
inline bool Value::is_seq_of(SeqKind k) const { return is_seq() && seq().kind == k; }
inline bool Value::is_indexable_seq() const {
  return is_seq() && (seq().kind == SeqKind::list || seq().kind == SeqKind::tuple);
}

// Containers may nest at most this deep: printing, comparing and serializing recurse.
constexpr int kMaxDepth = 200;
int depth_of(const Value& v);
// How much work it is to walk v (compare, serialize, search it): 1 per element at any depth
// plus a string's bytes / 16. Kept with each container, so the interpreter can charge
// operations on big values to its work budget in constant time.
uint64_t weight_of(const Value& v);

// Whether v is or contains a namespace. Namespaces may not hold namespaces, which rules out
// reference cycles and keeps nesting bounded.
bool holds_namespace(const Value& v);

// Builds a dict from key/value pairs in order (later duplicates replace earlier ones).
Value make_dict(std::vector<std::pair<Value, Value>> items);

// What using an Undefined for anything but printing or testing raises (jinja2's UndefinedError).
[[noreturn]] void throw_undefined(const Value& v);

// Python semantics.
bool truthy(const Value& v);
bool py_equal(const Value& a, const Value& b);
// -1, 0 or 1 for a < b, a == b, a > b; throws Error when Python's < would raise TypeError.
int py_compare(const Value& a, const Value& b);
std::string py_str(const Value& v);   // str(v); Undefined prints as ""
std::string py_repr(const Value& v);  // repr(v)
std::string py_float_repr(double d);  // repr(float): shortest round-trip digits
std::string type_name(const Value& v);  // type(v).__name__
// jinja2's object_type_repr, used in "'dict object' has no attribute 'x'".
std::string object_type_repr(const Value& v);
// Key for DictData's index; throws Error for unhashable values (list, dict, ...).
std::string hash_key(const Value& v);

// Elements of an iterable as Python's iter() yields them: a str's characters, a dict's keys,
// nothing for Undefined. Throws Error for values that are not iterable.
std::vector<Value> iterate(const Value& v);
// len(v); throws Error where Python's len() would raise.
int64_t py_len(const Value& v);

}  // namespace squeeze::jinja
