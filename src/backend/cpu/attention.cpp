// Attention over the paged KV cache on the CPU: one (token, query head) pair per work item; its
// keys are visited one KV block (tile) at a time with an online softmax, so no score matrix is
// ever stored and memory does not grow with the square of the context.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/cpu_backend.h"
#include "util/fp16.h"

namespace squeeze {

namespace {

// f16 -> f32 by table: the attention loop converts every cached element it reads.
const float* f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = f16_to_f32(uint16_t(i));
    return t;
  }();
  return table.data();
}

inline void load_row(const uint8_t* src, bool f16, int32_t n, float* dst) {
  if (f16) {
    const float* tab = f16_table();
    const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
    for (int32_t i = 0; i < n; ++i) dst[i] = tab[h[i]];
  } else {
    std::memcpy(dst, src, size_t(n) * sizeof(float));
  }
}

}  // namespace

void CpuBackend::kv_write(KVCache& kv, int32_t layer, const float* k, const float* v, const TokenPlacement& tp) {
  const KVGeometry& g = kv.geometry();
  const int64_t row = int64_t(g.n_kv_heads) * g.head_dim;
  const bool f16 = g.type == GGMLType::F16;
  for (int64_t t = 0; t < tp.n_tokens; ++t) {
    const int32_t p = tp.pos[t];
    const int32_t block = tp.blocks[t][p / g.block_size], slot = p % g.block_size;
    for (int32_t h = 0; h < g.n_kv_heads; ++h) {
      const float* ks = k + t * row + int64_t(h) * g.head_dim;
      const float* vs = v + t * row + int64_t(h) * g.head_dim;
      uint8_t* kd = kv.k(layer, block, slot, h);
      uint8_t* vd = kv.v(layer, block, slot, h);
      if (f16) {
        auto* kh = reinterpret_cast<uint16_t*>(kd);
        auto* vh = reinterpret_cast<uint16_t*>(vd);
        for (int32_t i = 0; i < g.head_dim; ++i) {
          kh[i] = f32_to_f16(ks[i]);
          vh[i] = f32_to_f16(vs[i]);
        }
      } else {
        std::memcpy(kd, ks, size_t(g.head_dim) * 4);
        std::memcpy(vd, vs, size_t(g.head_dim) * 4);
      }
    }
  }
}

void CpuBackend::attention(const KVCache& kv, const AttentionParams& ap, const float* q, const TokenPlacement& tp,
                           float* out) {
  if (numerics_ == Numerics::llamacpp) return attention_llamacpp(kv, ap, q, tp, out);
  const KVGeometry& g = kv.geometry();
  const int32_t d = ap.head_dim, bs = g.block_size, group = ap.n_head / ap.n_head_kv;
  const bool f16 = g.type == GGMLType::F16;
  const size_t need = size_t(d) * 3 + size_t(bs);
  pool_.parallel_for(tp.n_tokens * ap.n_head, [&](int64_t i0, int64_t i1, int ti) {
    std::vector<float>& scratch = thread_scratch_[size_t(ti)];
    if (scratch.size() < need) scratch.resize(need);
    float* qv = scratch.data();
    float* acc = qv + d;
    float* row = acc + d;
    float* s = row + d;
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t t = item / ap.n_head;
      const int32_t h = int32_t(item % ap.n_head), hk = h / group;
      const int32_t pos = tp.pos[t];
      const int32_t lo = ap.window > 0 ? std::max(0, pos - ap.window + 1) : 0;
      const float* qs = q + (t * ap.n_head + h) * d;
      // With an F16 cache the query is rounded to F16 too, as llama.cpp's CPU attention does.
      for (int32_t i = 0; i < d; ++i) qv[i] = f16 ? f16_to_f32(f32_to_f16(qs[i])) : qs[i];
      std::fill(acc, acc + d, 0.0f);
      float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
      for (int32_t b = lo / bs; b <= pos / bs; ++b) {
        const int32_t block = tp.blocks[t][b];
        const int32_t j0 = std::max(lo, b * bs) - b * bs, j1 = std::min(pos, b * bs + bs - 1) - b * bs;
        float tile_max = -std::numeric_limits<float>::infinity();
        for (int32_t j = j0; j <= j1; ++j) {
          load_row(kv.k(ap.layer, block, j, hk), f16, d, row);
          float dot = 0.0f;
          for (int32_t i = 0; i < d; ++i) dot += qv[i] * row[i];
          s[j] = dot * ap.scale;
          tile_max = std::max(tile_max, s[j]);
        }
        const float m_new = std::max(m, tile_max);
        const float corr = std::exp(m - m_new);  // 0 on the first tile (m = -inf)
        l *= corr;
        for (int32_t i = 0; i < d; ++i) acc[i] *= corr;
        for (int32_t j = j0; j <= j1; ++j) {
          const float p = std::exp(s[j] - m_new);
          l += p;
          load_row(kv.v(ap.layer, block, j, hk), f16, d, row);
          for (int32_t i = 0; i < d; ++i) acc[i] += p * row[i];
        }
        m = m_new;
      }
      float* o = out + (t * ap.n_head + h) * d;
      const float inv = 1.0f / l;
      for (int32_t i = 0; i < d; ++i) o[i] = acc[i] * inv;
    }
  });
}

}  // namespace squeeze
