#pragma once
// The OpenAI request and response formats: parsing and validation of /v1/completions bodies into
// GenerationRequests, and the JSON of responses, stream chunks and errors.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/chat_prompt.h"
#include "server/generation_service.h"
#include "tokenizer/tokenizer.h"

namespace squeeze {

// A client error: the HTTP status and the OpenAI error object's message and param.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string param = "")
      : std::runtime_error(message), status(status), param(std::move(param)) {}
  int status;
  std::string param;
};

struct CompletionRequest {
  GenerationRequest gen;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;
  std::string prompt_text;     // for echo
};

// Throws ApiError for malformed or unsupported requests.
CompletionRequest parse_completion_request(const std::string& body, const Tokenizer& tok, const std::string& model_name,
                                           int32_t n_ctx, int32_t n_vocab);

// /v1/chat/completions: the messages rendered with the model's chat template (chat may be null
// when the model has none: a 400 then).
CompletionRequest parse_chat_request(const std::string& body, const ChatPrompt* chat, const std::string& model_name,
                                     int32_t n_ctx);

// JSON text for a response; invalid UTF-8 (from a client's bytes or a model's half-character
// output) becomes U+FFFD instead of an exception. Responses are ordered_json: keys keep their
// insertion order (a legacy top_logprobs object lists the most likely token first).
std::string dump_json(const nlohmann::json& j);
std::string dump_json(const nlohmann::ordered_json& j);

// Logprobs of a choice, or of the tokens of one stream chunk (engine/logprobs.h: log-softmax of
// the raw logits, before temperature and the other sampling settings).
// /v1/completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}; each top_logprobs
// object holds the top alternatives and, as OpenAI documents ("up to logprobs+1 elements"), the
// sampled token when it is not among them. text_offset: the index of the character (of the
// choice's text) that holds the token's first byte.
nlohmann::ordered_json completion_logprobs_json(const std::vector<TokenLogprobs>& entries);
// /v1/chat/completions: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
nlohmann::ordered_json chat_logprobs_json(const std::vector<TokenLogprobs>& entries);
// A token's bytes as a string: a byte sequence that is not well-formed UTF-8 becomes U+FFFD per
// maximal ill-formed subpart (what Python's bytes.decode(errors="replace") gives).
std::string utf8_replace_invalid(const std::string& bytes);

nlohmann::json error_json(const std::string& message, const std::string& type, const std::string& param);

}  // namespace squeeze
