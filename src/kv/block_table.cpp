#include "kv/block_table.h"

namespace squeeze {

bool BlockTable::reserve(BlockPool& pool, int64_t n_tokens, int32_t block_size) {
  const size_t need = size_t((n_tokens + block_size - 1) / block_size);
  if (need <= blocks.size()) return true;
  if (size_t(pool.n_free()) < need - blocks.size()) return false;
  while (blocks.size() < need) blocks.push_back(pool.allocate());
  return true;
}

void BlockTable::release_all(BlockPool& pool) {
  for (int32_t b : blocks) pool.release(b);
  blocks.clear();
}

}  // namespace squeeze
