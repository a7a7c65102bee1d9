// PrefixCache and copy-on-write: block sharing, reference counts, LRU eviction of idle blocks.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "kv/copy_on_write.h"
#include "kv/kv_cache.h"
#include "kv/prefix_cache.h"

using namespace squeeze;

namespace {

constexpr int32_t kBs = 4;

std::vector<int32_t> iota_tokens(int n, int start = 100) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

// What a runner does after computing a prompt: index every full block by its chain hash.
void insert_full_blocks(PrefixCache& cache, const std::vector<int32_t>& tokens, const BlockTable& table) {
  uint64_t h = PrefixCache::kRootHash;
  for (size_t b = 0; (b + 1) * kBs <= tokens.size(); ++b) {
    h = PrefixCache::chain_hash(h, std::span<const int32_t>(tokens).subspan(b * kBs, kBs));
    cache.insert(h, table.blocks[b]);
  }
}

BlockTable allocate_blocks(PrefixCache& cache, int64_t n) {
  BlockTable t;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t b = cache.allocate();
    EXPECT_GE(b, 0);
    t.blocks.push_back(b);
  }
  return t;
}

TEST(PrefixCache, ChainHashDependsOnParentAndTokens) {
  const auto a = iota_tokens(4), b = iota_tokens(4, 200);
  const uint64_t ha = PrefixCache::chain_hash(PrefixCache::kRootHash, a);
  EXPECT_NE(ha, PrefixCache::chain_hash(PrefixCache::kRootHash, b));
  EXPECT_NE(PrefixCache::chain_hash(ha, b), PrefixCache::chain_hash(PrefixCache::kRootHash, b));
  EXPECT_EQ(ha, PrefixCache::chain_hash(PrefixCache::kRootHash, iota_tokens(4)));
}

TEST(PrefixCache, SharesTheLongestFullBlockPrefix) {
  BlockPool pool(16);
  PrefixCache cache(pool, kBs);
  const auto prompt = iota_tokens(10);  // 2 full blocks + 2 tokens
  BlockTable first = allocate_blocks(cache, 3);
  insert_full_blocks(cache, prompt, first);
  EXPECT_EQ(cache.n_cached(), 2);

  // Same first 9 tokens, different 10th: both full blocks are shared.
  auto other = prompt;
  other[9] = 7;
  BlockTable second;
  EXPECT_EQ(cache.match(other, second), 8);
  ASSERT_EQ(second.blocks.size(), 2u);
  EXPECT_EQ(second.blocks[0], first.blocks[0]);
  EXPECT_EQ(pool.ref_count(first.blocks[0]), 3);  // first, second and the cache

  // A prompt of exactly 8 tokens matches only one block: the last token must be computed.
  BlockTable third;
  EXPECT_EQ(cache.match(iota_tokens(8), third), 4);
  // A different first block matches nothing, even with a matching second block.
  auto diverged = prompt;
  diverged[0] = 1;
  BlockTable fourth;
  EXPECT_EQ(cache.match(diverged, fourth), 0);
  EXPECT_EQ(cache.hits(), 3u);

  cache.release(first);
  cache.release(second);
  cache.release(third);
  EXPECT_EQ(cache.n_idle(), 2);
  EXPECT_EQ(pool.n_free(), 16 - 2);  // the partial block went back; the full ones stay cached
}

TEST(PrefixCache, EvictsIdleBlocksLeastRecentlyUsedFirst) {
  BlockPool pool(4);
  PrefixCache cache(pool, kBs);
  const auto a = iota_tokens(9, 0), b = iota_tokens(9, 50);
  BlockTable ta = allocate_blocks(cache, 2), tb = allocate_blocks(cache, 2);
  insert_full_blocks(cache, a, ta);
  insert_full_blocks(cache, b, tb);
  cache.release(ta);  // a's blocks idle first
  cache.release(tb);
  EXPECT_EQ(pool.n_free(), 0);
  EXPECT_EQ(cache.n_available(), 4);

  // Using a again makes it the most recent; b's blocks are then evicted first.
  BlockTable again;
  EXPECT_EQ(cache.match(a, again), 8);
  cache.release(again);
  BlockTable fresh = allocate_blocks(cache, 2);
  BlockTable check_a, check_b;
  EXPECT_EQ(cache.match(a, check_a), 8);
  EXPECT_EQ(cache.match(b, check_b), 0);
  EXPECT_EQ(cache.allocate(), -1);  // everything is held now
  cache.release(check_a);
  cache.release(fresh);
  EXPECT_EQ(cache.n_available(), 4);
}

TEST(CopyOnWrite, CopiesASharedBlockOnce) {
  KVGeometry g;
  g.n_layers = 2, g.n_kv_heads = 1, g.head_dim = 2, g.block_size = kBs, g.n_blocks = 4, g.type = GGMLType::F32;
  KVCache kv(g);
  PrefixCache cache(kv.pool(), kBs);
  BlockTable parent = allocate_blocks(cache, 1);
  const float k0 = 1.5f;
  std::memcpy(kv.k(1, parent.blocks[0], 2, 0), &k0, 4);

  BlockTable child = fork_blocks(parent, kv.pool());
  EXPECT_EQ(kv.pool().ref_count(parent.blocks[0]), 2);
  ASSERT_TRUE(make_writable(child, 0, cache, kv));
  EXPECT_NE(child.blocks[0], parent.blocks[0]);
  float got;
  std::memcpy(&got, kv.k(1, child.blocks[0], 2, 0), 4);
  EXPECT_EQ(got, k0);
  EXPECT_EQ(kv.pool().ref_count(parent.blocks[0]), 1);
  // The parent is now the only holder: no copy.
  const int32_t before = parent.blocks[0];
  ASSERT_TRUE(make_writable(parent, 0, cache, kv));
  EXPECT_EQ(parent.blocks[0], before);
  cache.release(parent);
  cache.release(child);
  EXPECT_EQ(kv.pool().n_free(), 4);
}

}  // namespace
