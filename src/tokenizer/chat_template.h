#pragma once
// Chat templates: the Jinja programs Hugging Face models ship (tokenizer_config.json's
// "chat_template", GGUF's tokenizer.chat_template) to turn a conversation into prompt text.
// ChatTemplate renders them byte for byte as transformers does: jinja2's
// ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and loop controls, plus
// transformers' raise_exception(), strftime_now(), namespace(), dict() and tojson.
//
// Templates come from model files, so they are untrusted: malformed ones throw Error, and
// rendering runs under a work budget, an output cap and a depth bound instead of hanging or
// crashing. Supported: the statements if/elif/else, for (with else, loop filters, loop.*,
// break/continue), set (also ns.attr = and {% set x %}...{% endset %}), macro, with, filter,
// raw, print and transformers' {% generation %}; jinja2's expressions, filters and tests, the
// str/dict/list methods templates call, Markup from |safe, Undefined. Not supported:
// extends/block/include/import, {% call %}, recursive loops and *args/**kwargs at call sites
// (syntax errors); integers beyond 64 bits (Python would grow them; we report an overflow);
// loop.changed, the lipsum/cycler/joiner globals and Python object attributes such as
// int.real (Undefined, like any missing attribute). range() gives a list.
#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace squeeze {

struct ChatTemplateOptions {
  // The local time strftime_now() formats; unset: the current time.
  std::optional<std::tm> now;
  size_t max_output_bytes = size_t(64) << 20;  // also the largest string a template may build
  uint64_t max_work = uint64_t(1) << 28;       // about 0.5 s of the most expensive template code
};

class ChatTemplate {
 public:
  // Parses a template; throws Error("chat template syntax error at line L, column C: ...").
  explicit ChatTemplate(std::string_view source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders with the members of a JSON object as the template's variables, usually
  // {"messages": [...], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
  //  "tools": [...] or null, ...}. Use ordered_json: templates iterate dicts and print them with
  // tojson in insertion order, and plain nlohmann::json has sorted its keys. Throws Error for
  // runtime errors ("chat template error at line L: ..."); a template's raise_exception(msg)
  // throws Error(msg) with the message exactly as given.
  std::string render(const nlohmann::ordered_json& context, const ChatTemplateOptions& options = {}) const;
  std::string render(const nlohmann::json& context, const ChatTemplateOptions& options = {}) const;

 private:
  struct Program;
  std::unique_ptr<Program> program_;
};

}  // namespace squeeze
