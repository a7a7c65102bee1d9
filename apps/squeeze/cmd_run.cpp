// squeeze run: stream the continuation of a prompt.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "engine/sampler.h"
#include "engine/sequence_runner.h"
#include "util/error.h"
#include "util/log.h"

namespace squeeze::cli {

int cmd_run(int argc, char** argv) {
  Args a("run", "[options] PROMPT", "Generates a continuation of PROMPT and streams it to stdout (logs go to stderr).");
  add_model_flags(a, false);
  a.value("-n", "--n-predict", "N", "number of tokens to generate", "128");
  a.value("-c", "--ctx-size", "N", "context size (default: prompt + N, at most the model's training context)");
  add_sampling_flags(a);
  a.value("", "--prompt-ids", "IDS", "use these token ids as the prompt instead of PROMPT");
  a.flag("", "--no-special", "do not parse special-token text in the prompt");
  a.flag("", "--output-ids", "print the generated token ids instead of text");
  a.flag("", "--ignore-eos", "keep generating past end-of-generation tokens");
  if (!a.parse(argc, argv)) return 0;
  if (a.positional().size() > 1) throw Error("give the prompt as one argument (quote it)");
  if (a.positional().empty() && !a.has("--prompt-ids")) throw Error("missing PROMPT (see 'squeeze run --help')");

  const SamplingParams sp = sampling_from(a);
  const long long n_predict = a.integer("--n-predict");
  if (n_predict < 0) throw Error("--n-predict must be >= 0");

  LoadedModel lm = load_model(a, !a.has("--prompt-ids"));
  const HParams& hp = lm.model->hparams();
  std::vector<int32_t> tokens = a.has("--prompt-ids")
                                    ? parse_ids(a.str("--prompt-ids"))
                                    : lm.tokenizer->encode(a.positional()[0], true, !a.on("--no-special"));
  if (tokens.empty()) throw Error("the prompt is empty (and the model adds no BOS token)");

  int64_t n_ctx = a.has("--ctx-size") ? a.integer("--ctx-size")
                                      : std::min<int64_t>(int64_t(tokens.size()) + n_predict, hp.n_ctx_train);
  if (n_ctx <= 0 || n_ctx > hp.n_ctx_train)
    throw Error(fmt("context size %lld is outside 1..%d (the model's training context)", (long long)n_ctx, hp.n_ctx_train));
  if (int64_t(tokens.size()) >= n_ctx + (n_predict == 0 ? 1 : 0))
    throw Error(fmt("the prompt is %zu tokens, which leaves no room in the context of %lld", tokens.size(), (long long)n_ctx));

  SequenceRunner runner(*lm.model, *lm.backend, int32_t(n_ctx), lm.kv_type);
  Sampler sampler(sp);
  StreamDecoder dec;
  std::vector<float> logits;
  const bool ids = a.on("--output-ids");

  // Where the sampler needs only the row's best logits, only those leave the device.
  BestLogits best;
  best.k = sampler.best_needed(hp.n_vocab);
  best.argmax_only = best.k == 1 && sampler.plain_greedy();
  BestLogits* want = best.k > 0 ? &best : nullptr;

  const auto t0 = std::chrono::steady_clock::now();
  runner.eval(tokens, int64_t(tokens.size()) - 1, logits, want);
  const auto t1 = std::chrono::steady_clock::now();
  const size_t n_prompt = tokens.size();
  int64_t n_gen = 0;
  for (; n_gen < n_predict; ++n_gen) {
    const int32_t next = best.ids.empty()        ? sampler.sample(logits, tokens)
                         : best.argmax_only ? best.ids[0]
                                            : sampler.sample_best(best.values, best.ids);
    if (!a.on("--ignore-eos") && lm.tokenizer && lm.tokenizer->is_eog(next)) break;
    tokens.push_back(next);
    if (ids) {
      std::printf(n_gen ? " %d" : "%d", next);
    } else if (lm.tokenizer) {
      std::fputs(dec.push(lm.tokenizer->token_to_piece(next, false)).c_str(), stdout);
    }
    std::fflush(stdout);
    if (n_gen + 1 == n_predict || runner.n_past() >= n_ctx) {
      ++n_gen;
      break;
    }
    runner.eval(std::span<const int32_t>(&tokens.back(), 1), 0, logits, want);
  }
  if (!ids) std::fputs(dec.flush().c_str(), stdout);
  std::fputs("\n", stdout);
  const auto t2 = std::chrono::steady_clock::now();
  const double pp = std::chrono::duration<double>(t1 - t0).count(), tg = std::chrono::duration<double>(t2 - t1).count();
  SQZ_LOG("squeeze: prompt %zu tokens in %.2f s (%.1f t/s), generated %lld tokens in %.2f s (%.1f t/s), seed %llu\n",
          n_prompt, pp, double(n_prompt) / pp, (long long)n_gen, tg, n_gen ? double(n_gen) / tg : 0.0,
          (unsigned long long)sampler.seed());
  return 0;
}

}  // namespace squeeze::cli
