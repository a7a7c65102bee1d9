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
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/cpu_backend.h"
#include "util/fp16.h"

// One source, two builds: FMA-capable x86 gets inline FMAs (and vectorized lane loops), any
// other CPU calls libm's fma, which rounds identically. -ffp-contract=off keeps everything else
// unfused, so both clones produce the same bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SQZ_FMA_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define SQZ_FMA_CLONES
#endif

namespace squeeze {

namespace {

constexpr int kTileKV = 64;    // llama.cpp's GGML_FA_TILE_KV
constexpr int64_t kTiledMinQueries = 64;  // GGML_FA_TILE_Q: batches this large take the tiled path
constexpr float kInf = std::numeric_limits<float>::infinity();

inline float f16_round(float x) { return f16_to_f32(f32_to_f16(x)); }

void load_row(const uint8_t* src, bool f16, int32_t n, float* dst) {
  if (f16) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
    for (int32_t i = 0; i < n; ++i) dst[i] = f16_to_f32(h[i]);
  } else {
    std::memcpy(dst, src, size_t(n) * sizeof(float));
  }
}

// ggml_vec_dot_f16/_f32 with 8-wide AVX: four 8-lane FMA accumulators over runs of 32, reduced
// as (a0 + a2) + (a1 + a3) per lane, then lanes (l + l+4), then (t0 + t1) + (t2 + t3); the tail
// (n % 32) is added in double.
SQZ_FMA_CLONES float dot_ggml_f32(const float* x, const float* y, int32_t n) {
  float acc[4][8] = {};
  int32_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 8; ++l) acc[j][l] = std::fma(x[i + 8 * j + l], y[i + 8 * j + l], acc[j][l]);
  float t[4];
  for (int l = 0; l < 4; ++l)
    t[l] = ((acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l])) + ((acc[0][l + 4] + acc[2][l + 4]) + (acc[1][l + 4] + acc[3][l + 4]));
  double sum = double((t[0] + t[1]) + (t[2] + t[3]));
  for (; i < n; ++i) sum += double(x[i] * y[i]);
  return float(sum);
}

// ggml's vectorized expf (ggml_v_expf), one lane: exp(x) = 2^n * (1 + p(b)) with n = round(x /
// ln 2) and b the reduced argument; lanes with |n| > 126 are rebuilt from two scale factors.
inline uint32_t bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }
inline float from_bits(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }

SQZ_FMA_CLONES float ggml_expf_lane(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const uint32_t e = bits(z) << 23;
  const float k = from_bits(e + bits(1.0f));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);
  if (!(std::fabs(n) > 126.0f)) return std::fma(k, j, k);
  const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = from_bits(g + 0x7f000000u);
  const float s2 = from_bits(e - g);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  return std::fma(s2, j, s2) * s1;
}

// Scores of one query against up to 64 keys (rows of kt, transposed: kt[d * 64 + j]), each a
// sequential FMA chain over d as in llama.cpp's tiled GEMM.
SQZ_FMA_CLONES void tile_scores(const float* q, const float* kt, int32_t d, float* s) {
  float acc[kTileKV] = {};
  for (int32_t i = 0; i < d; ++i)
    for (int j = 0; j < kTileKV; ++j) acc[j] = std::fma(kt[i * kTileKV + j], q[i], acc[j]);
  std::memcpy(s, acc, sizeof(acc));
}

SQZ_FMA_CLONES void axpy_fma(float* acc, const float* v, float p, int32_t n) {
  for (int32_t i = 0; i < n; ++i) acc[i] = std::fma(v[i], p, acc[i]);
}

// ggml_vec_mad_f16: y = f16(fma(x, p, y)) over runs of 32, unfused for the tail.
SQZ_FMA_CLONES void axpy_f16(uint16_t* acc, const float* v, float p, int32_t n) {
  const int32_t np = n & ~31;
  for (int32_t i = 0; i < np; ++i) acc[i] = f32_to_f16(std::fma(v[i], p, f16_to_f32(acc[i])));
  for (int32_t i = np; i < n; ++i) acc[i] = f32_to_f16(f16_to_f32(acc[i]) + v[i] * p);
}

// ggml_vec_mad_f32: fma over runs of 32, unfused for the tail.
SQZ_FMA_CLONES void axpy_f32(float* acc, const float* v, float p, int32_t n) {
  const int32_t np = n & ~31;
  for (int32_t i = 0; i < np; ++i) acc[i] = std::fma(v[i], p, acc[i]);
  for (int32_t i = np; i < n; ++i) acc[i] = acc[i] + v[i] * p;
}

}  // namespace

void CpuBackend::attention_llamacpp(const KVCache& kv, const AttentionParams& ap, const float* q,
                                    const TokenPlacement& tp, float* out) {
  const KVGeometry& g = kv.geometry();
  const int32_t d = ap.head_dim, bs = g.block_size, group = ap.n_head / ap.n_head_kv;
  const bool f16 = g.type == GGMLType::F16;
  const bool tiled = tp.n_tokens >= kTiledMinQueries;
  // Gemma 3 in llama.cpp scales Q before attention and passes a score scale of 1.
  const float s_scale = ap.scale_q ? 1.0f : ap.scale;
  const size_t need = size_t(d) * 4 + size_t(kTileKV) * size_t(d) + kTileKV;
  pool_.parallel_for(tp.n_tokens * ap.n_head, [&](int64_t i0, int64_t i1, int ti) {
    std::vector<float>& scratch = thread_scratch_[size_t(ti)];
    if (scratch.size() < need) scratch.resize(need);
    float* qv = scratch.data();
    float* acc = qv + d;
    float* row = acc + d;
    uint16_t* acc16 = reinterpret_cast<uint16_t*>(row + d);  // d halves fit in d floats
    float* kt = row + 2 * d;
    float* s = kt + size_t(kTileKV) * d;
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t t = item / ap.n_head;
      const int32_t h = int32_t(item % ap.n_head), hk = h / group;
      const int32_t pos = tp.pos[t];
      const int32_t lo = ap.window > 0 ? std::max(0, pos - ap.window + 1) : 0;
      const float* qs = q + (t * ap.n_head + h) * d;
      for (int32_t i = 0; i < d; ++i) qv[i] = ap.scale_q ? qs[i] * ap.scale : qs[i];
      auto k_at = [&](int32_t p) { return kv.k(ap.layer, tp.blocks[t][p / bs], p % bs, hk); };
      auto v_at = [&](int32_t p) { return kv.v(ap.layer, tp.blocks[t][p / bs], p % bs, hk); };
      float M = -kInf, S = 0.0f;
      float* o = out + (t * ap.n_head + h) * d;
      if (!tiled) {
        if (f16)
          for (int32_t i = 0; i < d; ++i) qv[i] = f16_round(qv[i]);
        std::fill(acc, acc + d, 0.0f);
        std::fill(acc16, acc16 + d, uint16_t(0));
        for (int32_t p = lo; p <= pos; ++p) {
          load_row(k_at(p), f16, d, row);
          float sc = dot_ggml_f32(row, qv, d);
          sc = sc * s_scale;
          sc += 0.0f;  // the (zero) mask value
          float ms = 1.0f, vs = 1.0f;
          if (sc > M) {
            const float m_old = M;
            M = sc;
            ms = std::exp(m_old - M);
            if (f16)
              for (int32_t i = 0; i < d; ++i) acc16[i] = f32_to_f16(f16_to_f32(acc16[i]) * ms);
            else
              for (int32_t i = 0; i < d; ++i) acc[i] = acc[i] * ms;
          } else {
            vs = std::exp(sc - M);
          }
          load_row(v_at(p), f16, d, row);
          if (f16) axpy_f16(acc16, row, vs, d);
          else axpy_f32(acc, row, vs, d);
          S = S * ms + vs;
        }
        if (f16)
          for (int32_t i = 0; i < d; ++i) acc[i] = f16_to_f32(acc16[i]);
      } else {
        std::fill(acc, acc + d, 0.0f);
        for (int32_t c0 = lo / kTileKV * kTileKV; c0 <= pos; c0 += kTileKV) {
          const int32_t j0 = std::max(lo, c0) - c0, j1 = std::min(pos, c0 + kTileKV - 1) - c0;
          std::fill(kt, kt + size_t(kTileKV) * d, 0.0f);
          for (int32_t j = j0; j <= j1; ++j) {
            load_row(k_at(c0 + j), f16, d, row);
            for (int32_t i = 0; i < d; ++i) kt[size_t(i) * kTileKV + j] = row[i];
          }
          tile_scores(qv, kt, d, s);
          float tile_max = -kInf;
          for (int j = 0; j < kTileKV; ++j) {
            if (j < j0 || j > j1) {
              s[j] = -kInf;  // masked or padding
            } else {
              s[j] = s[j] * s_scale;
              s[j] += 0.0f;
            }
            tile_max = tile_max > s[j] ? tile_max : s[j];
          }
          if (tile_max == -kInf) continue;
          const float m_new = std::fmax(M, tile_max);
          if (m_new > M) {
            const float ms = std::exp(M - m_new);
            for (int32_t i = 0; i < d; ++i) acc[i] = acc[i] * ms;
            S *= ms;
          }
          M = m_new;
          double sum = 0.0;
          for (int j8 = 0; j8 < kTileKV; j8 += 8) {
            float e[8];
            for (int l = 0; l < 8; ++l) e[l] = s[j8 + l] = ggml_expf_lane(s[j8 + l] - M);
            sum += double(((e[0] + e[4]) + (e[2] + e[6])) + ((e[1] + e[5]) + (e[3] + e[7])));
          }
          S = float(double(S) + sum);
          for (int32_t j = j0; j <= j1; ++j) {
            load_row(v_at(c0 + j), f16, d, row);
            axpy_fma(acc, row, s[j], d);
          }
        }
      }
      const float inv = S == 0.0f ? 0.0f : 1.0f / S;
      for (int32_t i = 0; i < d; ++i) o[i] = acc[i] * inv;
    }
  });
}

}  // namespace squeeze
