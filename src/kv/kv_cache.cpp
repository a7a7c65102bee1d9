#include "kv/kv_cache.h"

#include <new>

#include "util/error.h"

namespace squeeze {

KVCache::KVCache(const KVGeometry& g) : g_(g), pool_(g.n_blocks) {
  if (g.type != GGMLType::F16 && g.type != GGMLType::F32) throw Error("KV cache type must be f16 or f32");
  if (g.n_blocks <= 0 || g.block_size <= 0) throw Error("KV cache needs at least one block");
  const size_t n = size_t(g.n_layers) * size_t(g.n_blocks) * size_t(g.n_kv_heads) * size_t(g.block_size) *
                   size_t(g.head_dim) * elem_bytes();
  try {
    k_.assign(n, 0);
    v_.assign(n, 0);
  } catch (const std::bad_alloc&) {
    throw Error(fmt("cannot allocate %.1f MiB for the KV cache", 2.0 * double(n) / (1 << 20)));
  }
}

}  // namespace squeeze
