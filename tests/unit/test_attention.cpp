// The tiled, paged attention against a direct full-softmax computation: scattered (non-contiguous)
// blocks, GQA, sliding windows and multi-token ragged batches.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "kv/block_table.h"

using namespace squeeze;

namespace {

struct Case {
  int n_head, n_head_kv, head_dim, n_tokens, window;
};

void check(const Case& c, int threads, Numerics numerics = Numerics::exact, GGMLType kv_type = GGMLType::F32,
           double tol = 2e-5) {
  KVGeometry g;
  g.n_layers = 2;
  g.n_kv_heads = c.n_head_kv;
  g.head_dim = c.head_dim;
  g.block_size = 16;
  g.n_blocks = 64;
  g.type = kv_type;
  KVCache kv(g);
  // Take a few blocks first so the sequence's blocks are not 0, 1, 2, ...
  std::vector<int32_t> taken;
  for (int i = 0; i < 5; ++i) taken.push_back(kv.pool().allocate());
  BlockTable table;
  ASSERT_TRUE(table.reserve(kv.pool(), c.n_tokens, g.block_size));
  for (int32_t b : taken) kv.pool().release(b);

  std::mt19937 rng(1234 + c.n_tokens);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  std::vector<float> q(size_t(c.n_tokens * q_dim)), k(size_t(c.n_tokens * kv_dim)), v(k.size());
  for (auto& x : q) x = nd(rng);
  for (auto& x : k) x = nd(rng);
  for (auto& x : v) x = nd(rng);
  std::vector<int32_t> pos(size_t(c.n_tokens));
  std::vector<const int32_t*> blocks(size_t(c.n_tokens), table.blocks.data());
  for (int t = 0; t < c.n_tokens; ++t) pos[size_t(t)] = t;
  TokenPlacement tp{pos.data(), blocks.data(), c.n_tokens};

  CpuBackend be(threads, numerics);
  be.kv_write(kv, 1, k.data(), v.data(), tp);
  const float scale = 1.0f / std::sqrt(float(c.head_dim));
  AttentionParams ap{1, c.n_head, c.n_head_kv, c.head_dim, scale, c.window};
  std::vector<float> out(q.size());
  be.attention(kv, ap, q.data(), tp, out.data());

  const int group = c.n_head / c.n_head_kv;
  double worst = 0;
  for (int t = 0; t < c.n_tokens; ++t) {
    for (int h = 0; h < c.n_head; ++h) {
      const int hk = h / group;
      const int lo = c.window > 0 ? std::max(0, t - c.window + 1) : 0;
      std::vector<double> s;
      double mx = -1e300;
      for (int j = lo; j <= t; ++j) {
        double d = 0;
        for (int i = 0; i < c.head_dim; ++i)
          d += double(q[size_t(t * q_dim + h * c.head_dim + i)]) * k[size_t(j * kv_dim + hk * c.head_dim + i)];
        s.push_back(d * scale);
        mx = std::max(mx, s.back());
      }
      double z = 0;
      for (double& x : s) z += (x = std::exp(x - mx));
      for (int i = 0; i < c.head_dim; ++i) {
        double o = 0;
        for (int j = lo; j <= t; ++j) o += s[size_t(j - lo)] / z * v[size_t(j * kv_dim + hk * c.head_dim + i)];
        worst = std::max(worst, std::abs(o - out[size_t(t * q_dim + h * c.head_dim + i)]));
      }
    }
  }
  EXPECT_LT(worst, tol) << "heads " << c.n_head << "/" << c.n_head_kv << " window " << c.window;
  table.release_all(kv.pool());
  EXPECT_EQ(kv.pool().n_free(), g.n_blocks);
}

}  // namespace

TEST(Attention, MatchesFullSoftmaxMHA) { check({4, 4, 16, 70, 0}, 2); }
TEST(Attention, MatchesFullSoftmaxGQA) { check({8, 2, 32, 53, 0}, 3); }
TEST(Attention, MatchesFullSoftmaxMQAWindow) { check({4, 1, 16, 90, 20}, 2); }
TEST(Attention, WindowSmallerThanBlock) { check({2, 2, 8, 40, 5}, 1); }
// llama.cpp's arithmetic: 64+ tokens take its key-tiled path, fewer its one-query path; with an
// F16 cache K, V, Q and the output accumulator are rounded to F16.
TEST(Attention, LlamacppTiledF32) { check({4, 4, 32, 70, 0}, 2, Numerics::llamacpp); }
TEST(Attention, LlamacppTiledWindowF32) { check({4, 1, 32, 150, 40}, 2, Numerics::llamacpp); }
TEST(Attention, LlamacppOneQueryF32) { check({8, 2, 32, 53, 0}, 3, Numerics::llamacpp); }
TEST(Attention, LlamacppOneQueryF16) { check({8, 2, 64, 40, 0}, 2, Numerics::llamacpp, GGMLType::F16, 1e-2); }
TEST(Attention, LlamacppTiledF16) { check({4, 2, 64, 100, 30}, 2, Numerics::llamacpp, GGMLType::F16, 1e-2); }

TEST(BlockPool, RefCountsAndReuse) {
  BlockPool pool(4);
  int32_t a = pool.allocate(), b = pool.allocate();
  EXPECT_NE(a, b);
  pool.retain(a);
  EXPECT_EQ(pool.ref_count(a), 2);
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 2);
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 3);
  EXPECT_EQ(pool.allocate(), a);  // most recently freed first
  pool.allocate();
  pool.allocate();
  EXPECT_EQ(pool.allocate(), -1);
  (void)b;
}

TEST(BlockTable, ReserveFailsWithoutPartialAllocation) {
  BlockPool pool(3);
  BlockTable t;
  EXPECT_TRUE(t.reserve(pool, 20, 16));
  EXPECT_EQ(t.blocks.size(), 2u);
  EXPECT_FALSE(t.reserve(pool, 64, 16));
  EXPECT_EQ(t.blocks.size(), 2u);
  EXPECT_EQ(pool.n_free(), 1);
  t.release_all(pool);
  EXPECT_EQ(pool.n_free(), 3);
}
