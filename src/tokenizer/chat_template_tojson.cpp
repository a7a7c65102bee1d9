// tojson as transformers defines it: json.dumps(x, ensure_ascii=False, indent=indent,
// separators=separators, sort_keys=sort_keys). Chat templates print tool schemas and tool-call
// arguments with it, so its spacing, key order and escaping must be Python's exactly.
#include <algorithm>
#include <cmath>

#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_pystr.h"
#include "util/error.h"

namespace squeeze::jinja {

namespace {

[[noreturn]] void not_serializable(const Value& v) {
  throw Error("Object of type " + type_name(v) + " is not JSON serializable");
}

std::string float_json(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return py_float_repr(d);
}

// A dict key as json.dumps writes it: str as is; numbers, bools and None converted.
std::string key_json(const Value& k, const JsonFormat& f) {
  switch (k.kind()) {
    case Kind::string: return pystr::json_quote(k.str(), f.ensure_ascii);
    case Kind::floating: return "\"" + float_json(k.as_float()) + "\"";
    case Kind::boolean: return k.as_bool() ? "\"true\"" : "\"false\"";
    case Kind::integer: return "\"" + std::to_string(k.as_int()) + "\"";
    case Kind::none: return "\"null\"";
    default: throw Error("keys must be str, int, float, bool or None, not " + type_name(k));
  }
}

class Encoder {
 public:
  explicit Encoder(const JsonFormat& f) : f_(f) {}

  void encode(const Value& v, int level) {
    switch (v.kind()) {
      case Kind::none: out += "null"; return;
      case Kind::boolean: out += v.as_bool() ? "true" : "false"; return;
      case Kind::integer: out += std::to_string(v.as_int()); return;
      case Kind::floating: out += float_json(v.as_float()); return;
      case Kind::string: out += pystr::json_quote(v.str(), f_.ensure_ascii); return;
      case Kind::sequence:
        if (!v.is_indexable_seq()) not_serializable(v);
        encode_list(v.seq().items, level);
        return;
      case Kind::dict: encode_dict(v.dict(), level); return;
      default: not_serializable(v);
    }
  }

  std::string out;

 private:
  const JsonFormat& f_;

  // Python: with an indent, items go on their own lines and separators lose nothing (the
  // caller's item separator is kept, trailing space included).
  std::string newline_indent(int level) const {
    std::string s = "\n";
    for (int i = 0; i < level; i++) s += *f_.indent;
    return s;
  }

  void encode_list(const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    std::string sep = f_.item_sep;
    if (f_.indent) {
      sep += newline_indent(level + 1);
      out += newline_indent(level + 1);
    }
    for (size_t i = 0; i < items.size(); i++) {
      if (i) out += sep;
      encode(items[i], level + 1);
    }
    if (f_.indent) out += newline_indent(level);
    out += ']';
  }

  void encode_dict(const DictData& d, int level) {
    if (d.size() == 0) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> items;
    for (const auto& item : d.items()) items.push_back(&item);
    if (f_.sort_keys)
      std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return py_compare(a->first, b->first) < 0; });
    out += '{';
    std::string sep = f_.item_sep;
    if (f_.indent) {
      sep += newline_indent(level + 1);
      out += newline_indent(level + 1);
    }
    for (size_t i = 0; i < items.size(); i++) {
      if (i) out += sep;
      out += key_json(items[i]->first, f_);
      out += f_.key_sep;
      encode(items[i]->second, level + 1);
    }
    if (f_.indent) out += newline_indent(level);
    out += '}';
  }
};

}  // namespace

std::string to_json(const Value& v, const JsonFormat& format) {
  Encoder e(format);
  e.encode(v, 0);
  return std::move(e.out);
}

}  // namespace squeeze::jinja
