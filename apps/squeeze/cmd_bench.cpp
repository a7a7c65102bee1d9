// squeeze bench: prompt-processing (ppN) and text-generation (tgN) throughput, measured the way
// llama.cpp's llama-bench does (reference/models.md 5.2), so the two tools' numbers compare
// directly:
//   ppN: N random token ids (the first is BOS when the tokenizer adds one) evaluated as one
//        prompt, logits for the last token only; t/s = N / elapsed.
//   tgN: N single-token decode steps on a fresh sequence (the first token is BOS); t/s = N / elapsed.
// An untimed warmup runs first (a full pp run, or one tg token), and every repetition starts a
// fresh sequence. llama-bench reports mean ± sample stddev; we print the median (robust on a
// loaded machine) with min/max in the table, and all of them with --json.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "common.h"
#include "engine/sequence_runner.h"
#include "util/error.h"

namespace squeeze::cli {
namespace {

struct Stats {
  double median = 0, mean = 0, stddev = 0, min = 0, max = 0;
};

Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  for (double x : v) s.mean += x;
  s.mean /= double(n);
  // Sample stddev (n - 1), as llama-bench prints.
  if (n > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / double(n - 1));
  }
  return s;
}

// JSON string escaping for the few free-form strings we print (the model path).
std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) o += fmt("\\u%04x", unsigned(static_cast<unsigned char>(c)));
    else o += c;
  }
  return o + "\"";
}

std::string human_bytes(double b) {
  if (b >= double(1ull << 30)) return fmt("%.2f GiB", b / double(1ull << 30));
  return fmt("%.2f MiB", b / double(1ull << 20));
}

std::string human_params(double p) {
  if (p >= 1e9) return fmt("%.2f B", p / 1e9);
  return fmt("%.2f M", p / 1e6);
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args a("bench", "[options]",
         "Measures prompt processing (ppN) and generation (tgN) speed like llama.cpp's llama-bench.");
  add_model_flags(a, false);
  a.value("-p", "--n-prompt", "N", "prompt tokens for the pp test (0: skip)", "512");
  a.value("-n", "--n-gen", "N", "generated tokens for the tg test (0: skip)", "128");
  a.value("-r", "--repetitions", "N", "timed repetitions of each test", "5");
  a.value("-ub", "--ubatch", "N",
          "prompt tokens per forward pass in the pp test (llama-bench's -ub; 0: the device's, 512 on cpu, 2048 on cuda)",
          "0");
  a.value("", "--seed", "S", "seed of the random token ids", "42");
  a.flag("", "--json", "print one JSON object per test instead of a table");
  a.flag("", "--no-warmup", "skip the untimed warmup run before each test (for cold-start timings)");
  if (!a.parse(argc, argv)) return 0;
  const long long n_prompt = a.integer("--n-prompt"), n_gen = a.integer("--n-gen"), reps = a.integer("--repetitions");
  if (n_prompt < 0 || n_gen < 0) throw Error("-p and -n must be >= 0");
  if (reps < 1) throw Error("-r must be >= 1");
  const long long ubatch = a.integer("--ubatch");
  if (ubatch < 0 || ubatch > 65536) throw Error("--ubatch must be in 0..65536");
  const bool json = a.on("--json");

  LoadedModel lm = load_model(a, false);
  const HParams& hp = lm.model->hparams();
  // Like llama-bench, the context holds both phases; each test uses only its own part of it.
  const long long n_ctx = std::max<long long>(1, n_prompt + n_gen);
  if (n_ctx > hp.n_ctx_train)
    throw Error(fmt("-p + -n = %lld exceeds the model's training context %d", n_ctx, hp.n_ctx_train));

  // A model without a tokenizer has no BOS: every id is random.
  const bool add_bos = lm.tokenizer && lm.tokenizer->add_bos() && lm.tokenizer->bos_id() >= 0;
  const int32_t bos = add_bos ? lm.tokenizer->bos_id() : -1;
  std::mt19937 rng(uint32_t(a.integer("--seed")));
  std::uniform_int_distribution<int32_t> pick(0, hp.n_vocab - 1);
  auto random_tokens = [&](long long n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = pick(rng);
    if (n > 0 && add_bos) t[0] = bos;
    return t;
  };

  // Size and params: every tensor of the file, as llama-bench counts (model_size / n_params).
  size_t model_bytes = 0;
  double n_params = 0;
  for (const TensorRef& t : lm.model->file().tensors()) {
    model_bytes += t.nbytes;
    n_params += double(t.n_elements());
  }
  std::string model_name = a.has("--model") ? a.str("--model") : default_model_path();
  if (auto slash = model_name.find_last_of('/'); slash != std::string::npos && slash + 1 < model_name.size())
    model_name = model_name.substr(slash + 1);
  const long long threads = a.integer("--threads");

  SequenceRunner runner(*lm.model, *lm.backend, int32_t(n_ctx), lm.kv_type, int32_t(ubatch));
  std::vector<float> logits;
  using clock = std::chrono::steady_clock;

  // One pp run: the whole prompt in one eval call (SequenceRunner chunks it into batches of
  // --ubatch tokens), logits for the last token only.
  auto run_pp = [&]() {
    runner.reset();
    const std::vector<int32_t> toks = random_tokens(n_prompt);
    const auto t0 = clock::now();
    runner.eval(toks, int64_t(toks.size()) - 1, logits);
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  // One tg run of n tokens: each step is a single-token eval, which returns its logits (the
  // per-step synchronisation llama-bench does).
  auto run_tg = [&](long long n) {
    runner.reset();
    const std::vector<int32_t> toks = random_tokens(n);
    const auto t0 = clock::now();
    for (long long i = 0; i < n; ++i) runner.eval(std::span<const int32_t>(&toks[size_t(i)], 1), 0, logits);
    return std::chrono::duration<double>(clock::now() - t0).count();
  };

  if (!json) {
    std::printf("| %-30s | %10s | %8s | %7s | %6s | %-32s |\n", "model", "size", "params", "threads", "test",
                "t/s median (min .. max)");
    std::printf("| %s | %s | %s | %s | %s | %s |\n", std::string(30, '-').c_str(), std::string(10, '-').c_str(),
                std::string(8, '-').c_str(), std::string(7, '-').c_str(), std::string(6, '-').c_str(),
                std::string(32, '-').c_str());
    std::fflush(stdout);
  }

  auto report = [&](const char* kind, long long n, const std::vector<double>& ts) {
    const Stats s = stats_of(ts);
    const std::string test = fmt("%s%lld", kind, n);
    if (json) {
      std::string samples;
      for (size_t i = 0; i < ts.size(); ++i) samples += fmt(i ? ", %.4f" : "%.4f", ts[i]);
      std::printf(
          "{\"model\": %s, \"model_size\": %zu, \"model_n_params\": %.0f, \"n_threads\": %lld, \"test\": \"%s\", "
          "\"n_prompt\": %lld, \"n_gen\": %lld, \"n_ubatch\": %d, \"repetitions\": %zu, \"kv_type\": \"%s\", \"numerics\": \"%s\", "
          "\"ts_median\": %.4f, \"ts_mean\": %.4f, \"ts_stddev\": %.4f, \"ts_min\": %.4f, \"ts_max\": %.4f, "
          "\"samples_ts\": [%s]}\n",
          json_str(model_name).c_str(), model_bytes, n_params, threads, test.c_str(), kind[0] == 'p' ? n : 0,
          kind[0] == 't' ? n : 0, runner.max_batch(), ts.size(), a.str("--kv-type").c_str(), a.str("--numerics").c_str(), s.median,
          s.mean, s.stddev, s.min, s.max, samples.c_str());
    } else {
      std::printf("| %-30s | %10s | %8s | %7lld | %6s | %10.2f (%8.2f .. %8.2f) |\n", model_name.c_str(),
                  human_bytes(double(model_bytes)).c_str(), human_params(n_params).c_str(), threads, test.c_str(),
                  s.median, s.min, s.max);
    }
    std::fflush(stdout);
  };

  if (n_prompt > 0) {
    if (!a.has("--no-warmup")) run_pp();
    std::vector<double> ts;
    for (long long r = 0; r < reps; ++r) ts.push_back(double(n_prompt) / run_pp());
    report("pp", n_prompt, ts);
  }
  if (n_gen > 0) {
    if (!a.has("--no-warmup")) run_tg(1);  // one token, as llama-bench does
    std::vector<double> ts;
    for (long long r = 0; r < reps; ++r) ts.push_back(double(n_gen) / run_tg(n_gen));
    report("tg", n_gen, ts);
  }

  // ru_maxrss is in KiB on Linux. In --json mode it goes to stderr so stdout stays one object per test.
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  std::fprintf(json ? stderr : stdout, "peak RSS: %.1f MiB\n", double(ru.ru_maxrss) / 1024.0);
  return 0;
}

}  // namespace squeeze::cli
