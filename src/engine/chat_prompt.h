#pragma once
// Chat messages -> prompt tokens, with the model's own chat template (GGUF metadata
// tokenizer.chat_template, or chat_template in a Hugging Face folder's tokenizer_config.json),
// rendered like transformers' apply_chat_template. Shared by `squeeze chat` and the server.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace squeeze {

class ChatPrompt {
 public:
  // Throws Error when the model carries no chat template or it does not parse.
  ChatPrompt(const ModelFile& file, const Tokenizer& tok);
  // An explicit template (a --chat-template-file), for models that ship none.
  ChatPrompt(std::string source, const Tokenizer& tok);

  // messages: [{"role": ..., "content": string or [{"type": "text", "text": ...}]}, ...] (ordered
  // JSON: templates see dict keys in the client's order). Throws Error for a malformed list or
  // an error raised by the template.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt = true) const;
  // The rendered prompt as tokens (special-token text parsed; no BOS added beyond the template's).
  std::vector<int32_t> encode(const nlohmann::ordered_json& messages, bool add_generation_prompt = true) const;

  const std::string& source() const { return source_; }

 private:
  const Tokenizer& tok_;
  std::string source_;
  std::unique_ptr<ChatTemplate> tmpl_;
  std::string bos_, eos_;
};

}  // namespace squeeze
