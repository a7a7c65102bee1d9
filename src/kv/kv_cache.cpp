#include "kv/kv_cache.h"

#include "util/error.h"

namespace squeeze {

KVCache::KVCache(const KVGeometry& g, DeviceMemory& mem) : g_(g), pool_(g.n_blocks), mem_(mem) {
  if (g.type != GGMLType::F16 && g.type != GGMLType::F32) throw Error("KV cache type must be f16 or f32");
  if (g.n_blocks <= 0 || g.block_size <= 0) throw Error("KV cache needs at least one block");
  bytes_ = size_t(g.n_layers) * size_t(g.n_blocks) * size_t(g.n_kv_heads) * size_t(g.block_size) *
           size_t(g.head_dim) * elem_bytes();
  try {
    // Zeroed so that a read of a slot nothing wrote is deterministic rather than garbage.
    k_ = static_cast<uint8_t*>(mem.alloc_zeroed(bytes_));
    v_ = static_cast<uint8_t*>(mem.alloc_zeroed(bytes_));
  } catch (const Error&) {
    if (k_) mem.free(k_);
    throw Error(fmt("cannot allocate %.1f MiB for the KV cache", 2.0 * double(bytes_) / (1 << 20)));
  }
}

KVCache::~KVCache() {
  mem_.free(k_);
  mem_.free(v_);
}

void KVCache::copy_block(int32_t src, int32_t dst) {
  SQZ_ASSERT(src >= 0 && src < g_.n_blocks && dst >= 0 && dst < g_.n_blocks);
  // A block is contiguous within a layer: [head][slot][dim].
  const size_t bytes = size_t(g_.n_kv_heads) * size_t(g_.block_size) * size_t(g_.head_dim) * elem_bytes();
  for (int32_t l = 0; l < g_.n_layers; ++l) {
    mem_.copy(k(l, dst, 0, 0), k(l, src, 0, 0), bytes);
    mem_.copy(v(l, dst, 0, 0), v(l, src, 0, 0), bytes);
  }
}

}  // namespace squeeze
