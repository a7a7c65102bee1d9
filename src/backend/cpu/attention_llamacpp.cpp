// Attention with llama.cpp's CPU flash-attention arithmetic (Numerics::llamacpp).
//
// llama.cpp (ggml-cpu ops.cpp, flash_attn_ext) has two paths, chosen by the number of query
// tokens in the batch:
//   - fewer than 64 (decode, short prompts): one query at a time. Q is converted to the cache
//     type (F16), each score is an F16 dot product (4 x 8 FMA lanes), and the online softmax runs
//     key by key; with an F16 cache the output accumulator itself is F16 (rounded after every
//     key), and scores use expf.
//   - 64 or more: queries in tiles, keys in tiles of 64 cells. Q stays F32; each score is a
//     sequential FMA chain over the head dimension; the softmax maximum is updated per key tile
//     and the probabilities come from ggml's vectorized exp approximation, summed 8 at a time
//     into a double; V is accumulated in F32 with one FMA per key.
// Not reproduced: llama.cpp's split-KV decode path (one query, 512+ KV cells), whose partial
// sums depend on the thread count, and key orders other than position order (ring-buffer SWA
// caches that wrapped around).
//
// Only the per-query arithmetic has to match llama.cpp, not how work is shared: the tiled path
// converts (and transposes) each 64-key tile once and runs every query of a run of tokens and
// of one KV head's query heads against it. The inner loops live in attention_llamacpp_kernels.*
// (AVX2 when the CPU has it, portable scalar otherwise, same bits).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "backend/cpu/attention_llamacpp_kernels.h"
#include "backend/cpu/cpu_backend.h"

namespace squeeze {

namespace {

using attn_llamacpp::Kernels;
using attn_llamacpp::kMaxBatch;
using attn_llamacpp::kTileKV;

constexpr int64_t kTiledMinQueries = 64;  // GGML_FA_TILE_Q: batches this large take the tiled path
constexpr float kInf = std::numeric_limits<float>::infinity();

// n floats of v, 64-byte aligned (v only ever grows, so a warm buffer is reused as is).
float* aligned_scratch(std::vector<float>& v, size_t n) {
  if (v.size() < n + 16) v.resize(n + 16);
  const auto a = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float*>((a + 63) & ~uintptr_t(63));
}

struct Setup {
  const KVCache& kv;
  const AttentionParams& ap;
  const TokenPlacement& tp;
  const Kernels& kn;
  int32_t d, bs, group;
  bool f16;
  float s_scale;  // Gemma 3 in llama.cpp scales Q before attention and passes a score scale of 1

  int32_t lo(int64_t t) const { return ap.window > 0 ? std::max(0, tp.pos[t] - ap.window + 1) : 0; }
  void load_q(const float* q, int64_t t, int32_t h, float* dst) const {
    const float* qs = q + (t * ap.n_head + h) * d;
    for (int32_t i = 0; i < d; ++i) dst[i] = ap.scale_q ? qs[i] * ap.scale : qs[i];
  }
  void store_out(const float* acc, float S, int64_t t, int32_t h, float* out) const {
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    float* o = out + (t * ap.n_head + h) * d;
    for (int32_t i = 0; i < d; ++i) o[i] = acc[i] * inv;
  }
};

// The one-query path for query head h of token t; buf holds 3 * d floats plus one per key.
void attend_one(const Setup& c, const float* q, int64_t t, int32_t h, float* buf, float* out) {
  const int32_t d = c.d, hk = h / c.group, layer = c.ap.layer, pos = c.tp.pos[t], lo = c.lo(t);
  const int32_t* blocks = c.tp.blocks[t];
  float* qv = buf;
  float* acc = qv + d;
  uint16_t* acc16 = reinterpret_cast<uint16_t*>(acc + d);  // d halves fit in d floats
  float* scores = acc + 2 * d;
  c.load_q(q, t, h, qv);
  if (c.f16) c.kn.round_f16(qv, d);
  // All scores first: they do not depend on the softmax state, and independent dot products
  // overlap in the pipeline where one per key in the softmax loop would wait on the last.
  for (int32_t p = lo; p <= pos; ++p) {
    const uint8_t* kr = c.kv.k(layer, blocks[p / c.bs], p % c.bs, hk);
    scores[p - lo] = c.f16 ? c.kn.dot_f16(reinterpret_cast<const uint16_t*>(kr), qv, d)
                           : c.kn.dot_f32(reinterpret_cast<const float*>(kr), qv, d);
  }
  std::fill(acc, acc + d, 0.0f);
  std::fill(acc16, acc16 + d, uint16_t(0));
  float M = -kInf, S = 0.0f;
  for (int32_t p = lo; p <= pos; ++p) {
    float sc = scores[p - lo] * c.s_scale;
    sc += 0.0f;  // the (zero) mask value
    float ms = 1.0f, vs = 1.0f;
    if (sc > M) {
      const float m_old = M;
      M = sc;
      ms = std::exp(m_old - M);
      if (c.f16) c.kn.scale_f16(acc16, ms, d);
      else
        for (int32_t i = 0; i < d; ++i) acc[i] = acc[i] * ms;
    } else {
      vs = std::exp(sc - M);
    }
    const uint8_t* vr = c.kv.v(layer, blocks[p / c.bs], p % c.bs, hk);
    if (c.f16) c.kn.mad_f16(acc16, reinterpret_cast<const uint16_t*>(vr), vs, d);
    else c.kn.mad_f32(acc, reinterpret_cast<const float*>(vr), vs, d);
    S = S * ms + vs;
  }
  if (c.f16) c.kn.f16_to_f32_row(acc16, acc, d);
  c.store_out(acc, S, t, h, out);
}

// Scratch of the tiled path for a run of n_tok tokens, in floats.
size_t tiled_scratch(int32_t d, int32_t group, int64_t n_tok) {
  const size_t nq = size_t(n_tok) * size_t(group);
  return 2 * size_t(kTileKV) * size_t(d) + 2 * nq * size_t(d) + size_t(kMaxBatch) * kTileKV + 2 * nq;
}

// The tiled path for tokens [ta, tb), which share one block table, and the query heads of KV
// head hk. Queries are numbered (t - ta) * group + r for query head hk * group + r.
class TiledRun {
 public:
  TiledRun(const Setup& c, int64_t ta, int64_t tb, int32_t hk, float* buf)
      : c_(c), ta_(ta), tb_(tb), hk_(hk), nq_(int32_t(tb - ta) * c.group) {
    const size_t td = size_t(kTileKV) * size_t(c.d), qd = size_t(nq_) * size_t(c.d);
    kt_ = buf;
    vt_ = kt_ + td;
    q_ = vt_ + td;
    acc_ = q_ + qd;
    s_ = acc_ + qd;
    m_ = s_ + size_t(kMaxBatch) * kTileKV;
    sum_ = m_ + nq_;
  }

  void run(const float* q, float* out) {
    const int32_t d = c_.d;
    int32_t lo_min = INT_MAX, pos_max = -1;
    for (int64_t t = ta_; t < tb_; ++t) {
      for (int32_t r = 0; r < c_.group; ++r) {
        const int32_t qi = query(t, r);
        c_.load_q(q, t, hk_ * c_.group + r, q_ + size_t(qi) * d);
        std::fill(acc_ + size_t(qi) * d, acc_ + size_t(qi + 1) * d, 0.0f);
        m_[qi] = -kInf;
        sum_[qi] = 0.0f;
      }
      lo_min = std::min(lo_min, c_.lo(t));
      pos_max = std::max(pos_max, c_.tp.pos[t]);
    }
    for (int32_t c0 = lo_min / kTileKV * kTileKV; c0 <= pos_max; c0 += kTileKV) tile(c0);
    for (int64_t t = ta_; t < tb_; ++t)
      for (int32_t r = 0; r < c_.group; ++r) {
        const int32_t qi = query(t, r);
        c_.store_out(acc_ + size_t(qi) * d, sum_[qi], t, hk_ * c_.group + r, out);
      }
  }

 private:
  int32_t query(int64_t t, int32_t r) const { return int32_t(t - ta_) * c_.group + r; }

  // Token t's keys in the tile at c0, as tile offsets [j0, j1] (empty when j0 > j1).
  void range(int64_t t, int32_t c0, int32_t& j0, int32_t& j1) const {
    j0 = std::max(c_.lo(t), c0) - c0;
    j1 = std::min(c_.tp.pos[t], c0 + kTileKV - 1) - c0;
  }

  void tile(int32_t c0) {
    // Only the cells some query attends to are read: others may lie outside the block table.
    uint64_t need = 0;
    for (int64_t t = ta_; t < tb_; ++t) {
      int32_t j0, j1;
      range(t, c0, j0, j1);
      if (j0 <= j1) need |= (~uint64_t(0) >> (63 - (j1 - j0))) << j0;
    }
    if (!need) return;
    const int32_t d = c_.d, layer = c_.ap.layer;
    const int32_t* blocks = c_.tp.blocks[ta_];
    const void* krow[kTileKV];
    for (int32_t j = 0; j < kTileKV; ++j) {
      krow[j] = nullptr;
      vrow_[j] = nullptr;
      if (!(need >> j & 1)) continue;
      const int32_t p = c0 + j, block = blocks[p / c_.bs], slot = p % c_.bs;
      krow[j] = c_.kv.k(layer, block, slot, hk_);
      const uint8_t* vr = c_.kv.v(layer, block, slot, hk_);
      if (c_.f16) {
        float* dst = vt_ + size_t(j) * d;
        c_.kn.f16_to_f32_row(reinterpret_cast<const uint16_t*>(vr), dst, d);
        vrow_[j] = dst;
      } else {
        vrow_[j] = reinterpret_cast<const float*>(vr);
      }
    }
    c_.kn.k_tile(krow, c_.f16, d, kt_);

    // Batches of consecutive queries with the same key range: the heads of one token, or
    // neighbouring tokens whose range covers the whole tile.
    nb_ = 0;
    for (int64_t t = ta_; t < tb_; ++t) {
      int32_t j0, j1;
      range(t, c0, j0, j1);
      if (j0 > j1) continue;
      for (int32_t r = 0; r < c_.group; ++r) {
        if (nb_ == kMaxBatch || (nb_ > 0 && (j0 != bj0_ || j1 != bj1_))) flush();
        bj0_ = j0;
        bj1_ = j1;
        batch_[nb_++] = query(t, r);
      }
    }
    flush();
  }

  // Scores, online softmax update and V accumulation of the pending batch.
  void flush() {
    if (nb_ == 0) return;
    const int32_t d = c_.d;
    const float* qp[kMaxBatch];
    for (int b = 0; b < nb_; ++b) qp[b] = q_ + size_t(batch_[b]) * d;
    c_.kn.scores(qp, nb_, kt_, d, bj0_, bj1_, s_);
    float* accp[kMaxBatch];
    const float* pp[kMaxBatch];
    int na = 0;
    for (int b = 0; b < nb_; ++b) {
      const int32_t qi = batch_[b];
      float* s = s_ + b * kTileKV;
      float tile_max = -kInf;
      for (int j = 0; j < kTileKV; ++j) {
        if (j < bj0_ || j > bj1_) {
          s[j] = -kInf;  // masked or padding
        } else {
          s[j] = s[j] * c_.s_scale;
          s[j] += 0.0f;
        }
        tile_max = tile_max > s[j] ? tile_max : s[j];
      }
      if (tile_max == -kInf) continue;
      float* acc = acc_ + size_t(qi) * d;
      const float m_new = std::fmax(m_[qi], tile_max);
      if (m_new > m_[qi]) {
        const float ms = std::exp(m_[qi] - m_new);
        for (int32_t i = 0; i < d; ++i) acc[i] = acc[i] * ms;
        sum_[qi] *= ms;
      }
      m_[qi] = m_new;
      const double sum = c_.kn.exp_tile(s, m_new);
      sum_[qi] = float(double(sum_[qi]) + sum);
      accp[na] = acc;
      pp[na++] = s;
    }
    if (na) c_.kn.accumulate_v(accp, pp, na, vrow_, bj0_, bj1_, d);
    nb_ = 0;
  }

  const Setup& c_;
  const int64_t ta_, tb_;
  const int32_t hk_, nq_;
  float *kt_, *vt_, *q_, *acc_, *s_, *m_, *sum_;  // m_, sum_: each query's running max and sum
  const float* vrow_[kTileKV];
  int32_t batch_[kMaxBatch];
  int nb_ = 0;
  int32_t bj0_ = 0, bj1_ = -1;
};

}  // namespace

void CpuBackend::attention_llamacpp(const KVCache& kv, const AttentionParams& ap, const float* q,
                                    const TokenPlacement& tp, float* out) {
  const KVGeometry& g = kv.geometry();
  const Setup c{kv, ap, tp, attn_llamacpp::kernels(), ap.head_dim, g.block_size, ap.n_head / ap.n_head_kv,
                g.type == GGMLType::F16, ap.scale_q ? 1.0f : ap.scale};
  const int64_t T = tp.n_tokens;
  if (T < kTiledMinQueries && !ap.batch_invariant) {
    int32_t max_keys = 0;
    for (int64_t t = 0; t < T; ++t) max_keys = std::max(max_keys, tp.pos[t] - c.lo(t) + 1);
    pool_.parallel_for(T * ap.n_head, [&](int64_t i0, int64_t i1, int ti) {
      float* buf = aligned_scratch(thread_scratch_[size_t(ti)], 3 * size_t(c.d) + size_t(max_keys));
      for (int64_t item = i0; item < i1; ++item) attend_one(c, q, item / ap.n_head, int32_t(item % ap.n_head), buf, out);
    });
    return;
  }
  // Items are (run of up to R tokens, KV head). R trades tile reuse (every tile is converted once
  // per item) against load balance: aim for at least 16 items per thread.
  const int64_t R = std::clamp<int64_t>(T * ap.n_head_kv / (int64_t(pool_.size()) * 16), 4, 32);
  const int64_t n_runs = (T + R - 1) / R, n_items = n_runs * ap.n_head_kv;
  pool_.parallel_for(n_items, [&](int64_t i0, int64_t i1, int ti) {
    float* buf = aligned_scratch(thread_scratch_[size_t(ti)], tiled_scratch(c.d, c.group, R));
    for (int64_t item = i0; item < i1; ++item) {
      // Causal attention makes later tokens dearer. The pool hands out contiguous ranges of items,
      // so interleave cheap and dear runs: 0, n-1, 1, n-2, ...
      const int64_t z = item / ap.n_head_kv;
      const int64_t run = z % 2 == 0 ? z / 2 : n_runs - 1 - z / 2;
      const int32_t hk = int32_t(item % ap.n_head_kv);
      const int64_t t_end = std::min(T, (run + 1) * R);
      // A tile is shared only by tokens of one sequence (one block table); a run that straddles
      // sequences is split.
      for (int64_t ta = run * R, tb; ta < t_end; ta = tb) {
        for (tb = ta + 1; tb < t_end && tp.blocks[tb] == tp.blocks[ta];) ++tb;
        TiledRun(c, ta, tb, hk, buf).run(q, out);
      }
    }
  });
}

}  // namespace squeeze
