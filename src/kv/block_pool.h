#pragma once
// Reference-counted ids of fixed-size KV blocks. The pool only hands out ids; the K/V storage the
// ids index lives in KVCache. A block shared by several sequences (a common prefix, or n > 1
// samples of one prompt) has one reference per holder and returns to the free list when the last
// holder releases it.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace squeeze {

class BlockPool {
 public:
  explicit BlockPool(int32_t n_blocks);

  // A free block with reference count 1, or -1 when none is left.
  int32_t allocate();
  void retain(int32_t block);
  void release(int32_t block);

  int32_t ref_count(int32_t block) const { return refs_[size_t(block)]; }
  int32_t n_blocks() const { return int32_t(refs_.size()); }
  int32_t n_free() const { return int32_t(free_.size()); }

 private:
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first
};

}  // namespace squeeze
