#pragma once
// What a chat template can call: filters (x|trim), tests (x is defined), methods of strings,
// dicts and lists ("a,b".split(",")), the global functions transformers provides (range,
// namespace, dict, raise_exception, strftime_now) and the tojson serializer. Each follows the
// Python function jinja2 or transformers would run, down to the text it produces.
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/chat_template_value.h"

namespace squeeze::jinja {

// Binds call arguments to parameter names as Python does (positional first, then keywords),
// throwing Error for too many arguments or an unknown keyword.
class BoundArgs {
 public:
  BoundArgs(const std::string& function, CallArgs& args, std::initializer_list<const char*> params);
  bool has(size_t i) const { return bound_[i] != nullptr; }
  const Value& get(size_t i) const;  // Undefined when not given
  Value get_or(size_t i, Value fallback) const { return has(i) ? *bound_[i] : std::move(fallback); }

 private:
  std::vector<const Value*> bound_;
};

Value apply_filter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);
bool apply_test(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);
bool filter_exists(const std::string& name);
bool test_exists(const std::string& name);

// obj.name when obj is a str, list, tuple or dict: a bound method, the Undefined jinja2's
// sandbox gives for mutating methods (calling it fails), or nullopt when there is no such method.
std::optional<Value> method_of(const Value& obj, const std::string& name);

// The globals transformers adds to jinja2's (range, dict, namespace, raise_exception,
// strftime_now); nullopt for other names.
std::optional<Value> global_value(const std::string& name);

// The message raise_exception() was given: reported to the caller verbatim.
struct TemplateRaised : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// markupsafe.escape(v): Markup stays as it is, anything else becomes str(v) HTML-escaped.
Value markup_escape(const Value& v);

// Python's "fmt % args" (printf-style) and "fmt".format(*args, **kwargs). escape_args: the
// format string is Markup, which escapes what it interpolates.
std::string percent_format(const std::string& fmt, const Value& args, bool escape_args = false);
std::string str_format(const std::string& fmt, const CallArgs& args, bool escape_args = false);

// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson calls it.
struct JsonFormat {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // nullopt: one line
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonFormat& format);

}  // namespace squeeze::jinja
