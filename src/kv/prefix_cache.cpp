#include "kv/prefix_cache.h"

#include "util/error.h"

namespace squeeze {

PrefixCache::PrefixCache(BlockPool& pool, int32_t block_size) : pool_(pool), block_size_(block_size) {
  SQZ_ASSERT(block_size > 0);
}

uint64_t PrefixCache::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  // FNV-1a over the parent hash and the token ids, then a final avalanche (splitmix64) so that
  // nearby inputs land far apart in the table.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix(parent);
  for (int32_t t : tokens) mix(uint64_t(uint32_t(t)));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

int64_t PrefixCache::match(std::span<const int32_t> tokens, BlockTable& table) {
  SQZ_ASSERT(table.blocks.empty());
  const int64_t n_full = (int64_t(tokens.size()) - 1) / block_size_;  // leave the last token out
  uint64_t h = kRootHash;
  int64_t matched = 0;
  for (int64_t b = 0; b < n_full; ++b) {
    ++lookup_blocks_;
    h = chain_hash(h, tokens.subspan(size_t(b * block_size_), size_t(block_size_)));
    auto it = hash_block_.find(h);
    if (it == hash_block_.end()) break;
    const int32_t block = it->second;
    if (auto idle = idle_tick_.find(block); idle != idle_tick_.end()) {
      idle_.erase({idle->second, block});
      idle_tick_.erase(idle);
    }
    pool_.retain(block);
    table.blocks.push_back(block);
    ++hit_blocks_;
    matched += block_size_;
  }
  return matched;
}

void PrefixCache::insert(uint64_t hash, int32_t block) {
  if (hash_block_.count(hash) || block_hash_.count(block)) return;
  pool_.retain(block);
  hash_block_.emplace(hash, block);
  block_hash_.emplace(block, hash);
}

int32_t PrefixCache::allocate() {
  const int32_t b = pool_.allocate();
  if (b >= 0 || idle_.empty()) return b;
  // Evict the least recently used idle block: forget its hash and drop the cache's reference,
  // which returns it to the pool.
  const int32_t victim = idle_.begin()->second;
  idle_.erase(idle_.begin());
  idle_tick_.erase(victim);
  hash_block_.erase(block_hash_.at(victim));
  block_hash_.erase(victim);
  pool_.release(victim);
  return pool_.allocate();
}

void PrefixCache::touch_idle(int32_t block) {
  const uint64_t t = ++tick_;
  idle_.insert({t, block});
  idle_tick_[block] = t;
}

void PrefixCache::release(BlockTable& table) {
  // Release the last block first: when blocks of one sequence become idle together, its earlier
  // blocks (shared by more prompts) are the most recently used and evicted last.
  for (auto it = table.blocks.rbegin(); it != table.blocks.rend(); ++it) {
    const int32_t b = *it;
    pool_.release(b);
    if (block_hash_.count(b) && pool_.ref_count(b) == 1) touch_idle(b);
  }
  table.blocks.clear();
}

}  // namespace squeeze
