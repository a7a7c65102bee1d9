#include "kv/block_pool.h"

#include "util/error.h"

namespace squeeze {

BlockPool::BlockPool(int32_t n_blocks) : refs_(size_t(n_blocks), 0) {
  free_.reserve(size_t(n_blocks));
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t BlockPool::allocate() {
  if (free_.empty()) return -1;
  int32_t b = free_.back();
  free_.pop_back();
  refs_[size_t(b)] = 1;
  return b;
}

void BlockPool::retain(int32_t block) {
  SQZ_ASSERT(block >= 0 && block < n_blocks() && refs_[size_t(block)] > 0);
  ++refs_[size_t(block)];
}

void BlockPool::release(int32_t block) {
  SQZ_ASSERT(block >= 0 && block < n_blocks() && refs_[size_t(block)] > 0);
  if (--refs_[size_t(block)] == 0) free_.push_back(block);
}

}  // namespace squeeze
