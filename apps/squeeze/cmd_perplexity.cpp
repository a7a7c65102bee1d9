// squeeze perplexity: llama.cpp's perplexity method, so the numbers are comparable with its tool.
// The text is tokenized once (with BOS, without special-token parsing) and cut into chunks of
// n_ctx tokens; each chunk starts a fresh sequence whose first token is replaced by BOS, and only
// the second half of each chunk is scored.
#include <cmath>
#include <cstdio>
#include <fstream>

#include "commands.h"
#include "common.h"
#include "engine/sampler.h"
#include "engine/sequence_runner.h"
#include "util/error.h"
#include "util/log.h"
#include "util/mapped_file.h"

namespace squeeze::cli {

int cmd_perplexity(int argc, char** argv) {
  Args a("perplexity", "-f FILE [options]",
         "Computes the perplexity of a text file with llama.cpp's method. The last line on stdout is 'PPL = <value>'.");
  add_model_flags(a, false);
  a.value("-f", "--file", "FILE", "text file to score");
  a.value("-c", "--ctx-size", "N", "tokens per chunk", "512");
  a.value("", "--chunks", "N", "score at most N chunks (default: all)");
  a.value("", "--top1-out", "PATH", "write the argmax token id of every scored position, one per line");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("--file")) throw Error("missing -f FILE");
  const long long n_ctx = a.integer("--ctx-size");
  if (n_ctx < 4) throw Error("--ctx-size must be at least 4");

  LoadedModel lm = load_model(a, true);
  if (n_ctx > lm.model->hparams().n_ctx_train)
    throw Error(fmt("--ctx-size %lld exceeds the model's training context %d", n_ctx, lm.model->hparams().n_ctx_train));
  const std::string text = read_text_file(a.str("--file"));
  const std::vector<int32_t> tokens = lm.tokenizer->encode(text, true, false);
  if (int64_t(tokens.size()) < 2 * n_ctx)
    throw Error(fmt("the file has %zu tokens; at least 2 x ctx-size = %lld are needed", tokens.size(), 2 * n_ctx));
  long long n_chunk = int64_t(tokens.size()) / n_ctx;
  if (a.has("--chunks")) n_chunk = std::min(n_chunk, std::max(1LL, a.integer("--chunks")));
  SQZ_LOG("perplexity: %zu tokens, %lld chunks of %lld\n", tokens.size(), n_chunk, n_ctx);

  std::ofstream top1;
  if (a.has("--top1-out")) {
    top1.open(a.str("--top1-out"));
    if (!top1) throw Error(fmt("cannot write '%s'", a.str("--top1-out").c_str()));
  }

  const int64_t vocab = lm.model->hparams().n_vocab;
  const int64_t first = n_ctx / 2;
  SequenceRunner runner(*lm.model, *lm.backend, int32_t(n_ctx), lm.kv_type);
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  std::vector<float> logits;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  for (long long c = 0; c < n_chunk; ++c) {
    std::copy(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx, chunk.begin());
    if (lm.tokenizer->add_bos()) chunk[0] = lm.tokenizer->bos_id();
    runner.reset();
    runner.eval(chunk, first, logits);
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      const float* row = logits.data() + (j - first) * vocab;
      float mx = row[0];
      for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, row[v]);
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
      const double tok_nll = std::log(sum) + mx - row[tokens[size_t(c * n_ctx + j + 1)]];
      nll += tok_nll;
      nll2 += tok_nll * tok_nll;
      ++count;
      if (top1) top1 << argmax(std::span<const float>(row, size_t(vocab))) << '\n';
    }
    std::fprintf(stderr, "[%lld]%.4f%s", c + 1, std::exp(nll / double(count)), c + 1 == n_chunk ? "\n" : ",");
    std::fflush(stderr);
  }
  const double mean = nll / double(count), ppl = std::exp(mean);
  const double var = nll2 / double(count) - mean * mean;
  const double err = count > 1 && var > 0 ? ppl * std::sqrt(var / double(count - 1)) : 0.0;
  std::fprintf(stderr, "perplexity: %lld tokens scored, PPL = %.4f +/- %.5f\n", (long long)count, ppl, err);
  std::printf("PPL = %.6f\n", ppl);
  return 0;
}

}  // namespace squeeze::cli
