#include "tokenizer/chat_template.h"

#include <new>
#include <nlohmann/json.hpp>

#include "tokenizer/chat_template_interpreter.h"
#include "tokenizer/chat_template_lexer.h"
#include "tokenizer/chat_template_parser.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace squeeze {

struct ChatTemplate::Program {
  jinja::Body body;
};

namespace {

// JSON -> template values. Strings are made valid UTF-8 (the template's string functions count
// code points), and nesting is bounded before recursing so that a deep document cannot
// overflow the stack.
template <class Json>
jinja::Value to_value(const Json& j, int depth) {
  using jinja::Value;
  if (depth > jinja::kMaxDepth) throw Error(fmt("chat template context nests more than %d levels deep", jinja::kMaxDepth));
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      return u <= uint64_t(INT64_MAX) ? Value::integer(int64_t(u)) : Value::floating(double(u));
    }
    case nlohmann::json::value_t::number_float: return Value::floating(j.template get<double>());
    case nlohmann::json::value_t::string: return Value::string(tok::utf8_sanitize(j.template get_ref<const std::string&>()));
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(to_value(item, depth + 1));
      return Value::sequence(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<Value, Value>> items;
      for (auto it = j.begin(); it != j.end(); ++it)
        items.emplace_back(Value::string(tok::utf8_sanitize(it.key())), to_value(it.value(), depth + 1));
      return jinja::make_dict(std::move(items));
    }
    default: throw Error("chat template context holds a value JSON cannot express (binary or discarded)");
  }
}

template <class Json>
std::string render_json(const jinja::Body& body, const Json& context, const ChatTemplateOptions& options) {
  if (!context.is_object()) throw Error("chat template context must be a JSON object");
  jinja::Value vars = to_value(context, 0);
  std::tm now{};
  if (options.now) {
    now = *options.now;
  } else {
    std::time_t t = std::time(nullptr);
    localtime_r(&t, &now);
  }
  jinja::RenderLimits limits;
  limits.max_output_bytes = options.max_output_bytes;
  limits.max_work = options.max_work;
  jinja::Interpreter interpreter(now, limits);
  try {
    return interpreter.render(body, vars.dict());
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {  // a library error we did not anticipate: still an input error
    throw Error(std::string("chat template error: ") + e.what());
  }
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source) : program_(std::make_unique<Program>()) {
  if (!tok::utf8_is_valid(source)) throw Error("chat template is not valid UTF-8");
  program_->body = jinja::parse_template(jinja::lex_template(source));
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const nlohmann::ordered_json& context, const ChatTemplateOptions& options) const {
  return render_json(program_->body, context, options);
}

std::string ChatTemplate::render(const nlohmann::json& context, const ChatTemplateOptions& options) const {
  return render_json(program_->body, context, options);
}

}  // namespace squeeze
