#include "kv/swap_space.h"

#include <algorithm>

#include "util/error.h"

namespace squeeze {

SwapSpace::SwapSpace(KVCache& kv, size_t bytes) : kv_(kv) {
  const KVGeometry& g = kv.geometry();
  n_layers_ = g.n_layers;
  layer_bytes_ = size_t(g.n_kv_heads) * size_t(g.block_size) * size_t(g.head_dim) * kv.elem_bytes();
  // The cache's layout is [layer][block][head][slot][dim]: a block of one layer is contiguous.
  layer_pitch_ = layer_bytes_ * size_t(g.n_blocks);
  if (slot_bytes() == 0 || bytes < slot_bytes())
    throw Error(fmt("the swap space (%.1f MiB) is smaller than one KV block (%.2f MiB)", double(bytes) / 1048576.0,
                    double(slot_bytes()) / 1048576.0));
  n_slots_ = int32_t(std::min<size_t>(bytes / slot_bytes(), size_t(1) << 30));
  host_ = static_cast<uint8_t*>(kv.memory().alloc_host(size_t(n_slots_) * slot_bytes()));
  free_.reserve(size_t(n_slots_));
  for (int32_t s = n_slots_ - 1; s >= 0; --s) free_.push_back(s);
}

SwapSpace::~SwapSpace() { kv_.memory().free_host(host_); }

int32_t SwapSpace::store(int32_t block) {
  if (free_.empty()) throw Error("swap space: no free slot");
  const int32_t slot = free_.back();
  free_.pop_back();
  DeviceMemory& m = kv_.memory();
  m.to_host_2d(slot_k(slot), layer_bytes_, kv_.k(0, block, 0, 0), layer_pitch_, layer_bytes_, size_t(n_layers_));
  m.to_host_2d(slot_v(slot), layer_bytes_, kv_.v(0, block, 0, 0), layer_pitch_, layer_bytes_, size_t(n_layers_));
  return slot;
}

void SwapSpace::load(int32_t slot, int32_t block) {
  DeviceMemory& m = kv_.memory();
  m.from_host_2d(kv_.k(0, block, 0, 0), layer_pitch_, slot_k(slot), layer_bytes_, layer_bytes_, size_t(n_layers_));
  m.from_host_2d(kv_.v(0, block, 0, 0), layer_pitch_, slot_v(slot), layer_bytes_, layer_bytes_, size_t(n_layers_));
  free(slot);
}

void SwapSpace::free(int32_t slot) { free_.push_back(slot); }

}  // namespace squeeze
