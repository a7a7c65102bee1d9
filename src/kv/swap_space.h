#pragma once
// Host memory for the KV blocks of preempted sequences (page-locked when the cache is on a GPU):
// a sequence pushed out to make room keeps its K/V here and gets it back when it runs again,
// instead of recomputing its tokens. A slot holds one KV block of every layer, K and V.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv/kv_cache.h"

namespace squeeze {

class SwapSpace {
 public:
  // As many slots as fit in `bytes` (at least one block's worth, else Error).
  SwapSpace(KVCache& kv, size_t bytes);
  ~SwapSpace();
  SwapSpace(const SwapSpace&) = delete;
  SwapSpace& operator=(const SwapSpace&) = delete;

  int32_t n_slots() const { return n_slots_; }
  int32_t n_free() const { return int32_t(free_.size()); }
  size_t slot_bytes() const { return 2 * layer_bytes_ * size_t(n_layers_); }

  // Copies KV block `block` into a free slot and returns the slot (the caller checked n_free()).
  int32_t store(int32_t block);
  // Copies slot back into KV block `block` and frees the slot.
  void load(int32_t slot, int32_t block);
  void free(int32_t slot);

 private:
  uint8_t* slot_k(int32_t slot) const { return host_ + size_t(slot) * slot_bytes(); }
  uint8_t* slot_v(int32_t slot) const { return slot_k(slot) + layer_bytes_ * size_t(n_layers_); }

  KVCache& kv_;
  size_t layer_bytes_ = 0;  // one block of one layer, K or V
  size_t layer_pitch_ = 0;  // from a block in one layer to the same block in the next
  int32_t n_layers_ = 0, n_slots_ = 0;
  uint8_t* host_ = nullptr;
  std::vector<int32_t> free_;
};

}  // namespace squeeze
