#pragma once
// Full KV blocks keyed by a chain hash of their tokens (the hash of the previous block and this
// block's token ids), so a sequence whose prompt starts with tokens some earlier sequence already
// computed reuses those blocks instead of recomputing them.
//
// The cache holds one reference on every block it indexes. A cached block that no sequence holds
// any more is idle: it keeps its K/V and can be matched again, and when the pool runs dry the
// least recently used idle block is evicted (its reference dropped, its id handed out again).
#include <cstdint>
#include <set>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/block_pool.h"
#include "kv/block_table.h"

namespace squeeze {

class PrefixCache {
 public:
  PrefixCache(BlockPool& pool, int32_t block_size);

  static constexpr uint64_t kRootHash = 0x9e3779b97f4a7c15ull;
  // The chain hash of a full block of tokens following a block whose hash is parent.
  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);

  // Appends to table (which must be empty) the cached blocks that hold the longest run of full
  // blocks at the start of tokens, each retained for the caller, and returns how many tokens they
  // cover. Never covers the last token: a sequence needs at least one token to compute logits.
  int64_t match(std::span<const int32_t> tokens, BlockTable& table);

  // Indexes a block that has just been filled with the tokens behind hash. If that hash is already
  // cached (the same prefix computed twice), the existing entry stays.
  void insert(uint64_t hash, int32_t block);

  // A block for a sequence (reference count 1): a free one, else the least recently used idle
  // cached one, evicted. -1 when every block is in use.
  int32_t allocate();
  // Blocks allocate() can still hand out.
  int32_t n_available() const { return pool_.n_free() + int32_t(idle_.size()); }

  // Drops one sequence's reference on each block of table and clears it. Cached blocks left with
  // only the cache's reference become idle (most recently used).
  void release(BlockTable& table);

  int32_t n_cached() const { return int32_t(block_hash_.size()); }
  int32_t n_idle() const { return int32_t(idle_.size()); }
  uint64_t hits() const { return hit_blocks_; }
  uint64_t lookups() const { return lookup_blocks_; }

 private:
  void touch_idle(int32_t block);

  BlockPool& pool_;
  int32_t block_size_;
  std::unordered_map<uint64_t, int32_t> hash_block_;
  std::unordered_map<int32_t, uint64_t> block_hash_;
  std::set<std::pair<uint64_t, int32_t>> idle_;   // (last use tick, block), oldest first
  std::unordered_map<int32_t, uint64_t> idle_tick_;
  uint64_t tick_ = 0;
  uint64_t hit_blocks_ = 0, lookup_blocks_ = 0;
};

}  // namespace squeeze
