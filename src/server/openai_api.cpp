#include "server/openai_api.h"

#include <algorithm>
#include <cmath>

#include "engine/logprobs.h"

namespace squeeze {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

double number(const json& j, const char* key, double def, double lo, double hi) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) throw ApiError(400, std::string("'") + key + "' must be a number", key);
  const double v = j[key].get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    throw ApiError(400, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi), key);
  return v;
}

int64_t integer(const json& j, const char* key, int64_t def, int64_t lo, int64_t hi) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number_integer()) throw ApiError(400, std::string("'") + key + "' must be an integer", key);
  const int64_t v = j[key].get<int64_t>();
  if (v < lo || v > hi)
    throw ApiError(400, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi), key);
  return v;
}

bool boolean(const json& j, const char* key, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw ApiError(400, std::string("'") + key + "' must be a boolean", key);
  return j[key].get<bool>();
}

void check_model(const json& j, const std::string& model_name) {
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) throw ApiError(400, "'model' must be a string", "model");
    const std::string m = j["model"].get<std::string>();
    if (!m.empty() && m != model_name) throw ApiError(404, "the model '" + m + "' does not exist; this server runs '" + model_name + "'", "model");
  }
}

}  // namespace

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
std::string dump_json(const ordered_json& j) { return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace); }

std::string utf8_replace_invalid(const std::string& bytes) {
  static const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  const auto* u = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n;) {
    const uint8_t b0 = u[i];
    size_t need = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (b0 < 0x80) {
      need = 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 3;
      if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
      if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    }
    // The longest prefix of a well-formed sequence starting here (at least the lead byte).
    size_t len = 1;
    while (len < need && i + len < n && u[i + len] >= (len == 1 ? lo : 0x80) && u[i + len] <= (len == 1 ? hi : 0xBF)) ++len;
    if (need > 0 && len == need) out.append(bytes, i, len);
    else out += kReplacement;  // one U+FFFD per maximal ill-formed subpart
    i += len;
  }
  return out;
}

namespace {

// -inf (a token the model rules out) as OpenAI and vLLM show it: -9999.0; JSON has no infinity.
double logprob_value(float v) { return std::isinf(v) && v < 0 ? -9999.0 : double(v); }

ordered_json byte_list(const std::string& s) {
  ordered_json a = ordered_json::array();
  for (char c : s) a.push_back(int(uint8_t(c)));
  return a;
}

}  // namespace

ordered_json completion_logprobs_json(const std::vector<TokenLogprobs>& entries) {
  ordered_json tokens = ordered_json::array(), token_logprobs = ordered_json::array(), top = ordered_json::array(),
               offsets = ordered_json::array();
  for (const TokenLogprobs& e : entries) {
    const std::string text = utf8_replace_invalid(e.token);
    tokens.push_back(text);
    token_logprobs.push_back(logprob_value(e.logprob));
    ordered_json alts = ordered_json::object();
    // Tokens whose texts coincide (after U+FFFD replacement) keep the first, most likely, one.
    for (const auto& [tok, lp] : e.top) {
      const std::string key = utf8_replace_invalid(tok);
      if (!alts.contains(key)) alts[key] = logprob_value(lp);
    }
    if (!alts.contains(text)) alts[text] = logprob_value(e.logprob);  // "up to logprobs+1 elements"
    top.push_back(std::move(alts));
    offsets.push_back(e.text_offset);
  }
  return ordered_json{{"tokens", std::move(tokens)}, {"token_logprobs", std::move(token_logprobs)},
                      {"top_logprobs", std::move(top)}, {"text_offset", std::move(offsets)}};
}

ordered_json chat_logprobs_json(const std::vector<TokenLogprobs>& entries) {
  ordered_json content = ordered_json::array();
  for (const TokenLogprobs& e : entries) {
    ordered_json alts = ordered_json::array();
    for (const auto& [tok, lp] : e.top)
      alts.push_back(ordered_json{{"token", utf8_replace_invalid(tok)}, {"logprob", logprob_value(lp)}, {"bytes", byte_list(tok)}});
    content.push_back(ordered_json{{"token", utf8_replace_invalid(e.token)}, {"logprob", logprob_value(e.logprob)},
                                   {"bytes", byte_list(e.token)}, {"top_logprobs", std::move(alts)}});
  }
  return ordered_json{{"content", std::move(content)}};
}

json error_json(const std::string& message, const std::string& type, const std::string& param) {
  return json{{"error", {{"message", message}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)}, {"code", nullptr}}}};
}

// Everything after the prompt, shared by completions and chat completions.
static void parse_generation_params(const json& j, int32_t n_ctx, CompletionRequest& r) {
  if (r.gen.prompt.empty()) throw ApiError(400, "the prompt is empty", "prompt");
  if (int64_t(r.gen.prompt.size()) >= n_ctx)
    throw ApiError(400, "the prompt has " + std::to_string(r.gen.prompt.size()) + " tokens; the context holds " + std::to_string(n_ctx), "prompt");
  const int64_t room = n_ctx - int64_t(r.gen.prompt.size());
  const char* max_key = j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  r.gen.max_tokens = int32_t(integer(j, max_key, std::min<int64_t>(16, room), 0, 1 << 30));
  if (r.gen.max_tokens > room)
    throw ApiError(400, "max_tokens (" + std::to_string(r.gen.max_tokens) + ") + the prompt (" + std::to_string(r.gen.prompt.size()) +
                            " tokens) exceed the context of " + std::to_string(n_ctx),
                   "max_tokens");

  SamplingParams& sp = r.gen.sampling;
  // OpenAI's defaults: temperature 1, top_p 1, no top-k or min-p.
  sp.temperature = float(number(j, "temperature", 1.0, 0.0, 2.0));
  sp.top_p = float(number(j, "top_p", 1.0, 0.0, 1.0));
  sp.top_k = int32_t(integer(j, "top_k", 0, 0, 1 << 30));
  sp.min_p = float(number(j, "min_p", 0.0, 0.0, 1.0));
  sp.presence_penalty = float(number(j, "presence_penalty", 0.0, -2.0, 2.0));
  sp.frequency_penalty = float(number(j, "frequency_penalty", 0.0, -2.0, 2.0));
  sp.penalty_last_n = -1;
  if (j.contains("seed") && !j["seed"].is_null()) sp.seed = uint64_t(integer(j, "seed", 0, INT64_MIN, INT64_MAX)) & 0x7fffffffffffffffull;

  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) r.gen.stop.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= 4) {
      for (const json& x : s) {
        if (!x.is_string()) throw ApiError(400, "'stop' must be a string or an array of up to 4 strings", "stop");
        r.gen.stop.push_back(x.get<std::string>());
      }
    } else {
      throw ApiError(400, "'stop' must be a string or an array of up to 4 strings", "stop");
    }
  }
  r.gen.n = int32_t(integer(j, "n", 1, 1, 16));
  if (integer(j, "best_of", 1, 1, 1) != 1) throw ApiError(400, "best_of is not supported", "best_of");
  r.gen.ignore_eos = boolean(j, "ignore_eos", false);  // an extension, as in llama.cpp and vLLM
  r.stream = boolean(j, "stream", false);
  r.echo = boolean(j, "echo", false);
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const json& so = j["stream_options"];
    if (!so.is_object()) throw ApiError(400, "'stream_options' must be an object", "stream_options");
    r.include_usage = boolean(so, "include_usage", false);
  }
}

CompletionRequest parse_completion_request(const std::string& body, const Tokenizer& tok, const std::string& model_name,
                                           int32_t n_ctx, int32_t n_vocab) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the body must be a JSON object");

  check_model(j, model_name);

  CompletionRequest r;
  if (!j.contains("prompt")) throw ApiError(400, "'prompt' is required", "prompt");
  const json& p = j["prompt"];
  if (p.is_string()) {
    r.prompt_text = p.get<std::string>();
    r.gen.prompt = tok.encode(r.prompt_text, true, true);
  } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
    for (const json& t : p) {
      if (!t.is_number_integer()) throw ApiError(400, "'prompt' token arrays must hold integers only", "prompt");
      const int64_t id = t.get<int64_t>();
      if (id < 0 || id >= n_vocab) throw ApiError(400, "prompt token id " + std::to_string(id) + " is outside the vocabulary", "prompt");
      r.gen.prompt.push_back(int32_t(id));
    }
  } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
    r.prompt_text = p[0].get<std::string>();
    r.gen.prompt = tok.encode(r.prompt_text, true, true);
  } else if (p.is_array()) {
    throw ApiError(400, "batched prompts (several strings) are not supported; send one request per prompt", "prompt");
  } else {
    throw ApiError(400, "'prompt' must be a string or an array of token ids", "prompt");
  }
  parse_generation_params(j, n_ctx, r);
  // logprobs: an integer 0..20, the alternatives to list per token (null or absent: none).
  r.gen.logprobs = int32_t(integer(j, "logprobs", -1, 0, kMaxTopLogprobs));
  // Echoed prompt tokens would need the prompt's logprobs, which are not computed.
  if (r.echo && r.gen.logprobs >= 0)
    throw ApiError(400, "'echo' together with 'logprobs' is not supported (no logprobs for prompt tokens)", "echo");
  return r;
}

CompletionRequest parse_chat_request(const std::string& body, const ChatPrompt* chat, const std::string& model_name,
                                     int32_t n_ctx) {
  json j;
  nlohmann::ordered_json ordered;
  try {
    j = json::parse(body);
    ordered = nlohmann::ordered_json::parse(body);  // messages keep the client's key order
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the body must be a JSON object");
  check_model(j, model_name);
  if (!chat) throw ApiError(400, "this model has no chat template; use /v1/completions");
  if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
    throw ApiError(400, "'messages' must be a non-empty array", "messages");
  if (j.contains("tools") && !j["tools"].is_null()) throw ApiError(400, "tools are not supported yet", "tools");
  CompletionRequest r;
  try {
    r.gen.prompt = chat->encode(ordered["messages"], true);
  } catch (const std::exception& e) {
    throw ApiError(400, e.what(), "messages");
  }
  parse_generation_params(j, n_ctx, r);
  if (r.echo) throw ApiError(400, "echo is not supported for chat completions", "echo");
  // logprobs: a boolean; top_logprobs: 0..20 alternatives per token, only with logprobs true.
  const bool logprobs = boolean(j, "logprobs", false);
  const int64_t top = integer(j, "top_logprobs", -1, 0, kMaxTopLogprobs);
  if (top >= 0 && !logprobs) throw ApiError(400, "'top_logprobs' requires 'logprobs': true", "top_logprobs");
  r.gen.logprobs = logprobs ? int32_t(std::max<int64_t>(top, 0)) : -1;
  return r;
}

}  // namespace squeeze
