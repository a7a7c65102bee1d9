// squeeze chat: an interactive conversation in the terminal, with the model's chat template (the
// same ChatPrompt code as the server's /v1/chat/completions).
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "engine/chat_prompt.h"
#include "engine/sequence_runner.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace squeeze::cli {

int cmd_chat(int argc, char** argv) {
  Args a("chat", "[options]",
         "Chats with the model in the terminal: type a message and press Enter. /reset starts over, /exit (or end of "
         "input) quits. Replies stream to stdout.");
  add_model_flags(a, false);
  add_sampling_flags(a);
  a.value("-n", "--n-predict", "N", "most tokens per reply", "512");
  a.value("-c", "--ctx-size", "N", "context size for the whole conversation", "4096");
  a.value("", "--system", "TEXT", "a system message to start the conversation with");
  a.value("", "--chat-template-file", "F", "Jinja chat template to use instead of the model's own");
  if (!a.parse(argc, argv)) return 0;
  const SamplingParams sp = sampling_from(a);
  const long long n_predict = a.integer("--n-predict");
  if (n_predict <= 0) throw Error("--n-predict must be positive");

  LoadedModel lm = load_model(a, true);
  const int32_t n_ctx = int32_t(std::min<long long>(a.integer("--ctx-size"), lm.model->hparams().n_ctx_train));
  if (n_ctx <= 0) throw Error("--ctx-size must be positive");
  const ChatPrompt chat = a.has("--chat-template-file")
                              ? ChatPrompt(read_text_file(a.str("--chat-template-file")), *lm.tokenizer)
                              : ChatPrompt(lm.model->file(), *lm.tokenizer);
  SequenceRunner runner(*lm.model, *lm.backend, n_ctx, lm.kv_type);
  Sampler sampler(sp);

  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  auto start_over = [&] {
    messages = nlohmann::ordered_json::array();
    if (a.has("--system")) messages.push_back({{"role", "system"}, {"content", a.str("--system")}});
  };
  start_over();
  std::vector<int32_t> in_cache;  // the tokens the runner's KV holds
  std::vector<float> logits;

  for (std::string line;;) {
    std::fputs("> ", stderr);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      start_over();
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    std::vector<int32_t> prompt = chat.encode(messages, true);
    // Reuse the cached conversation when the new prompt extends it; otherwise start again.
    size_t common = 0;
    while (common < in_cache.size() && common < prompt.size() && in_cache[common] == prompt[common]) ++common;
    if (common < in_cache.size() || common == prompt.size()) {
      runner.reset();
      in_cache.clear();
      common = 0;
    }
    if (int64_t(prompt.size()) + 1 > n_ctx) {
      std::fprintf(stderr, "the conversation (%zu tokens) no longer fits in the context of %d; /reset to start over\n",
                   prompt.size(), n_ctx);
      messages.erase(messages.end() - 1);
      continue;
    }
    runner.eval(std::span<const int32_t>(prompt).subspan(common), int64_t(prompt.size() - common) - 1, logits);
    in_cache = prompt;
    std::string reply;
    StreamDecoder dec;
    for (long long i = 0; i < n_predict && runner.n_past() < n_ctx; ++i) {
      const int32_t tok = sampler.sample(logits, in_cache);
      if (lm.tokenizer->is_eog(tok)) break;
      const std::string text = dec.push(lm.tokenizer->token_to_piece(tok, false));
      reply += text;
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
      in_cache.push_back(tok);
      if (runner.n_past() >= n_ctx) break;
      runner.eval(std::span<const int32_t>(&in_cache.back(), 1), 0, logits);
    }
    const std::string tail = dec.flush();
    reply += tail;
    std::fputs((tail + "\n").c_str(), stdout);
    std::fflush(stdout);
    messages.push_back({{"role", "assistant"}, {"content", reply}});
  }
  return 0;
}

}  // namespace squeeze::cli
