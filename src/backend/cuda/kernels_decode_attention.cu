// Decode attention over the paged F16 KV cache (FlashDecoding), one block per (KV head, token,
// split): the block serves all G query heads of the KV head's group, so each K and V row is read
// from memory once per token rather than once per query head.
//
// A split is a run of whole 128-key tiles of the token's keys (keys pos - window < k <= pos); in a
// tile each of the 4 warps takes 32 keys, one per lane: the lane reads its key's K row (16-byte
// loads) and scores it against the G queries (shared memory, broadcast reads). Each warp keeps its
// own online-softmax state per head (maximum, sum, and the output, each lane owning D / 32
// consecutive dimensions, so that a V row is one coalesced read by the warp, probabilities passed
// by shuffles). At the end the warps' states are merged in shared memory, and the block writes the
// result, or with several splits its (max, sum, unnormalized output) for merge_kernel
// (kernels_attention.cu), which combines them. The semantics are attention_kernel's (scores
// q.k * scale, the query rounded to f16 as with any F16 cache).
#include <algorithm>
#include <cmath>

#include "backend/cuda/dequant.cuh"  // unpack8
#include "backend/cuda/kernels.h"

namespace squeeze::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kTile = 32 * kWarps;  // keys per block step

// DL consecutive halves of a V row, as loaded by one lane.
template <int DL>
struct VWords;
template <>
struct VWords<2> {
  uint32_t w;
  __device__ void to_float(float* f) const {
    f[0] = h2f(uint16_t(w & 0xffffu));
    f[1] = h2f(uint16_t(w >> 16));
  }
};
template <>
struct VWords<4> {
  uint2 w;
  __device__ void to_float(float* f) const {
    f[0] = h2f(uint16_t(w.x & 0xffffu));
    f[1] = h2f(uint16_t(w.x >> 16));
    f[2] = h2f(uint16_t(w.y & 0xffffu));
    f[3] = h2f(uint16_t(w.y >> 16));
  }
};
template <>
struct VWords<8> {
  uint4 w;
  __device__ void to_float(float* f) const {
    uint16_t h[8];
    unpack8(w, h);
#pragma unroll
    for (int i = 0; i < 8; ++i) f[i] = h2f(h[i]);
  }
};
template <int DL>
__device__ __forceinline__ VWords<DL> load_v(const uint16_t* p) {
  VWords<DL> v;
  if constexpr (DL == 2) v.w = *reinterpret_cast<const uint32_t*>(p);
  else if constexpr (DL == 4) v.w = *reinterpret_cast<const uint2*>(p);
  else v.w = *reinterpret_cast<const uint4*>(p);
  return v;
}

// Up to this many splits the last block merges them (decode_attention_folds); past it, a merge
// kernel of one block per (token, query head) does, reading the splits in parallel: at 32K keys
// and batch 1 (66 splits) the folded merge of one block per KV head took the layer's attention
// from 77 to 92 us on the H100.
constexpr int kMaxFoldSplits = 16;

// Element e of head h of token t's output into its 8-bit row (quantize_block32: the calling warp
// holds the 32-element block, D % 32 == 0).
template <int D>
__device__ __forceinline__ void store_q8(float v, int64_t t, int32_t n_head, int h, int e, uint8_t* xq) {
  const int64_t k = int64_t(n_head) * D;
  quantize_block32(v, threadIdx.x & 31, xq + size_t(t) * q8x_bytes(k), k, (int64_t(h) * D + e) / 32);
}

// out for query heads hk * G .. hk * G + G - 1 of token t from the gridDim.z partial records
// (merge_kernel's arithmetic, in the same order). Reads bypass L1: other blocks wrote them.
template <int G, int D>
__device__ void merge_splits(const float* partial, int64_t t, int32_t n_head, int hk, float* out, uint8_t* xq) {
  __shared__ float wt[G][kMaxFoldSplits], lsum[G][kMaxFoldSplits];
  __shared__ float inv_l[G];
  const int S = int(gridDim.z);
  const float* base = partial + (t * n_head + int64_t(hk) * G) * S * size_t(D + 2);
  for (int i = threadIdx.x; i < G * S; i += blockDim.x) {
    const float* r = base + i * size_t(D + 2);  // head i / S, split i % S
    const float l = __ldcg(r + 1);
    wt[i / S][i % S] = l > 0.0f ? __ldcg(r) : -INFINITY;  // an empty split has l = 0
    lsum[i / S][i % S] = l;
  }
  __syncthreads();
  if (threadIdx.x < G) {
    const int g = threadIdx.x;
    float mx = -INFINITY;
    for (int sp = 0; sp < S; ++sp) mx = fmaxf(mx, wt[g][sp]);
    float l = 0.0f;
    for (int sp = 0; sp < S; ++sp) {
      const float f = lsum[g][sp] > 0.0f ? expf(wt[g][sp] - mx) : 0.0f;
      l += lsum[g][sp] * f;
      wt[g][sp] = f;  // from here on: the split's weight
    }
    inv_l[g] = 1.0f / l;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int g = i / D, e = i % D;
    const float* r = base + g * S * size_t(D + 2) + 2 + e;
    float a = 0.0f;
    for (int sp = 0; sp < S; ++sp)
      if (wt[g][sp] != 0.0f) a += __ldcg(r + sp * size_t(D + 2)) * wt[g][sp];
    out[(t * n_head + int64_t(hk) * G + g) * D + e] = a * inv_l[g];
    if (xq) store_q8<D>(a * inv_l[g], t, n_head, hk * G + g, e, xq);
  }
}

template <int D, int G>
__global__ void __launch_bounds__(32 * kWarps)
    decode_attention_kernel(DeviceKV kv, int32_t n_head, float scale, int32_t window, const float* __restrict__ q,
                            DevicePlacement tp, const int32_t* list, float* __restrict__ out, float* partial,
                            int32_t* arrivals, uint8_t* xq) {
  constexpr int DL = D / 32;            // dimensions per lane
  constexpr int VB = DL == 8 ? 8 : 16;  // V rows loaded together
  using VRow = VWords<DL>;
  __shared__ float qs[G][D];
  __shared__ float st_m[kWarps][G], st_l[kWarps][G];
  __shared__ float st_o[kWarps][G][D];
  const int hk = int(blockIdx.x), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t t = list ? list[blockIdx.y] : blockIdx.y;
  const int32_t* table = tp.ids + tp.offs[t];
  int32_t lo, hi;
  split_keys(tp.pos[t], window, kTile, lo, hi);
  const uint16_t* kc = reinterpret_cast<const uint16_t*>(kv.k);
  const uint16_t* vc = reinterpret_cast<const uint16_t*>(kv.v);
  auto row_of = [&](int32_t kk) {
    return ((size_t(table[kk / kv.block_size]) * kv.n_kv_heads + hk) * kv.block_size + kk % kv.block_size) * D;
  };
  // The placement arrays were copied in before the step's first kernel, so the lane's first key is
  // known now: its K and V rows are fetched into L2 while the kernels before finish (L2 is
  // coherent: the row the previous kernel writes is read for real only after pdl_start).
  if (lo + 32 * warp + lane <= hi) {
    const size_t r = row_of(lo + 32 * warp + lane);
    prefetch_l2(kc + r, D * sizeof(uint16_t));
    prefetch_l2(vc + r, D * sizeof(uint16_t));
  }
  pdl_start();

  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int g = i / D, e = i % D;
    qs[g][e] = h2f(f2h(q[(t * n_head + hk * G + g) * D + e]));
  }
  __syncthreads();

  float m[G], l[G], o[G][DL];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < DL; ++i) o[g][i] = 0.0f;
  }

  for (int32_t k0 = lo + 32 * warp; k0 <= hi; k0 += kTile) {
    const int32_t kk = k0 + lane;
    const bool valid = kk <= hi;
    float s[G];
#pragma unroll
    for (int g = 0; g < G; ++g) s[g] = 0.0f;
    if (valid) {
      // All of the row's loads first (the latency is paid once per key tile), then the products.
      const uint4* kr = reinterpret_cast<const uint4*>(kc + row_of(kk));
      uint4 kw[D / 8];
#pragma unroll
      for (int c = 0; c < D / 8; ++c) kw[c] = kr[c];
#pragma unroll
      for (int c = 0; c < D / 8; ++c) {
        uint16_t h[8];
        unpack8(kw[c], h);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          const float4 qa = *reinterpret_cast<const float4*>(&qs[g][8 * c]);
          const float4 qb = *reinterpret_cast<const float4*>(&qs[g][8 * c + 4]);
          float a = s[g];
          a = fmaf(qa.x, h2f(h[0]), a);
          a = fmaf(qa.y, h2f(h[1]), a);
          a = fmaf(qa.z, h2f(h[2]), a);
          a = fmaf(qa.w, h2f(h[3]), a);
          a = fmaf(qb.x, h2f(h[4]), a);
          a = fmaf(qb.y, h2f(h[5]), a);
          a = fmaf(qb.z, h2f(h[6]), a);
          s[g] = fmaf(qb.w, h2f(h[7]), a);
        }
      }
    }
    float p[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float sc = valid ? s[g] * scale : -INFINITY;
      const float m_new = fmaxf(m[g], warp_max(sc));  // finite: key k0 is valid
      const float corr = expf(m[g] - m_new);
      p[g] = valid ? expf(sc - m_new) : 0.0f;
      l[g] = l[g] * corr + warp_sum(p[g]);
      m[g] = m_new;
#pragma unroll
      for (int i = 0; i < DL; ++i) o[g][i] *= corr;
    }
    // p * V, VB rows at a time with their loads issued together (keys past hi: p = 0 and a
    // clamped row, so every load stays inside this sequence's cache).
    const int n = min(32, hi - k0 + 1);
#pragma unroll 1
    for (int j0 = 0; j0 < n; j0 += VB) {
      VRow v[VB];
#pragma unroll
      for (int j = 0; j < VB; ++j) v[j] = load_v<DL>(vc + row_of(k0 + min(j0 + j, n - 1)) + DL * lane);
#pragma unroll
      for (int j = 0; j < VB; ++j) {
        float vf[DL];
        v[j].to_float(vf);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          const float pj = __shfl_sync(0xffffffffu, p[g], j0 + j);  // p = 0 past the keys
#pragma unroll
          for (int i = 0; i < DL; ++i) o[g][i] = fmaf(pj, vf[i], o[g][i]);
        }
      }
    }
  }

  // Merge the warps' states (a warp with no keys has m = -inf, l = 0).
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (lane == 0) {
      st_m[warp][g] = m[g];
      st_l[warp][g] = l[g];
    }
#pragma unroll
    for (int i = 0; i < DL; ++i) st_o[warp][g][DL * lane + i] = o[g][i];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int g = i / D, e = i % D;
    float mx = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, st_m[w][g]);
    float acc = 0.0f, sum = 0.0f;
    if (mx != -INFINITY)
      for (int w = 0; w < kWarps; ++w) {
        if (st_l[w][g] == 0.0f) continue;
        const float f = expf(st_m[w][g] - mx);
        acc += st_o[w][g][e] * f;
        sum += st_l[w][g] * f;
      }
    const int h = hk * G + g;
    if (gridDim.z == 1) {
      out[(t * n_head + h) * D + e] = acc / sum;
      if (xq) store_q8<D>(acc / sum, t, n_head, h, e, xq);  // a warp holds 32 consecutive e of one head
    } else {
      float* rec = partial + ((t * n_head + h) * gridDim.z + blockIdx.z) * size_t(D + 2);
      if (e == 0) {
        rec[0] = mx;
        rec[1] = sum;
      }
      rec[2 + e] = acc;
    }
  }
  if (gridDim.z == 1 || !arrivals) return;  // no arrivals: merge_kernel combines the splits
  // The last split of (token, KV head) to finish merges them all (merge_kernel's arithmetic), so
  // no separate merge launch sits between the attention and the output product. arrivals[] is
  // zero before and after every launch.
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t* a = arrivals + blockIdx.y * gridDim.x + hk;  // by list position: at most kDecodeArrivals
    last = atomicAdd(a, 1) == int(gridDim.z) - 1;
    if (last) *a = 0;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  merge_splits<G, D>(partial, t, n_head, hk, out, xq);
}

template <int D>
void launch_d(int g, dim3 grid, const DeviceKV& kv, int32_t n_head, float scale, int32_t window, const float* q,
              const DevicePlacement& tp, const int32_t* list, float* out, float* partial, int32_t* arrivals,
              uint8_t* xq, cudaStream_t s) {
  switch (g) {
    case 1: launch_pdl(decode_attention_kernel<D, 1>, dim3(grid), dim3(32 * kWarps), 0, s, kv, n_head, scale, window, q, tp, list, out, partial, arrivals, xq); break;
    case 2: launch_pdl(decode_attention_kernel<D, 2>, dim3(grid), dim3(32 * kWarps), 0, s, kv, n_head, scale, window, q, tp, list, out, partial, arrivals, xq); break;
    case 4: launch_pdl(decode_attention_kernel<D, 4>, dim3(grid), dim3(32 * kWarps), 0, s, kv, n_head, scale, window, q, tp, list, out, partial, arrivals, xq); break;
    default: launch_pdl(decode_attention_kernel<D, 8>, dim3(grid), dim3(32 * kWarps), 0, s, kv, n_head, scale, window, q, tp, list, out, partial, arrivals, xq); break;
  }
}

}  // namespace

bool decode_attention_supported(const DeviceKV& kv, int32_t n_head) {
  if (!kv.f16 || kv.n_kv_heads <= 0 || n_head % kv.n_kv_heads != 0) return false;
  const int g = n_head / kv.n_kv_heads;
  return (kv.head_dim == 64 || kv.head_dim == 128 || kv.head_dim == 256) && (g == 1 || g == 2 || g == 4 || g == 8) &&
         !(kv.head_dim == 256 && g == 8);  // shared memory: 4 warps x G x D floats
}

bool decode_attention_folds(int32_t n_split) { return n_split <= kMaxFoldSplits; }

int32_t decode_attention_splits(int64_t n_tokens, int32_t n_kv_heads, int32_t max_keys) {
  // About 4 blocks per SM of an H100 when few (token, KV head) pairs share the work, each split
  // at least one 128-key tile.
  const int64_t pairs = n_tokens * n_kv_heads, want = 528;
  static_assert(want <= kDecodeArrivals, "split launches must fit the arrival counters");
  if (pairs >= want) return 1;
  const int64_t tiles = (int64_t(max_keys) + kTile - 1) / kTile;
  return int32_t(std::max<int64_t>(1, std::min<int64_t>({(want + pairs - 1) / pairs, tiles, 128})));
}

void decode_attention(const DeviceKV& kv, int32_t n_head, float scale, int32_t window, const float* q,
                      const DevicePlacement& tp, const int32_t* list, int64_t n_list, float* out, int32_t n_split,
                      float* partial, int32_t* arrivals, uint8_t* xq, cudaStream_t s) {
  const int64_t n_tokens = list ? n_list : tp.n_tokens;
  if (n_tokens <= 0) return;
  if (!decode_attention_supported(kv, n_head)) throw Error("CUDA decode attention: unsupported head layout");
  if (n_tokens > 65535) throw Error("CUDA attention: more than 65535 tokens in one batch");
  n_split = std::max(1, n_split);
  const bool fold = decode_attention_folds(n_split);
  if (xq && n_split > 1 && !fold) throw Error("CUDA decode attention: 8-bit output needs the folded merge");
  if (fold && n_split > 1 && n_tokens * kv.n_kv_heads > kDecodeArrivals)
    throw Error("CUDA decode attention: too many (token, KV head) pairs for a split launch");
  if (!fold) arrivals = nullptr;
  const dim3 grid{unsigned(kv.n_kv_heads), unsigned(n_tokens), unsigned(n_split)};
  const int g = n_head / kv.n_kv_heads;
  if (kv.head_dim == 64) launch_d<64>(g, grid, kv, n_head, scale, window, q, tp, list, out, partial, arrivals, xq, s);
  else if (kv.head_dim == 128) launch_d<128>(g, grid, kv, n_head, scale, window, q, tp, list, out, partial, arrivals, xq, s);
  else launch_d<256>(g, grid, kv, n_head, scale, window, q, tp, list, out, partial, arrivals, xq, s);
  check_launch("decode_attention");
  if (n_split > 1 && !fold) attention_merge(partial, list, n_tokens, n_head, kv.head_dim, n_split, out, s);
}

}  // namespace squeeze::cuda
