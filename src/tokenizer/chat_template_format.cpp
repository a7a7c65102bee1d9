// Python's two string formatting mini-languages as templates use them: "%s: %d" % (a, b)
// (also behind the |format filter) and "{}-{name}".format(a, name=b). Conversions and flags
// cover what text templates need: s r d i f e g x o c with width, precision, alignment, sign
// and zero padding.
#include <cmath>
#include <cstdio>
#include <optional>

#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_pystr.h"
#include "util/error.h"

namespace squeeze::jinja {

namespace {

int64_t int_for_format(const Value& v, char conv) {
  if (v.is_integral()) return v.as_int();
  if (v.is_float()) {
    double d = v.as_float();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) throw Error("cannot convert float to integer");
    return int64_t(d);
  }
  throw Error(fmt("%%%c format: a real number is required, not %s", conv, type_name(v).c_str()));
}

double float_for_format(const Value& v, char conv) {
  if (v.is_number()) return v.as_float();
  throw Error(fmt("must be real number, not %s", type_name(v).c_str()));
}

// Pads s (counted in code points) to width; left: pad on the right.
std::string pad(const std::string& s, size_t width, bool left, char fill = ' ', char align = 0) {
  size_t n = pystr::cp_count(s);
  if (n >= width) return s;
  size_t total = width - n;
  if (align == '^') {
    size_t before = total / 2;
    return std::string(before, fill) + s + std::string(total - before, fill);
  }
  return left ? s + std::string(total, fill) : std::string(total, fill) + s;
}

std::string truncate_cp(const std::string& s, size_t n) {
  std::vector<size_t> off = pystr::cp_offsets(s);
  return n + 1 >= off.size() ? s : s.substr(0, off[n]);
}

// snprintf into a string of the exact size (widths reach 10^6, precisions 300).
template <class T>
std::string c_snprintf(const std::string& spec, T v) {
  int n = std::snprintf(nullptr, 0, spec.c_str(), v);
  if (n < 0) throw Error("bad format specifier");
  std::string out(size_t(n) + 1, '\0');
  std::snprintf(out.data(), out.size(), spec.c_str(), v);
  out.resize(size_t(n));
  return out;
}

std::string c_format(const std::string& spec, int64_t i) {
  return c_snprintf(spec.substr(0, spec.size() - 1) + "ll" + spec.back(), static_cast<long long>(i));
}

std::string c_format(const std::string& spec, double d) { return c_snprintf(spec, d); }

}  // namespace

std::string percent_format(const std::string& f, const Value& args, bool escape_args) {
  std::vector<Value> values;
  const DictData* mapping = nullptr;
  if (args.is_seq_of(SeqKind::tuple)) values = args.seq().items;
  else if (args.is_dict()) mapping = &args.dict();
  else values.push_back(args);
  if (mapping) values.clear();
  size_t next = 0;
  auto take = [&]() -> const Value& {
    if (next >= values.size()) throw Error("not enough arguments for format string");
    return values[next++];
  };
  std::string out;
  for (size_t i = 0; i < f.size(); i++) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    if (++i >= f.size()) throw Error("incomplete format");
    const Value* keyed = nullptr;
    if (f[i] == '(') {
      size_t close = f.find(')', i);
      if (close == std::string::npos) throw Error("incomplete format key");
      if (!mapping) throw Error("format requires a mapping");
      keyed = mapping->find(Value::string(f.substr(i + 1, close - i - 1)));
      if (!keyed) throw Error("KeyError: " + pystr::repr(f.substr(i + 1, close - i - 1)));
      i = close + 1;
    }
    std::string flags;
    while (i < f.size() && std::string_view("-+ #0").find(f[i]) != std::string_view::npos) flags += f[i++];
    auto number = [&]() -> std::optional<int64_t> {
      if (i < f.size() && f[i] == '*') {
        i++;
        return int_for_format(take(), '*');
      }
      size_t start = i;
      while (i < f.size() && f[i] >= '0' && f[i] <= '9') i++;
      if (i == start) return std::nullopt;
      return std::stoll(f.substr(start, std::min<size_t>(i - start, 9)));
    };
    std::optional<int64_t> width = number(), precision;
    if (i < f.size() && f[i] == '.') {
      i++;
      precision = number().value_or(0);
    }
    while (i < f.size() && (f[i] == 'h' || f[i] == 'l' || f[i] == 'L')) i++;
    if (i >= f.size()) throw Error("incomplete format");
    char conv = f[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    const Value& v = keyed ? *keyed : take();
    bool left = flags.find('-') != std::string::npos;
    size_t w = size_t(std::max<int64_t>(0, width.value_or(0)));
    if (w > 1000000) throw Error("format width too large");
    std::string spec = "%" + flags + (width ? std::to_string(w) : "") + (precision ? "." + std::to_string(std::min<int64_t>(*precision, 300)) : "");
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = conv == 's' ? py_str(v) : py_repr(v);
        if (escape_args && !(conv == 's' && v.is_markup())) s = pystr::html_escape(s);
        if (precision) s = truncate_cp(s, size_t(std::max<int64_t>(0, *precision)));
        out += pad(s, w, left);
        break;
      }
      case 'd':
      case 'i':
      case 'u': out += c_format(spec + "d", int_for_format(v, conv)); break;
      case 'x':
      case 'X':
      case 'o': out += c_format(spec + conv, int_for_format(v, conv)); break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': out += c_format(spec + conv, float_for_format(v, conv)); break;
      case 'c': {
        std::string ch;
        if (v.is_string() && pystr::cp_count(v.str()) == 1) ch = v.str();
        else if (v.is_integral() && v.as_int() >= 0 && v.as_int() <= 0x10FFFF) pystr::append_utf8(ch, uint32_t(v.as_int()));
        else throw Error("%c requires int or char");
        out += pad(ch, w, left);
        break;
      }
      default: throw Error(fmt("unsupported format character '%c'", conv));
    }
  }
  // Python skips this check when the argument supports [] (a dict or a list), not only for dicts
  bool subscriptable = mapping || args.is_seq_of(SeqKind::list);
  if (!subscriptable && next < values.size()) throw Error("not all arguments converted during string formatting");
  return out;
}

namespace {

// format(value, spec) for the common part of Python's format-spec mini-language:
// [[fill]align][sign][0][width][.precision][type].
std::string apply_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return py_str(v);
  size_t i = 0;
  char fill = ' ', align = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (spec.size() >= 2 && is_align(spec[1])) {
    fill = spec[0];
    align = spec[1];
    i = 2;
  } else if (is_align(spec[0])) {
    align = spec[0];
    i = 1;
  }
  char sign = 0;
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
  bool zero = false;
  if (i < spec.size() && spec[i] == '0') {
    zero = true;
    i++;
  }
  size_t width = 0;
  while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9' && width < 100000) width = width * 10 + size_t(spec[i++] - '0');
  std::optional<int> precision;
  if (i < spec.size() && spec[i] == '.') {
    int p = 0;
    i++;
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9' && p < 300) p = p * 10 + (spec[i++] - '0');
    precision = p;
  }
  char type = i < spec.size() ? spec[i++] : 0;
  if (i != spec.size()) throw Error("Invalid format specifier '" + spec + "'");
  std::string body;
  bool numeric = false;
  if (v.is_string() && (type == 0 || type == 's')) {
    body = precision ? truncate_cp(v.str(), size_t(*precision)) : v.str();
  } else if (v.is_integral() && (type == 0 || type == 'd' || type == 'x' || type == 'X' || type == 'o' || type == 'b')) {
    numeric = true;
    int64_t n = v.as_int();
    if (type == 'b') {
      uint64_t u = n < 0 ? uint64_t(-(n + 1)) + 1 : uint64_t(n);
      do body.insert(body.begin(), char('0' + (u & 1))); while (u >>= 1);
      if (n < 0) body.insert(body.begin(), '-');
    } else {
      body = c_format(std::string("%") + (type == 0 ? 'd' : type), n);
    }
  } else if (v.is_number() && std::string_view("fFeEgG%").find(type) != std::string_view::npos && type) {
    numeric = true;
    double d = v.as_float();
    if (type == '%') body = c_format("%." + std::to_string(precision.value_or(6)) + "f", d * 100) + "%";
    else body = c_format("%." + std::to_string(precision.value_or(6)) + type, d);
  } else if (v.is_float() && type == 0 && !precision) {
    numeric = true;
    body = py_float_repr(v.as_float());
  } else {
    throw Error("unsupported format specifier '" + spec + "' for " + type_name(v));
  }
  if (numeric && (sign == '+' || sign == ' ') && !body.empty() && body[0] != '-') body.insert(body.begin(), sign);
  if (zero && !align) {
    fill = '0';
    align = '=';
  }
  if (!align) align = numeric ? '>' : '<';
  if (align == '=') {  // padding goes after the sign
    size_t n = pystr::cp_count(body);
    if (n >= width) return body;
    size_t at = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
    return body.substr(0, at) + std::string(width - n, fill) + body.substr(at);
  }
  return pad(body, width, align == '<', fill, align);
}

}  // namespace

std::string str_format(const std::string& f, const CallArgs& args, bool escape_args) {
  std::string out;
  int auto_index = 0;
  bool used_auto = false, used_manual = false;
  for (size_t i = 0; i < f.size(); i++) {
    char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') i++;
      else throw Error("Single '}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '{') {
      out += '{';
      i++;
      continue;
    }
    size_t close = f.find('}', i);
    if (close == std::string::npos) throw Error("expected '}' before end of string");
    std::string field = f.substr(i + 1, close - i - 1);
    i = close;
    std::string spec;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    char conversion = 0;
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) throw Error("expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    const Value* v = nullptr;
    if (field.empty()) {
      if (used_manual) throw Error("cannot switch from manual field specification to automatic field numbering");
      used_auto = true;
      size_t k = size_t(auto_index++);
      if (k >= args.positional.size()) throw Error(fmt("Replacement index %zu out of range for positional args tuple", k));
      v = &args.positional[k];
    } else if (field.find_first_not_of("0123456789") == std::string::npos) {
      if (used_auto) throw Error("cannot switch from automatic field numbering to manual field specification");
      used_manual = true;
      size_t k = std::stoul(field.substr(0, 9));
      if (k >= args.positional.size()) throw Error(fmt("Replacement index %zu out of range for positional args tuple", k));
      v = &args.positional[k];
    } else {
      for (const auto& [key, value] : args.keyword)
        if (key == field) v = &value;
      if (!v) throw Error("KeyError: " + pystr::repr(field));
    }
    Value shown = *v;
    if (conversion == 'r' || conversion == 'a') shown = Value::string(py_repr(*v));
    else if (conversion == 's') shown = Value::string(py_str(*v));
    else if (conversion) throw Error(fmt("Unknown conversion specifier %c", conversion));
    if (escape_args) shown = markup_escape(shown);
    out += apply_spec(shown, spec);
  }
  return out;
}

}  // namespace squeeze::jinja
