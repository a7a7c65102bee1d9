// The serving engine on a tiny random-weight model (tests/fixtures/tiny/llama_gqa): parallel
// samples share their prompt's KV blocks (copy-on-write), greedy samples agree with a lone
// sequence, and every block comes back when sequences are released or cancelled.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "engine/engine.h"
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
