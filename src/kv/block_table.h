#pragma once
// The KV blocks of one sequence, in order: token position p lives in block blocks[p / block_size]
// at slot p % block_size.
#include <cstdint>
#include <vector>

#include "kv/block_pool.h"

namespace squeeze {

struct BlockTable {
  std::vector<int32_t> blocks;

  // Makes room for n_tokens positions, allocating blocks from the pool. Returns false (having
  // allocated nothing new) when the pool cannot supply enough blocks.
  bool reserve(BlockPool& pool, int64_t n_tokens, int32_t block_size);
  // Returns every block to the pool.
  void release_all(BlockPool& pool);
};

}  // namespace squeeze
