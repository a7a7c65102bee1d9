#pragma once
// Paged K/V storage: for every layer, n_blocks blocks of block_size token slots, each slot holding
// n_kv_heads x head_dim values of K and of V. A block id from BlockPool indexes the same block in
// every layer, so one BlockTable serves the whole model. Elements are F16 (the default, as
// llama.cpp) or F32 (for exact comparison with float32 references).
#include <cstdint>

#include "kv/block_pool.h"
#include "quant/ggml_type.h"
#include "util/device_memory.h"

namespace squeeze {

struct KVGeometry {
  int32_t n_layers = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;
  int32_t n_blocks = 0;
  GGMLType type = GGMLType::F16;  // F16 or F32
};

class KVCache {
 public:
  // Allocates everything up front in mem (the memory of the backend that runs the model); throws
  // Error if it can't.
  explicit KVCache(const KVGeometry& g, DeviceMemory& mem = host_memory());
  ~KVCache();
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;

  const KVGeometry& geometry() const { return g_; }
  BlockPool& pool() { return pool_; }
  size_t bytes() const { return 2 * bytes_; }
  DeviceMemory& memory() const { return mem_; }
  // The K and V storage, laid out as offset() says.
  uint8_t* k_data() const { return k_; }
  uint8_t* v_data() const { return v_; }
  size_t elem_bytes() const { return g_.type == GGMLType::F16 ? 2 : 4; }

  // Address of the head_dim values of (layer, block, slot, kv_head).
  uint8_t* k(int32_t layer, int32_t block, int32_t slot, int32_t head) { return k_ + offset(layer, block, slot, head); }
  uint8_t* v(int32_t layer, int32_t block, int32_t slot, int32_t head) { return v_ + offset(layer, block, slot, head); }
  const uint8_t* k(int32_t layer, int32_t block, int32_t slot, int32_t head) const { return k_ + offset(layer, block, slot, head); }
  const uint8_t* v(int32_t layer, int32_t block, int32_t slot, int32_t head) const { return v_ + offset(layer, block, slot, head); }

  // Copies the K/V of block src into block dst in every layer (copy-on-write of a shared block).
  void copy_block(int32_t src, int32_t dst);

 private:
  size_t offset(int32_t layer, int32_t block, int32_t slot, int32_t head) const {
    // [layer][block][head][slot][dim]: one head's keys of a block are contiguous, which is what
    // the attention loop streams through.
    return ((((size_t(layer) * size_t(g_.n_blocks) + size_t(block)) * size_t(g_.n_kv_heads) + size_t(head)) *
                 size_t(g_.block_size) + size_t(slot)) * size_t(g_.head_dim)) * elem_bytes();
  }
  KVGeometry g_;
  BlockPool pool_;
  DeviceMemory& mem_;
  size_t bytes_ = 0;  // of K, and of V
  uint8_t* k_ = nullptr;
  uint8_t* v_ = nullptr;
};

}  // namespace squeeze
