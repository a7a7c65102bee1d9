// Prefill attention on the tensor cores (FlashAttention-2 style) over the paged F16 KV cache.
// Key tiles are gathered with cp.async into two shared-memory stages: the next tile's rows are in
// flight while the block computes on the current one.
//
// The batch's runs of consecutive positions of one sequence are cut into query tiles of up to 64
// tokens (the host lists them: attention_tiles). One block of 4 warps takes a (tile, query head):
// each warp owns 16 query rows, held as f16 A fragments for the whole head_dim. Keys are visited
// in tiles of 64 positions gathered from the paged cache into shared memory (K and V rows padded
// by 8 halves, so that the fragment loads hit 32 distinct banks); per key tile a warp computes its
// 16 x 64 scores with mma.sync m16n8k16 (f16 in, f32 accumulate), masks them (causal, window),
// updates its rows' running maximum and sum (online softmax, in registers: a row's 64 scores sit
// in the 4 threads of a quad), rounds the probabilities to f16 and multiplies them by V (the score
// accumulators are laid out as the A fragments of that product, so P never leaves registers).
// The semantics are the CPU backend's (scores q.k * scale, keys pos_q - window < pos_k <= pos_q,
// the query rounded to f16 as with any F16 cache); the probabilities are rounded to f16 for the
// P x V product.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/kernels.h"
#include "backend/cuda/cuda_common.cuh"

namespace squeeze::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kRows = 16 * kWarps;  // query rows per tile
constexpr int kKeys = 64;           // keys per tile

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// c += a * b: a 16x16 row-major f16, b 16x8 column-major f16, c 16x8 f32.
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8x8 f16 matrices from shared memory, transposed (each lane gives one row address).
__device__ __forceinline__ void ldmatrix_x4_trans(const void* row, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                                  uint32_t& r3) {
  const uint32_t a = uint32_t(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(a));
}

__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// 16 bytes global -> shared without passing through registers; zeros when !valid.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const uint32_t d = uint32_t(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

template <int D>
__host__ __device__ constexpr int stride_halves() { return D + 8; }  // halves per shared K / V row
// Dynamic shared memory: two stages of (K tile, V tile), so that one key tile is gathered while
// the block computes on the other.
template <int D>
constexpr size_t flash_smem_bytes() { return size_t(2) * 2 * kKeys * stride_halves<D>() * sizeof(uint16_t); }

template <int D>
__global__ void __launch_bounds__(32 * kWarps)
    flash_attention_kernel(DeviceKV kv, int32_t n_head, float scale, int32_t window, const float* __restrict__ q,
                           DevicePlacement tp, const int32_t* __restrict__ tiles, float* __restrict__ out) {
  constexpr int kStride = stride_halves<D>();
  extern __shared__ uint4 smem_words[];  // 16-byte aligned
  uint16_t* const stage_base = reinterpret_cast<uint16_t*>(smem_words);
  // Tiles late in their sequences have the most keys: start them first.
  const int tile = int(gridDim.x - 1 - blockIdx.x);
  const int h = int(blockIdx.y);
  const int32_t t0 = tiles[2 * tile], n = tiles[2 * tile + 1];
  const int hk = h / (n_head / kv.n_kv_heads);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const int32_t* table = tp.ids + tp.offs[t0];
  const int r0 = 16 * warp + g, r1 = r0 + 8;  // this thread's two query rows
  const int32_t pos0 = r0 < n ? tp.pos[t0 + r0] : -1, pos1 = r1 < n ? tp.pos[t0 + r1] : -1;
  const int32_t p_first = tp.pos[t0], p_last = tp.pos[t0 + n - 1];
  const int32_t k_first = window > 0 ? max(0, p_first - window + 1) : 0;

  // The query rows as A fragments (f16), chunk c = dimensions 16c .. 16c + 15.
  uint32_t qa[D / 16][4];
  {
    const float* q0 = q + (size_t(t0 + r0) * n_head + h) * D;
    const float* q1 = q + (size_t(t0 + r1) * n_head + h) * D;
#pragma unroll
    for (int c = 0; c < D / 16; ++c) {
      const int col = 16 * c + 2 * tig;
      float2 a = make_float2(0.f, 0.f), b = a, e = a, f = a;
      if (r0 < n) {
        a = *reinterpret_cast<const float2*>(q0 + col);
        e = *reinterpret_cast<const float2*>(q0 + col + 8);
      }
      if (r1 < n) {
        b = *reinterpret_cast<const float2*>(q1 + col);
        f = *reinterpret_cast<const float2*>(q1 + col + 8);
      }
      qa[c][0] = pack_half2(a.x, a.y);
      qa[c][1] = pack_half2(b.x, b.y);
      qa[c][2] = pack_half2(e.x, e.y);
      qa[c][3] = pack_half2(f.x, f.y);
    }
  }

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
  const uint16_t* kc = reinterpret_cast<const uint16_t*>(kv.k);
  const uint16_t* vc = reinterpret_cast<const uint16_t*>(kv.v);

  // Gathers key tile k0 into stage st (zeros past the last key: masked, and no stale NaN reaches
  // p * V).
  auto gather = [&](int st, int32_t k0) {
    uint16_t* ks = stage_base + st * 2 * kKeys * kStride;
    uint16_t* vs = ks + kKeys * kStride;
    for (int i = threadIdx.x; i < kKeys * (D / 8); i += 32 * kWarps) {
      const int row = i / (D / 8), ch = i % (D / 8);
      const int32_t kk = k0 + row;
      const bool valid = kk <= p_last;
      const size_t e = valid ? ((size_t(table[kk / kv.block_size]) * kv.n_kv_heads + hk) * kv.block_size +
                                kk % kv.block_size) * D + 8 * ch
                             : 0;
      cp_async16(ks + row * kStride + 8 * ch, kc + e, valid);
      cp_async16(vs + row * kStride + 8 * ch, vc + e, valid);
    }
  };
  gather(0, k_first);
  cp_async_commit();
  int it = 0;
  for (int32_t k0 = k_first; k0 <= p_last; k0 += kKeys, ++it) {
    const int st = it & 1;
    if (k0 + kKeys <= p_last) gather(st ^ 1, k0 + kKeys);  // the next tile, while this one is used
    cp_async_commit();
    cp_async_wait_one();  // this tile's group has landed (the next one may still be in flight)
    __syncthreads();
    const uint16_t* ks = stage_base + st * 2 * kKeys * kStride;
    const uint16_t* vs = ks + kKeys * kStride;

    // Scores: s[j] covers keys k0 + 8j .. 8j + 7 (this thread: columns 2tig, 2tig + 1; rows r0, r1).
    float s[kKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
      s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
      const uint16_t* krow = ks + (8 * j + g) * kStride + 2 * tig;
#pragma unroll
      for (int c = 0; c < D / 16; ++c) {
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(krow + 16 * c);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(krow + 16 * c + 8);
        mma16816(s[j], qa[c], b0, b1);
      }
    }
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int32_t key = k0 + 8 * j + 2 * tig + (e & 1);
        const int32_t pos = e < 2 ? pos0 : pos1;
        const bool ok = key <= pos && (window <= 0 || key > pos - window);
        s[j][e] = ok ? s[j][e] * scale : -INFINITY;
        if (e < 2) mx0 = fmaxf(mx0, s[j][e]);
        else mx1 = fmaxf(mx1, s[j][e]);
      }
    const float mn0 = fmaxf(m0, quad_max(mx0)), mn1 = fmaxf(m1, quad_max(mx1));
    // A row with no key yet keeps m = -inf: its probabilities are 0 and nothing is rescaled.
    const float c0 = mn0 == -INFINITY ? 1.0f : expf(m0 - mn0), c1 = mn1 == -INFINITY ? 1.0f : expf(m1 - mn1);
    m0 = mn0;
    m1 = mn1;
    float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
      s[j][0] = mn0 == -INFINITY ? 0.0f : expf(s[j][0] - mn0);
      s[j][1] = mn0 == -INFINITY ? 0.0f : expf(s[j][1] - mn0);
      s[j][2] = mn1 == -INFINITY ? 0.0f : expf(s[j][2] - mn1);
      s[j][3] = mn1 == -INFINITY ? 0.0f : expf(s[j][3] - mn1);
      ps0 += s[j][0] + s[j][1];
      ps1 += s[j][2] + s[j][3];
    }
    l0 = l0 * c0 + ps0;
    l1 = l1 * c1 + ps1;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[j][0] *= c0;
      o[j][1] *= c0;
      o[j][2] *= c1;
      o[j][3] *= c1;
    }
    // o += P V: chunk c of 16 keys = score tiles 2c, 2c + 1 as an A fragment; V through
    // ldmatrix.trans, two 8-dimension tiles per load.
#pragma unroll
    for (int c = 0; c < kKeys / 16; ++c) {
      const uint32_t pa[4] = {pack_half2(s[2 * c][0], s[2 * c][1]), pack_half2(s[2 * c][2], s[2 * c][3]),
                              pack_half2(s[2 * c + 1][0], s[2 * c + 1][1]), pack_half2(s[2 * c + 1][2], s[2 * c + 1][3])};
      const int mi = lane >> 3, r = lane & 7;
      const uint16_t* vrow = vs + (16 * c + r + 8 * (mi & 1)) * kStride + 8 * (mi >> 1);
#pragma unroll
      for (int jj = 0; jj < D / 16; ++jj) {
        uint32_t b0, b1, b2, b3;
        ldmatrix_x4_trans(vrow + 16 * jj, b0, b1, b2, b3);
        mma16816(o[2 * jj], pa, b0, b1);
        mma16816(o[2 * jj + 1], pa, b2, b3);
      }
    }
    __syncthreads();  // every warp is done with stage st before the next iteration refills it
  }

  l0 = quad_sum(l0);
  l1 = quad_sum(l1);
  if (r0 < n) {
    float* dst = out + (size_t(t0 + r0) * n_head + h) * D + 2 * tig;
    const float inv = 1.0f / l0;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(o[j][0] * inv, o[j][1] * inv);
  }
  if (r1 < n) {
    float* dst = out + (size_t(t0 + r1) * n_head + h) * D + 2 * tig;
    const float inv = 1.0f / l1;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(o[j][2] * inv, o[j][3] * inv);
  }
}

// One instantiation per head size, so that each kernel gets its own shared-memory limit raised
// (once: the static belongs to that instantiation).
template <int D>
void launch_flash(dim3 grid, cudaStream_t s, const DeviceKV& kv, int32_t n_head, float scale, int32_t window,
                  const float* q, const DevicePlacement& tp, const int32_t* tiles, float* out) {
  static const cudaError_t set = cudaFuncSetAttribute(flash_attention_kernel<D>,
                                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                      int(flash_smem_bytes<D>()));
  check(set, "flash attention shared memory");
  flash_attention_kernel<D><<<grid, 32 * kWarps, flash_smem_bytes<D>(), s>>>(kv, n_head, scale, window, q, tp, tiles,
                                                                             out);
}

}  // namespace

int32_t flash_tile_rows() { return kRows; }

bool flash_attention_supported(const DeviceKV& kv) { return kv.f16 && (kv.head_dim == 64 || kv.head_dim == 128); }

void flash_attention(const DeviceKV& kv, int32_t n_head, float scale, int32_t window, const float* q,
                     const DevicePlacement& tp, const int32_t* tiles, int32_t n_tiles, float* out, cudaStream_t s) {
  if (n_tiles <= 0) return;
  if (!flash_attention_supported(kv)) throw Error("CUDA flash attention: needs an F16 cache and head_dim 64 or 128");
  if (kv.n_kv_heads <= 0 || n_head % kv.n_kv_heads != 0)
    throw Error(fmt("CUDA attention: %d query heads are not a multiple of %d KV heads", n_head, kv.n_kv_heads));
  const dim3 grid{unsigned(n_tiles), unsigned(n_head)};
  if (kv.head_dim == 64) launch_flash<64>(grid, s, kv, n_head, scale, window, q, tp, tiles, out);
  else launch_flash<128>(grid, s, kv, n_head, scale, window, q, tp, tiles, out);
  check_launch("flash_attention");
}

}  // namespace squeeze::cuda
