// The serving engine on a tiny random-weight model (tests/fixtures/tiny/llama_gqa): parallel
// samples share their prompt's KV blocks (copy-on-write), greedy samples agree with a lone
// sequence, and every block comes back when sequences are released or cancelled.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "engine/engine.h"
#include "engine/logprobs.h"
#include "engine/sequence_runner.h"
#include "model/model.h"
#include "util/error.h"

using namespace squeeze;

namespace {

std::unique_ptr<Model> tiny() { return Model::load(std::string(SQUEEZE_SOURCE_DIR) + "/tests/fixtures/tiny/llama_gqa"); }

std::vector<int32_t> prompt_of(int n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) p[size_t(i)] = (i * 37 + 11) % 256;
  return p;
}

SamplingParams greedy() {
  SamplingParams sp;
  sp.temperature = 0.0f;
  return sp;
}

int32_t used_blocks(const Engine& e) { return e.kv().geometry().n_blocks - e.prefix_cache().n_available(); }

TEST(Engine, ParallelSamplesStoreThePromptOnce) {
  auto model = tiny();
  CpuBackend be(2, Numerics::llamacpp);
  EngineConfig cfg;
  cfg.n_blocks = 64;
  cfg.n_ctx = 256;
  Engine engine(*model, be, nullptr, cfg);
  const auto ids = engine.add_samples(prompt_of(40), greedy(), 8, 4, true);  // 3 blocks: 16 + 16 + 8
  ASSERT_EQ(ids.size(), 4u);
  ASSERT_TRUE(engine.step());  // the prompt, once; every sample draws its first token
  for (int64_t id : ids) EXPECT_EQ(engine.sequence(id).n_generated(), 1);
  EXPECT_EQ(used_blocks(engine), 3);  // shared by all four
  ASSERT_TRUE(engine.step());  // each writes position 40: the partial block is copied for three
  EXPECT_EQ(used_blocks(engine), 3 + 3);
  while (engine.step()) {
  }
  // Greedy samples are all the same, and the same as one sequence alone.
  const int64_t alone = engine.add(prompt_of(40), greedy(), 8, true);
  while (engine.step()) {
  }
  for (int64_t id : ids) EXPECT_EQ(engine.sequence(id).tokens, engine.sequence(alone).tokens);
  for (int64_t id : ids) engine.release(id);
  engine.release(alone);
  EXPECT_EQ(used_blocks(engine), 0);
}

TEST(Engine, CancellingFreesBlocksAndKeepsOthersRunning) {
  auto model = tiny();
  CpuBackend be(2, Numerics::llamacpp);
  EngineConfig cfg;
  cfg.n_blocks = 64;
  cfg.n_ctx = 256;
  Engine engine(*model, be, nullptr, cfg);
  const int64_t a = engine.add(prompt_of(30), greedy(), 20, true);
  const auto group = engine.add_samples(prompt_of(50), greedy(), 20, 3, true);
  engine.step();
  engine.cancel(group[0]);  // the parent, after the fork
  engine.cancel(a);
  while (engine.step()) {
  }
  EXPECT_EQ(engine.sequence(a).finish, FinishReason::cancelled);
  EXPECT_EQ(engine.sequence(group[1]).n_generated(), 20);
  EXPECT_EQ(engine.sequence(group[2]).finish, FinishReason::length);
  for (int64_t id : {a, group[0], group[1], group[2]}) engine.release(id);
  EXPECT_EQ(used_blocks(engine), 0);
  EXPECT_TRUE(engine.idle());
}

TEST(Engine, RejectsRequestsThatCannotFit) {
  auto model = tiny();
  CpuBackend be(1, Numerics::exact);
  EngineConfig cfg;
  cfg.n_blocks = 4;  // 64 tokens
  cfg.n_ctx = 256;
  Engine engine(*model, be, nullptr, cfg);
  EXPECT_THROW(engine.add(prompt_of(60), greedy(), 10), Error);   // beyond the pool
  EXPECT_THROW(engine.add(prompt_of(10), greedy(), 300), Error);  // beyond the context
  EXPECT_THROW(engine.add({}, greedy(), 1), Error);
  EXPECT_THROW(engine.add({256}, greedy(), 1), Error);  // outside the vocabulary
}

}  // namespace

// ---- Log-probabilities (engine/logprobs.*) ----

namespace {

// The plain definition, all in long double: the reference for log_sum_exp on rows where it is
// safe to compute naively.
long double naive_lse(const std::vector<float>& x) {
  long double s = 0;
  for (float v : x) s += std::exp((long double)v);
  return std::log(s);
}

TEST(Logprobs, LogSumExpMatchesTheDefinitionAndDoesNotOverflow) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  std::vector<float> row(50000);
  for (float& v : row) v = nd(rng);
  EXPECT_NEAR(log_sum_exp(row), double(naive_lse(row)), 1e-7);  // float terms, double sum
  // Shifted by 1000: exp() of every entry overflows a float (and 1e4 a double); the result
  // simply shifts.
  for (float shift : {1000.0f, 10000.0f, -10000.0f}) {
    std::vector<float> shifted(row);
    for (float& v : shifted) v += shift;
    EXPECT_NEAR(log_sum_exp(shifted) - double(shift), double(naive_lse(row)), 2e-3 * std::abs(shift) / 1000 + 1e-6);
  }
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NEAR(log_sum_exp(std::vector<float>{1000.0f, 1000.0f}), 1000.0 + std::log(2.0), 1e-12);
  EXPECT_NEAR(log_sum_exp(std::vector<float>{0.0f, -inf, nan, 0.0f}), std::log(2.0), 1e-12);  // NaN ignored
  EXPECT_EQ(log_sum_exp(std::vector<float>{-inf, -inf}), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(log_sum_exp(std::vector<float>{}), -std::numeric_limits<double>::infinity());
  // A tiny term next to a dominant one still counts (float accumulation would drop it).
  std::vector<float> dominant(100001, -20.0f);
  dominant[0] = 0.0f;
  EXPECT_NEAR(log_sum_exp(dominant), std::log1p(100000.0 * std::exp(-20.0)), 1e-9);
}

TEST(Logprobs, TopLogitsAreSortedWithTiesToTheLowerId) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> row = {1.0f, 5.0f, 3.0f, 5.0f, nan, -2.0f, 3.0f, 4.0f};
  auto top = top_logits(row, 4);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].token, 1);
  EXPECT_EQ(top[1].token, 3);
  EXPECT_EQ(top[2].token, 7);
  EXPECT_EQ(top[3].token, 2);  // 3.0 at ids 2 and 6: the lower id
  EXPECT_TRUE(top_logits(row, 0).empty());
  EXPECT_EQ(top_logits(std::vector<float>{2.0f, 1.0f}, 20).size(), 2u);  // clipped to the vocabulary
  EXPECT_EQ(top_logits(row, 100).size(), 7u);                            // at most kMaxTopLogprobs, NaN skipped
  // Against a full sort on a random row.
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> big(70000);
  for (float& v : big) v = nd(rng);
  std::vector<int32_t> ids(big.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return big[size_t(a)] > big[size_t(b)]; });
  top = top_logits(big, kMaxTopLogprobs);
  ASSERT_EQ(top.size(), size_t(kMaxTopLogprobs));
  for (size_t i = 0; i < top.size(); ++i) EXPECT_EQ(top[i].token, ids[i]);
}

TEST(Logprobs, ComputeLogprobsIsTheLogSoftmax) {
  const std::vector<float> row = {2.0f, -1.0f, 0.5f, 2.0f};
  const StepLogprobs lp = compute_logprobs(row, 1, 2);
  const double z = std::log(2 * std::exp(2.0) + std::exp(-1.0) + std::exp(0.5));
  EXPECT_EQ(lp.sampled.token, 1);
  EXPECT_NEAR(lp.sampled.logprob, -1.0 - z, 1e-6);
  ASSERT_EQ(lp.top.size(), 2u);
  EXPECT_EQ(lp.top[0].token, 0);
  EXPECT_EQ(lp.top[1].token, 3);
  EXPECT_NEAR(lp.top[0].logprob, 2.0 - z, 1e-6);
  EXPECT_EQ(lp.top[0].logprob, lp.top[1].logprob);
}

SamplingParams hot(uint64_t seed) {
  SamplingParams sp;
  sp.temperature = 1.7f;
  sp.top_k = 3;
  sp.top_p = 0.5f;
  sp.min_p = 0.0f;
  sp.presence_penalty = 1.5f;
  sp.seed = seed;
  return sp;
}

TEST(Engine, LogprobsAreTheRawLogSoftmaxOfEveryStep) {
  auto model = tiny();
  CpuBackend be(2, Numerics::exact);
  EngineConfig cfg;
  cfg.n_blocks = 64;
  cfg.n_ctx = 256;
  Engine engine(*model, be, nullptr, cfg);
  const int64_t plain = engine.add(prompt_of(21), greedy(), 6, true);
  const int64_t g = engine.add(prompt_of(21), greedy(), 6, true, 5);
  const auto samples = engine.add_samples(prompt_of(21), hot(11), 6, 3, true, 2);
  while (engine.step()) {
  }
  EXPECT_TRUE(engine.sequence(plain).logprobs.empty());  // not asked: nothing recorded
  const Sequence& s = engine.sequence(g);
  EXPECT_EQ(s.tokens, engine.sequence(plain).tokens);  // recording does not change the output
  ASSERT_EQ(s.logprobs.size(), size_t(s.n_generated()));
  ASSERT_EQ(s.n_generated(), 6);

  // Reference: the logits of every position from the single-sequence runner, log-softmax in
  // long double.
  SequenceRunner runner(*model, be, 256, GGMLType::F16);
  std::vector<float> logits;
  runner.eval(s.tokens, s.n_prompt - 1, logits);
  const size_t n_vocab = size_t(model->hparams().n_vocab);
  for (size_t i = 0; i < s.logprobs.size(); ++i) {
    const StepLogprobs& lp = s.logprobs[i];
    std::vector<float> row(logits.begin() + long(i * n_vocab), logits.begin() + long((i + 1) * n_vocab));
    const long double z = naive_lse(row);
    EXPECT_EQ(lp.sampled.token, s.tokens[size_t(s.n_prompt) + i]);
    ASSERT_EQ(lp.top.size(), 5u);
    EXPECT_EQ(lp.top[0].token, lp.sampled.token);  // greedy: the sampled token is the most likely
    EXPECT_EQ(lp.top[0].logprob, lp.sampled.logprob);
    for (size_t k = 0; k < lp.top.size(); ++k) {
      EXPECT_NEAR(lp.top[k].logprob, double(row[size_t(lp.top[k].token)] - z), 1e-4);
      if (k > 0) {
        EXPECT_GE(lp.top[k - 1].logprob, lp.top[k].logprob);
      }
    }
  }
  // Sampled with temperature, top-k/top-p and a penalty: the first step sees the same logits, so
  // its logprobs are the greedy ones (raw, not the sampler's distribution); every parallel
  // sample has its own record.
  for (int64_t id : samples) {
    const Sequence& h = engine.sequence(id);
    ASSERT_EQ(h.logprobs.size(), 6u);
    ASSERT_EQ(h.logprobs[0].top.size(), 2u);
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(h.logprobs[0].top[k].token, s.logprobs[0].top[k].token);
      EXPECT_EQ(h.logprobs[0].top[k].logprob, s.logprobs[0].top[k].logprob);
    }
    for (size_t i = 0; i < h.logprobs.size(); ++i) EXPECT_EQ(h.logprobs[i].sampled.token, h.tokens[size_t(h.n_prompt) + i]);
  }
  EXPECT_THROW(engine.add(prompt_of(5), greedy(), 2, false, 21), Error);
  for (int64_t id : {plain, g, samples[0], samples[1], samples[2]}) engine.release(id);
}

}  // namespace
