// attention_llamacpp (tiles shared across queries, AVX2 kernels when the CPU has them) against a
// plain scalar transcription of the same arithmetic, one (token, head) at a time: every output
// float must be bit-identical. Covers both paths (< 64 and >= 64 query tokens), F16 and F32
// caches, GQA, sliding windows, head sizes with vector tails, and ragged batches of several
// sequences with different block tables.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "backend/cpu/attention_llamacpp_kernels.h"
#include "backend/cpu/cpu_backend.h"
#include "kv/block_table.h"
#include "util/fp16.h"

using namespace squeeze;

namespace {

// ---- Reference: the straightforward implementation the optimized one replaced. ----

constexpr int kTile = 64;
constexpr float kInf = std::numeric_limits<float>::infinity();

void load_row(const uint8_t* src, bool f16, int32_t n, float* dst) {
  if (f16) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
    for (int32_t i = 0; i < n; ++i) dst[i] = f16_to_f32(h[i]);
  } else {
    std::memcpy(dst, src, size_t(n) * sizeof(float));
  }
}

float ref_dot(const float* x, const float* y, int32_t n) {
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

uint32_t bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }
float from_bits(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }

float ref_expf(float x) {
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

void ref_attention(const KVCache& kv, const AttentionParams& ap, const float* q, const TokenPlacement& tp,
                   float* out) {
  const KVGeometry& g = kv.geometry();
  const int32_t d = ap.head_dim, bs = g.block_size, group = ap.n_head / ap.n_head_kv;
  const bool f16 = g.type == GGMLType::F16, tiled = tp.n_tokens >= 64;
  const float s_scale = ap.scale_q ? 1.0f : ap.scale;
  const size_t ud = size_t(d);
  std::vector<float> qv(ud), acc(ud), row(ud), kt(kTile * ud), s(kTile);
  std::vector<uint16_t> acc16(ud);
  for (int64_t t = 0; t < tp.n_tokens; ++t) {
    for (int32_t h = 0; h < ap.n_head; ++h) {
      const int32_t hk = h / group, pos = tp.pos[t];
      const int32_t lo = ap.window > 0 ? std::max(0, pos - ap.window + 1) : 0;
      const float* qs = q + (t * ap.n_head + h) * d;
      for (int32_t i = 0; i < d; ++i) qv[size_t(i)] = ap.scale_q ? qs[i] * ap.scale : qs[i];
      auto k_at = [&](int32_t p) { return kv.k(ap.layer, tp.blocks[t][p / bs], p % bs, hk); };
      auto v_at = [&](int32_t p) { return kv.v(ap.layer, tp.blocks[t][p / bs], p % bs, hk); };
      float M = -kInf, S = 0.0f;
      std::fill(acc.begin(), acc.end(), 0.0f);
      if (!tiled) {
        if (f16)
          for (float& x : qv) x = f16_to_f32(f32_to_f16(x));
        std::fill(acc16.begin(), acc16.end(), uint16_t(0));
        for (int32_t p = lo; p <= pos; ++p) {
          load_row(k_at(p), f16, d, row.data());
          float sc = ref_dot(row.data(), qv.data(), d);
          sc = sc * s_scale;
          sc += 0.0f;
          float ms = 1.0f, vs = 1.0f;
          if (sc > M) {
            const float m_old = M;
            M = sc;
            ms = std::exp(m_old - M);
            for (int32_t i = 0; i < d; ++i) {
              if (f16) acc16[size_t(i)] = f32_to_f16(f16_to_f32(acc16[size_t(i)]) * ms);
              else acc[size_t(i)] = acc[size_t(i)] * ms;
            }
          } else {
            vs = std::exp(sc - M);
          }
          load_row(v_at(p), f16, d, row.data());
          const int32_t np = d & ~31;
          for (int32_t i = 0; i < d; ++i) {
            const size_t u = size_t(i);
            if (f16 && i < np) acc16[u] = f32_to_f16(std::fma(row[u], vs, f16_to_f32(acc16[u])));
            else if (f16) acc16[u] = f32_to_f16(f16_to_f32(acc16[u]) + row[u] * vs);
            else if (i < np) acc[u] = std::fma(row[u], vs, acc[u]);
            else acc[u] = acc[u] + row[u] * vs;
          }
          S = S * ms + vs;
        }
        if (f16)
          for (int32_t i = 0; i < d; ++i) acc[size_t(i)] = f16_to_f32(acc16[size_t(i)]);
      } else {
        for (int32_t c0 = lo / kTile * kTile; c0 <= pos; c0 += kTile) {
          const int32_t j0 = std::max(lo, c0) - c0, j1 = std::min(pos, c0 + kTile - 1) - c0;
          std::fill(kt.begin(), kt.end(), 0.0f);
          for (int32_t j = j0; j <= j1; ++j) {
            load_row(k_at(c0 + j), f16, d, row.data());
            for (int32_t i = 0; i < d; ++i) kt[size_t(i) * kTile + size_t(j)] = row[size_t(i)];
          }
          for (int j = 0; j < kTile; ++j) {
            float a = 0.0f;
            for (int32_t i = 0; i < d; ++i) a = std::fma(kt[size_t(i) * kTile + size_t(j)], qv[size_t(i)], a);
            s[size_t(j)] = a;
          }
          float tile_max = -kInf;
          for (int j = 0; j < kTile; ++j) {
            if (j < j0 || j > j1) {
              s[size_t(j)] = -kInf;
            } else {
              s[size_t(j)] = s[size_t(j)] * s_scale;
              s[size_t(j)] += 0.0f;
            }
            tile_max = tile_max > s[size_t(j)] ? tile_max : s[size_t(j)];
          }
          if (tile_max == -kInf) continue;
          const float m_new = std::fmax(M, tile_max);
          if (m_new > M) {
            const float ms = std::exp(M - m_new);
            for (float& a : acc) a = a * ms;
            S *= ms;
          }
          M = m_new;
          double sum = 0.0;
          for (int j8 = 0; j8 < kTile; j8 += 8) {
            float e[8];
            for (int l = 0; l < 8; ++l) e[l] = s[size_t(j8 + l)] = ref_expf(s[size_t(j8 + l)] - M);
            sum += double(((e[0] + e[4]) + (e[2] + e[6])) + ((e[1] + e[5]) + (e[3] + e[7])));
          }
          S = float(double(S) + sum);
          for (int32_t j = j0; j <= j1; ++j) {
            load_row(v_at(c0 + j), f16, d, row.data());
            for (int32_t i = 0; i < d; ++i) acc[size_t(i)] = std::fma(row[size_t(i)], s[size_t(j)], acc[size_t(i)]);
          }
        }
      }
      const float inv = S == 0.0f ? 0.0f : 1.0f / S;
      float* o = out + (t * ap.n_head + h) * d;
      for (int32_t i = 0; i < d; ++i) o[i] = acc[size_t(i)] * inv;
    }
  }
}

// ---- Test setup ----

enum class Layout { one_sequence, sequences, interleaved };

struct Case {
  GGMLType type;
  int n_head, n_head_kv, head_dim, window, n_tokens;
  Layout layout;
  float q_mul = 1.0f;  // larger spreads the scores (exercises exp's large-argument branch)
  bool scale_q = false;
};

std::string name(const Case& c) {
  return std::string(c.type == GGMLType::F16 ? "f16" : "f32") + " heads " + std::to_string(c.n_head) + "/" +
         std::to_string(c.n_head_kv) + " d " + std::to_string(c.head_dim) + " window " + std::to_string(c.window) +
         " tokens " + std::to_string(c.n_tokens) + " layout " + std::to_string(int(c.layout)) + " q_mul " +
         std::to_string(c.q_mul);
}

void check(const Case& c, int threads) {
  SCOPED_TRACE(name(c));
  KVGeometry g;
  g.n_layers = 2;
  g.n_kv_heads = c.n_head_kv;
  g.head_dim = c.head_dim;
  g.block_size = 16;
  g.n_blocks = 96;
  g.type = c.type;
  KVCache kv(g);
  std::mt19937 rng(uint32_t(77 + c.n_tokens * 31 + c.head_dim + c.window + int(c.layout) * 7));
  std::normal_distribution<float> nd(0.f, 1.f);

  // Sequences with cached prefixes of different lengths (so their query positions differ); the
  // batch's tokens are split among them.
  const std::vector<int> prefixes = c.layout == Layout::one_sequence ? std::vector<int>{70} : std::vector<int>{70, 0, 5};
  const size_t n_seq = prefixes.size();
  std::vector<int> n_new(n_seq, c.n_tokens / int(n_seq));
  n_new[0] += c.n_tokens % int(n_seq);
  std::vector<int32_t> scatter;  // taken and given back between tables, so blocks are not in order
  std::vector<BlockTable> tables(n_seq);
  const int kv_dim = c.n_head_kv * c.head_dim;
  CpuBackend be(threads, Numerics::llamacpp);
  for (size_t s = 0; s < n_seq; ++s) {
    scatter.push_back(kv.pool().allocate());
    const int len = prefixes[s] + n_new[s];
    ASSERT_TRUE(tables[s].reserve(kv.pool(), std::max(len, 1), g.block_size));
    std::vector<float> k(size_t(len) * kv_dim), v(k.size());
    for (auto& x : k) x = nd(rng);
    for (auto& x : v) x = nd(rng);
    std::vector<int32_t> pos(static_cast<size_t>(len));
    for (int p = 0; p < len; ++p) pos[size_t(p)] = p;
    std::vector<const int32_t*> blocks(size_t(len), tables[s].blocks.data());
    be.kv_write(kv, 1, k.data(), v.data(), TokenPlacement{pos.data(), blocks.data(), len});
  }
  for (int32_t b : scatter) kv.pool().release(b);

  std::vector<int32_t> pos;
  std::vector<const int32_t*> blocks;
  if (c.layout == Layout::interleaved) {
    std::vector<int> next(n_seq, 0);
    for (int added = 0; added < c.n_tokens;)
      for (size_t s = 0; s < n_seq; ++s)
        if (next[s] < n_new[s]) {
          pos.push_back(prefixes[s] + next[s]++);
          blocks.push_back(tables[s].blocks.data());
          ++added;
        }
  } else {
    for (size_t s = 0; s < n_seq; ++s)
      for (int i = 0; i < n_new[s]; ++i) {
        pos.push_back(prefixes[s] + i);
        blocks.push_back(tables[s].blocks.data());
      }
  }
  const TokenPlacement tp{pos.data(), blocks.data(), c.n_tokens};
  std::vector<float> q(size_t(c.n_tokens) * c.n_head * c.head_dim);
  for (auto& x : q) x = nd(rng) * c.q_mul;
  AttentionParams ap{1, c.n_head, c.n_head_kv, c.head_dim, 1.0f / std::sqrt(float(c.head_dim)), c.window, c.scale_q};

  std::vector<float> want(q.size()), got(q.size(), -1.0f);
  ref_attention(kv, ap, q.data(), tp, want.data());
  for (bool portable : {false, true}) {
    attn_llamacpp::force_portable_kernels(portable);
    std::fill(got.begin(), got.end(), -1.0f);
    be.attention(kv, ap, q.data(), tp, got.data());
    attn_llamacpp::force_portable_kernels(false);
    size_t bad = 0;
    while (bad < got.size() && std::memcmp(&got[bad], &want[bad], 4) == 0) ++bad;
    EXPECT_EQ(bad, got.size()) << (portable ? "portable" : "fastest") << " kernels: first difference at " << bad
                               << ": " << (bad < got.size() ? got[bad] : 0.f) << " vs "
                               << (bad < got.size() ? want[bad] : 0.f);
  }
  for (auto& t : tables) t.release_all(kv.pool());
  EXPECT_EQ(kv.pool().n_free(), g.n_blocks);
}

}  // namespace

TEST(AttentionLlamacppSimd, BitIdenticalToScalarReference) {
  for (GGMLType type : {GGMLType::F16, GGMLType::F32})
    for (int group : {4, 1})
      for (int d : {64, 256})
        for (int window : {0, 37})
          for (int n : {1, 7, 64, 100})
            for (Layout layout : {Layout::one_sequence, Layout::sequences}) {
              if (layout == Layout::sequences && n < 3) continue;
              const int n_kv = group == 4 ? 1 : 2;
              check({type, n_kv * group, n_kv, d, window, n, layout}, 2);
            }
}

TEST(AttentionLlamacppSimd, InterleavedSequencesAndThreads) {
  for (GGMLType type : {GGMLType::F16, GGMLType::F32})
    for (int n : {7, 64, 150})
      for (int threads : {1, 3}) check({type, 8, 2, 64, 0, n, Layout::interleaved}, threads);
}

TEST(AttentionLlamacppSimd, OddHeadSizes) {
  // Tails of the 32-wide dot/mad runs and of the 8/16-wide tile loops.
  for (GGMLType type : {GGMLType::F16, GGMLType::F32})
    for (int d : {40, 72, 100})
      for (int n : {5, 80}) check({type, 6, 2, d, 0, n, Layout::sequences}, 2);
}

TEST(AttentionLlamacppSimd, WideScoreRangeAndScaledQ) {
  // Scores spread over hundreds: ggml's exp takes its |n| > 126 and > 192 branches.
  for (GGMLType type : {GGMLType::F16, GGMLType::F32})
    for (int n : {7, 100}) {
      check({type, 4, 1, 64, 0, n, Layout::sequences, 40.0f}, 2);
      check({type, 4, 1, 256, 30, n, Layout::one_sequence, 3.0f, true}, 2);
    }
}

TEST(AttentionLlamacppSimd, HalfConversionsMatchFp16) {
  // The AVX2 kernels convert with F16C, which agrees with util/fp16.h on every input except
  // signaling NaNs (F16C quiets them). Those cannot reach the kernels: the cache and the F16
  // accumulator only hold results of arithmetic, which are never signaling.
  const attn_llamacpp::Kernels& kn = attn_llamacpp::kernels();
  auto snan16 = [](uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) && !(h & 0x200); };
  std::vector<uint16_t> halves;
  for (uint32_t h = 0; h < 65536; ++h)
    if (!snan16(uint16_t(h))) halves.push_back(uint16_t(h));
  std::vector<float> f(halves.size());
  kn.f16_to_f32_row(halves.data(), f.data(), int32_t(halves.size()));
  for (size_t i = 0; i < halves.size(); ++i) {
    const float want = f16_to_f32(halves[i]);
    ASSERT_EQ(std::memcmp(&f[i], &want, 4), 0) << std::hex << halves[i];
  }
  // f32 -> f16 rounding: every half's value, its neighbours one f32 ulp away, and the midpoints
  // to the next half (ties, and just either side of them), in both signs.
  std::vector<float> x;
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const uint32_t b = bits(f16_to_f32(uint16_t(h)));
    const uint32_t mid = (b + bits(f16_to_f32(uint16_t(h + 1)))) / 2;
    for (uint32_t v : {b - (h ? 1u : 0u), b, b + 1, mid - 1, mid, mid + 1})
      for (uint32_t sign : {0u, 0x80000000u}) x.push_back(from_bits(v | sign));
  }
  for (float v : {65504.0f, 65519.0f, 65520.0f, 1e30f, kInf, -kInf, std::numeric_limits<float>::quiet_NaN(),
                  from_bits(0xffc12345u), 1e-30f, -1e-30f})
    x.push_back(v);
  std::vector<float> r = x;
  kn.round_f16(r.data(), int32_t(r.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = f16_to_f32(f32_to_f16(x[i]));
    ASSERT_EQ(std::memcmp(&r[i], &want, 4), 0) << std::hex << bits(x[i]);
  }
}
