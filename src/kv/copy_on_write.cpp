#include "kv/copy_on_write.h"

#include "util/error.h"

namespace squeeze {

BlockTable fork_blocks(const BlockTable& src, BlockPool& pool) {
  for (int32_t b : src.blocks) pool.retain(b);
  return src;
}

bool make_writable(BlockTable& table, int64_t i, PrefixCache& cache, KVCache& kv) {
  SQZ_ASSERT(i >= 0 && i < int64_t(table.blocks.size()));
  const int32_t shared = table.blocks[size_t(i)];
  if (kv.pool().ref_count(shared) == 1) return true;  // already private
  const int32_t copy = cache.allocate();
  if (copy < 0) return false;
  kv.copy_block(shared, copy);
  kv.pool().release(shared);
  table.blocks[size_t(i)] = copy;
  return true;
}

}  // namespace squeeze
