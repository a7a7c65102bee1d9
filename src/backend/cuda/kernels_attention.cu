// Causal attention over the paged KV cache on the GPU, with the CPU backend's exact semantics
// (backend/cpu/attention.cpp): scores q.k * scale, keys pos_q - window < pos_k <= pos_q, one
// online-softmax step per KV block (tile), and with an F16 cache the query rounded to F16.
//
// One thread block per (query head, token), keys in tiles of 128 positions (see attention_kernel).
// The online-softmax rescaling happens once per tile rather than once per 16-slot KV block as on
// the CPU: the same maths, rounded differently. No score matrix is stored. GQA: query head h
// reads KV head h / (n_head / n_head_kv).
// When few (token, head) pairs are in the batch (decode), the keys are split across up to 64 blocks
// per pair whose partial results are merged (FlashDecoding). Prefill runs of an F16 cache go to
// the tensor-core kernel (kernels_flash_attention.cu); this one then takes the batch's other
// tokens (list). Not yet: K/V tiles shared between the query heads of a GQA group.
#include <algorithm>
#include <cmath>

#include "backend/cuda/dequant.cuh"  // unpack8
#include "backend/cuda/kernels.h"

namespace squeeze::cuda {

namespace {

constexpr int kThreads = 128;        // threads per block, and keys per tile
constexpr int kMaxDimPerThread = 4;  // head_dim <= 512

__device__ __forceinline__ float kv_load(const uint8_t* base, bool f16, size_t e) {
  return f16 ? h2f(reinterpret_cast<const uint16_t*>(base)[e]) : reinterpret_cast<const float*>(base)[e];
}

// q . (the d elements of K at element offset e), 16-byte loads when rows are 16-byte aligned.
__device__ __forceinline__ float dot_row(const float* qs, const uint8_t* base, bool f16, size_t e, int d) {
  float s = 0.0f;
  if (f16 && d % 8 == 0) {
    const uint4* k = reinterpret_cast<const uint4*>(reinterpret_cast<const uint16_t*>(base) + e);
    for (int c = 0; c < d / 8; ++c) {
      uint16_t h[8];
      unpack8(k[c], h);
#pragma unroll
      for (int j = 0; j < 8; ++j) s += qs[8 * c + j] * h2f(h[j]);
    }
  } else if (!f16 && d % 4 == 0) {
    const float4* k = reinterpret_cast<const float4*>(reinterpret_cast<const float*>(base) + e);
    for (int c = 0; c < d / 4; ++c) {
      const float4 a = k[c];
      s += qs[4 * c] * a.x + qs[4 * c + 1] * a.y + qs[4 * c + 2] * a.z + qs[4 * c + 3] * a.w;
    }
  } else {
    for (int i = 0; i < d; ++i) s += qs[i] * kv_load(base, f16, e + i);
  }
  return s;
}

// Element offset of key position kk's row in the layer's K (or V) storage.
__device__ __forceinline__ size_t key_row(const DeviceKV& kv, const int32_t* table, int hk, int32_t kk) {
  return ((size_t(table[kk / kv.block_size]) * kv.n_kv_heads + hk) * kv.block_size + kk % kv.block_size) *
         size_t(kv.head_dim);
}

// One block per (query head, token). Keys are visited in tiles of kThreads positions (spanning
// KV blocks): each thread scores one key (a whole row, q from shared memory), the block takes the
// tile maximum, rescales (online softmax) and accumulates p * V: with head_dim <= 128 dividing
// 128, the threads form 128 / head_dim groups, each summing a subset of the tile's keys for
// every dimension; the groups' sums are added at the end.
__global__ void __launch_bounds__(kThreads)
    attention_kernel(DeviceKV kv, int32_t n_head, float scale, int32_t window, const float* q, DevicePlacement tp,
                     const int32_t* list, float* out, float* partial) {
  pdl_start();
  extern __shared__ float shared[];
  const int d = kv.head_dim;
  float* qs = shared;         // [d]
  float* ps = qs + d;         // [kThreads]: the tile's probabilities
  float* red = ps + kThreads; // [kThreads]: warp maxima, then the groups' sums
  const int h = int(blockIdx.x), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t t = list ? list[blockIdx.y] : blockIdx.y;
  const int hk = h / (n_head / kv.n_kv_heads);
  const int32_t* table = tp.ids + tp.offs[t];
  int32_t lo, hi;  // with gridDim.z > 1, this block's run of tiles (FlashDecoding)
  split_keys(tp.pos[t], window, kThreads, lo, hi);

  const float* qsrc = q + (t * n_head + h) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) qs[i] = kv.f16 ? h2f(f2h(qsrc[i])) : qsrc[i];
  __syncthreads();

  const int n_sub = (d <= kThreads && kThreads % d == 0) ? kThreads / d : 1;  // key groups
  const int dt = n_sub > 1 ? d : kThreads;                                     // threads per group
  const int sub = threadIdx.x / dt, i0 = threadIdx.x % dt;
  float acc[kMaxDimPerThread];
#pragma unroll
  for (int r = 0; r < kMaxDimPerThread; ++r) acc[r] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  for (int32_t k0 = lo; k0 <= hi; k0 += kThreads) {
    const int n = min(kThreads, hi - k0 + 1);
    float s = -INFINITY;
    if (int(threadIdx.x) < n) s = dot_row(qs, kv.k, kv.f16, key_row(kv, table, hk, k0 + int(threadIdx.x)), d) * scale;
    const float wmax = warp_max(s);
    if (lane == 0) red[warp] = wmax;
    __syncthreads();
    float tile_max = red[0];
    for (int w = 1; w < kThreads / 32; ++w) tile_max = fmaxf(tile_max, red[w]);
    const float m_new = fmaxf(m, tile_max);
    const float corr = expf(m - m_new);  // 0 on the first tile (m = -inf)
    const float p_mine = int(threadIdx.x) < n ? expf(s - m_new) : 0.0f;
    ps[threadIdx.x] = p_mine;
    const float psum = warp_sum(p_mine);  // the tile's sum: warp sums in red[4 ..), after the maxima
    if (lane == 0) red[kThreads / 32 + warp] = psum;
    __syncthreads();
    l *= corr;
    for (int w = 0; w < kThreads / 32; ++w) l += red[kThreads / 32 + w];
#pragma unroll
    for (int r = 0; r < kMaxDimPerThread; ++r) acc[r] *= corr;
    for (int j = sub; j < n; j += n_sub) {
      const float p = ps[j];
      const size_t row = key_row(kv, table, hk, k0 + j);
#pragma unroll
      for (int r = 0; r < kMaxDimPerThread; ++r) {
        const int i = i0 + r * dt;
        if (i < d) acc[r] += p * kv_load(kv.v, kv.f16, row + i);
      }
    }
    m = m_new;
    __syncthreads();  // ps and red are rewritten by the next tile
  }

  // The result: out = acc / l, or with a split the unnormalized (m, l, acc) of this run of keys
  // (m = -inf, l = 0 for an empty run) for merge_kernel.
  float* o;
  float inv;
  if (gridDim.z == 1) {
    o = out + (t * n_head + h) * d;
    inv = 1.0f / l;
  } else {
    float* rec = partial + ((t * n_head + h) * gridDim.z + blockIdx.z) * size_t(d + 2);
    if (threadIdx.x == 0) {
      rec[0] = m;
      rec[1] = l;
    }
    o = rec + 2;
    inv = 1.0f;
  }
  if (n_sub > 1) {
    red[threadIdx.x] = acc[0];
    __syncthreads();
    if (sub == 0) {
      float a = 0.0f;
      for (int g = 0; g < n_sub; ++g) a += red[g * d + i0];
      o[i0] = a * inv;
    }
  } else {
#pragma unroll
    for (int r = 0; r < kMaxDimPerThread; ++r) {
      const int i = i0 + r * kThreads;
      if (i < d) o[i] = acc[r] * inv;
    }
  }
}

// Combines the S partial results of each (head, token): out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
// The splits' (m, l) are read by the block's threads together (not one after another), the
// weights e^(m_s - M) kept in shared memory; each thread then sums its dimensions over the splits.
constexpr int kMaxSplits = 128;
__global__ void merge_kernel(const float* partial, const int32_t* list, int32_t n_head, int32_t d, int32_t n_split,
                             float* out) {
  pdl_start();
  __shared__ float ms[kMaxSplits], ws[kMaxSplits];
  __shared__ float inv_l;
  const int h = int(blockIdx.x);
  const int64_t t = list ? list[blockIdx.y] : blockIdx.y;
  const float* rec = partial + (t * n_head + h) * n_split * size_t(d + 2);
  for (int sp = threadIdx.x; sp < n_split; sp += blockDim.x) {
    const float* r = rec + sp * size_t(d + 2);
    ms[sp] = r[1] > 0.0f ? r[0] : -INFINITY;  // an empty split has l = 0
    ws[sp] = r[1];
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float mx = -INFINITY;
    for (int sp = 0; sp < n_split; ++sp) mx = fmaxf(mx, ms[sp]);
    float l = 0.0f;
    for (int sp = 0; sp < n_split; ++sp) {
      const float f = ws[sp] > 0.0f ? expf(ms[sp] - mx) : 0.0f;
      l += ws[sp] * f;
      ms[sp] = f;  // from here on: the split's weight
    }
    inv_l = 1.0f / l;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    float a = 0.0f;
    for (int sp = 0; sp < n_split; ++sp)
      if (ms[sp] != 0.0f) a += rec[sp * size_t(d + 2) + 2 + i] * ms[sp];
    out[(t * n_head + h) * d + i] = a * inv_l;
  }
}

}  // namespace

int32_t attention_splits(int64_t n_tokens, int32_t n_head, int32_t max_keys) {
  // Enough blocks to fill the GPU (about 2 per SM of an H100) when few (token, head) pairs are
  // there to share the work, each split at least one tile of keys.
  const int64_t pairs = n_tokens * n_head, want = 264;
  if (pairs >= want) return 1;
  const int64_t tiles = (int64_t(max_keys) + kThreads - 1) / kThreads;
  return int32_t(std::max<int64_t>(1, std::min<int64_t>({want / pairs, tiles, 64})));
}

void attention(const DeviceKV& kv, int32_t n_head, float scale, int32_t window, const float* q,
               const DevicePlacement& tp, const int32_t* list, int64_t n_list, float* out, int32_t n_split,
               float* partial, cudaStream_t s) {
  const int64_t n_tokens = list ? n_list : tp.n_tokens;
  if (n_tokens <= 0) return;
  if (kv.head_dim > kThreads * kMaxDimPerThread)
    throw Error(fmt("CUDA attention: head_dim %d is larger than %d", kv.head_dim, kThreads * kMaxDimPerThread));
  if (kv.n_kv_heads <= 0 || n_head % kv.n_kv_heads != 0)
    throw Error(fmt("CUDA attention: %d query heads are not a multiple of %d KV heads", n_head, kv.n_kv_heads));
  if (n_tokens > 65535) throw Error("CUDA attention: more than 65535 tokens in one batch");
  n_split = std::max(1, n_split);
  const dim3 grid{unsigned(n_head), unsigned(n_tokens), unsigned(n_split)};
  const size_t shared = size_t(kv.head_dim + 2 * kThreads) * sizeof(float);
  launch_pdl(attention_kernel, dim3(grid), dim3(kThreads), shared, s, kv, n_head, scale, window, q, tp, list, out, partial);
  check_launch("attention");
  if (n_split > 1) attention_merge(partial, list, n_tokens, n_head, kv.head_dim, n_split, out, s);
}

void attention_merge(const float* partial, const int32_t* list, int64_t n_tokens, int32_t n_head, int32_t head_dim,
                     int32_t n_split, float* out, cudaStream_t s) {
  if (n_split > kMaxSplits) throw Error(fmt("CUDA attention: %d splits, at most %d", n_split, kMaxSplits));
  launch_pdl(merge_kernel, dim3(unsigned(n_head), unsigned(n_tokens)), dim3(128), 0, s, partial, list, n_head, head_dim, n_split, out);
  check_launch("attention merge");
}

}  // namespace squeeze::cuda
