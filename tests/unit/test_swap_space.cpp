// SwapSpace: a KV block's K and V of every layer go out to a slot and come back, bit for bit, into
// another block, touching nothing else; slots are counted and reused.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kv/kv_cache.h"
#include "kv/swap_space.h"
#include "util/error.h"

using namespace squeeze;

namespace {

KVGeometry geometry() {
  KVGeometry g;
  g.n_layers = 3;
  g.n_kv_heads = 2;
  g.head_dim = 8;
  g.block_size = 4;
  g.n_blocks = 6;
  g.type = GGMLType::F32;
  return g;
}

// A value that names (K or V, layer, block, slot, head, element).
float tag(int kv, int l, int b, int s, int h, int e) { return float(((((kv * 10 + l) * 10 + b) * 10 + s) * 10 + h) * 10 + e); }

void fill(KVCache& kv) {
  const KVGeometry& g = kv.geometry();
  for (int l = 0; l < g.n_layers; ++l)
    for (int b = 0; b < g.n_blocks; ++b)
      for (int s = 0; s < g.block_size; ++s)
        for (int h = 0; h < g.n_kv_heads; ++h)
          for (int e = 0; e < g.head_dim; ++e) {
            reinterpret_cast<float*>(kv.k(l, b, s, h))[e] = tag(0, l, b, s, h, e);
            reinterpret_cast<float*>(kv.v(l, b, s, h))[e] = tag(1, l, b, s, h, e);
          }
}

}  // namespace

TEST(SwapSpace, BlockRoundTripIntoAnotherBlock) {
  KVCache kv(geometry());
  fill(kv);
  SwapSpace swap(kv, 3 * 2 * 3 * 2 * 4 * 8 * sizeof(float) + 100);  // room for 3 slots
  EXPECT_EQ(swap.n_slots(), 3);
  EXPECT_EQ(swap.slot_bytes(), size_t(2 * 3 * 2 * 4 * 8 * sizeof(float)));
  const int32_t slot = swap.store(2);
  EXPECT_EQ(swap.n_free(), 2);
  swap.load(slot, 5);
  EXPECT_EQ(swap.n_free(), 3);
  const KVGeometry& g = kv.geometry();
  for (int l = 0; l < g.n_layers; ++l)
    for (int b = 0; b < g.n_blocks; ++b)
      for (int s = 0; s < g.block_size; ++s)
        for (int h = 0; h < g.n_kv_heads; ++h)
          for (int e = 0; e < g.head_dim; ++e) {
            const int from = b == 5 ? 2 : b;  // block 5 now holds block 2's K/V; the rest unchanged
            EXPECT_EQ(reinterpret_cast<const float*>(kv.k(l, b, s, h))[e], tag(0, l, from, s, h, e));
            EXPECT_EQ(reinterpret_cast<const float*>(kv.v(l, b, s, h))[e], tag(1, l, from, s, h, e));
          }
}

TEST(SwapSpace, SlotsAreCountedAndReused) {
  KVCache kv(geometry());
  SwapSpace swap(kv, size_t(2 * 2 * 3 * 2 * 4 * 8) * sizeof(float));
  EXPECT_EQ(swap.n_slots(), 2);
  const int32_t a = swap.store(0), b = swap.store(1);
  EXPECT_NE(a, b);
  EXPECT_EQ(swap.n_free(), 0);
  EXPECT_THROW(swap.store(2), Error);
  swap.free(a);
  EXPECT_EQ(swap.store(3), a);
}

TEST(SwapSpace, SmallerThanOneBlockIsAnError) {
  KVCache kv(geometry());
  EXPECT_THROW(SwapSpace(kv, 100), Error);
}
