#include "engine/chat_prompt.h"

#include <fstream>
#include <sstream>

#include "util/error.h"

namespace squeeze {

using nlohmann::json;

namespace {

std::string template_of(const ModelFile& file) {
  if (const GGUFFile* g = file.gguf()) {
    if (auto t = g->get_string("tokenizer.chat_template")) return *t;
    throw Error(fmt("%s has no chat template (GGUF key tokenizer.chat_template)", file.path().c_str()));
  }
  const std::string path = file.path() + "/tokenizer_config.json";
  std::ifstream in(path);
  if (!in) throw Error(fmt("%s: no tokenizer_config.json, so no chat template", file.path().c_str()));
  std::stringstream ss;
  ss << in.rdbuf();
  json cfg;
  try {
    cfg = json::parse(ss.str());
  } catch (const json::exception& e) {
    throw Error(fmt("%s: %s", path.c_str(), e.what()));
  }
  if (cfg.is_object() && cfg.contains("chat_template")) {
    const json& t = cfg["chat_template"];
    if (t.is_string()) return t.get<std::string>();
    if (t.is_array())  // named variants: the "default" one
      for (const json& v : t)
        if (v.is_object() && v.value("name", "") == "default" && v.contains("template") && v["template"].is_string())
          return v["template"].get<std::string>();
  }
  throw Error(fmt("%s has no chat_template", path.c_str()));
}

}  // namespace

ChatPrompt::ChatPrompt(const ModelFile& file, const Tokenizer& tok) : ChatPrompt(template_of(file), tok) {}

ChatPrompt::ChatPrompt(std::string source, const Tokenizer& tok) : tok_(tok), source_(std::move(source)) {
  tmpl_ = std::make_unique<ChatTemplate>(source_);
  if (tok.bos_id() >= 0) bos_ = tok.token_to_piece(tok.bos_id(), true);
  if (tok.eos_id() >= 0) eos_ = tok.token_to_piece(tok.eos_id(), true);
}

std::string ChatPrompt::render(const nlohmann::ordered_json& messages, bool add_generation_prompt) const {
  if (!messages.is_array() || messages.empty()) throw Error("'messages' must be a non-empty array");
  for (const auto& m : messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw Error("every message needs a string 'role'");
    if (m.contains("content") && !m["content"].is_null() && !m["content"].is_string() && !m["content"].is_array())
      throw Error("a message's 'content' must be a string or a list of parts");
  }
  nlohmann::ordered_json ctx = {{"messages", messages}, {"add_generation_prompt", add_generation_prompt},
                                {"bos_token", bos_}, {"eos_token", eos_}};
  return tmpl_->render(ctx);
}

std::vector<int32_t> ChatPrompt::encode(const nlohmann::ordered_json& messages, bool add_generation_prompt) const {
  return tok_.encode(render(messages, add_generation_prompt), false, true);
}

}  // namespace squeeze
