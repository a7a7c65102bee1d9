#pragma once
// Copy-on-write of shared KV blocks. Parallel samples of one prompt (n > 1) start with the same
// block table, every block held once per sample; before a sample writes into a block that others
// still hold, it takes a private copy, so the prompt's K/V is stored once and only the blocks that
// diverge are duplicated.
#include <cstdint>

#include "kv/block_table.h"
#include "kv/kv_cache.h"
#include "kv/prefix_cache.h"

namespace squeeze {

// A second holder of every block of src (a new sample of the same sequence).
BlockTable fork_blocks(const BlockTable& src, BlockPool& pool);

// Makes block index i of table private to it, copying the K/V when another holder exists.
// Returns false (table unchanged) when no block is available for the copy.
bool make_writable(BlockTable& table, int64_t i, PrefixCache& cache, KVCache& kv);

}  // namespace squeeze
