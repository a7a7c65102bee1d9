// Elementwise, normalization, RoPE, embedding and KV-write kernels of the CUDA backend. Each
// kernel is small and does one thing; the arithmetic follows the CPU backend's exact numerics
// (backend/cpu/cpu_backend.cpp): RMSNorm sums squares in double, RoPE frequencies are computed as
// Hugging Face does (base^(-2i/d) in float, cos/sin in double), GELU is the tanh form in float.
#include <climits>

#include "backend/cuda/dequant.cuh"
#include "backend/cuda/kernels.h"

namespace squeeze::cuda {

namespace {

constexpr int kThreads = 256;

// ---- embedding rows ------------------------------------------------------------------------

template <GGMLType T>
__global__ void get_rows_kernel(const uint8_t* table, size_t row_bytes, int64_t dim, const int32_t* ids, int64_t n,
                                float* out) {
  pdl_start();
  const int64_t groups = dim / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * groups) return;
  const int64_t r = i / groups, g = i % groups;
  float v[8];
  group8<T>(table + size_t(ids[r]) * row_bytes, g, v);
  float* o = out + r * dim + 8 * g;
#pragma unroll
  for (int j = 0; j < 8; ++j) o[j] = v[j];
}

__global__ void gather_rows_kernel(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst) {
  pdl_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * width) return;
  const int64_t r = i / width, c = i % width;
  dst[i] = src[int64_t(rows[r]) * width + c];
}

// ---- RMSNorm ---------------------------------------------------------------------------------

// The sum of v over the block (blockDim.x a multiple of 32, at most 1024).
__device__ double block_sum(double v) {
  __shared__ double part[32];
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? part[lane] : 0.0;
    v = warp_sum(v);
    if (lane == 0) part[0] = v;
  }
  __syncthreads();
  const double total = part[0];
  __syncthreads();  // part may be reused by the caller's next call
  return total;
}

// 1 / rms of the block's row xr (after xr += delta when given), the squares summed in double.
// Thread i handles elements i, i + blockDim.x, ...
__device__ float inv_rms(float* xr, const float* delta, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    float v = xr[i];
    if (delta) {
      v += delta[i];
      xr[i] = v;
    }
    ss += double(v) * double(v);
  }
  ss = block_sum(ss);
  return 1.0f / sqrtf(float(ss / double(n)) + eps);
}

// One block per row. With delta: x += delta first. y may alias x or delta: every element is read
// by the thread that later writes it, after the block-wide sum.
__global__ void rms_norm_kernel(float* x, const float* delta, const float* w, float w_offset, int64_t n, float eps,
                                float* y) {
  pdl_start();
  float* xr = x + int64_t(blockIdx.x) * n;
  float* yr = y + int64_t(blockIdx.x) * n;
  const float s = inv_rms(xr, delta ? delta + int64_t(blockIdx.x) * n : nullptr, n, eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = (xr[i] * s) * (w[i] + w_offset);
}

// rms_norm_kernel that also writes y quantized as the integer matvec's activations (q8x_bytes(n)
// per row; n % 32 == 0, blockDim.x a multiple of 32): warp w's lanes take the 32-element blocks
// w, w + warps, ..., so each element is still read and written by one thread.
__global__ void rms_norm_q8_kernel(float* x, const float* delta, const float* w, float w_offset, int64_t n, float eps,
                                   float* y, uint8_t* xq) {
  pdl_start();
  float* xr = x + int64_t(blockIdx.x) * n;
  float* yr = y + int64_t(blockIdx.x) * n;
  const float s = inv_rms(xr, delta ? delta + int64_t(blockIdx.x) * n : nullptr, n, eps);
  uint8_t* qrow = xq + size_t(blockIdx.x) * q8x_bytes(n);
  const int lane = threadIdx.x & 31;
  for (int64_t b = threadIdx.x >> 5; b < n / 32; b += blockDim.x >> 5) {
    const int64_t i = 32 * b + lane;
    const float v = (xr[i] * s) * (w[i] + w_offset);
    yr[i] = v;
    quantize_block32(v, lane, qrow, n, b);
  }
}

// The decode form (few rows): each thread holds V float4 chunks of its row (chunk c = threadIdx.x +
// j * blockDim.x) in registers, so x, delta and w are each read in one round trip (w before
// pdl_start: weights do not depend on the kernels before), instead of one dependent round trip
// per element of a strided loop. Same results as rms_norm_kernel / rms_norm_q8_kernel up to the
// order of the (double) sum of squares. With xq: 8 consecutive threads hold a 32-element block.
template <int V, bool kQ8>
__global__ void rms_norm_vec_kernel(float* x, const float* delta, const float* w, float w_offset, int64_t n, float eps,
                                    float* y, uint8_t* xq) {
  const int64_t n4 = n / 4;
  float4 wv[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t c = threadIdx.x + int64_t(j) * blockDim.x;
    if (c < n4) wv[j] = reinterpret_cast<const float4*>(w)[c];
  }
  pdl_start();
  float4* xr = reinterpret_cast<float4*>(x + int64_t(blockIdx.x) * n);
  const float4* dr = delta ? reinterpret_cast<const float4*>(delta + int64_t(blockIdx.x) * n) : nullptr;
  float4 v[V];
  double ss = 0;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t c = threadIdx.x + int64_t(j) * blockDim.x;
    if (c >= n4) continue;
    v[j] = xr[c];
    if (dr) {
      const float4 d = dr[c];
      v[j] = make_float4(v[j].x + d.x, v[j].y + d.y, v[j].z + d.z, v[j].w + d.w);
    }
    ss += double(v[j].x) * v[j].x + double(v[j].y) * v[j].y + double(v[j].z) * v[j].z + double(v[j].w) * v[j].w;
  }
  if (dr)
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const int64_t c = threadIdx.x + int64_t(j) * blockDim.x;
      if (c < n4) xr[c] = v[j];
    }
  ss = block_sum(ss);
  const float s = 1.0f / sqrtf(float(ss / double(n)) + eps);
  float4* yr = reinterpret_cast<float4*>(y + int64_t(blockIdx.x) * n);
  uint8_t* qrow = kQ8 ? xq + size_t(blockIdx.x) * q8x_bytes(n) : nullptr;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t c = threadIdx.x + int64_t(j) * blockDim.x;
    const bool on = c < n4;  // whole 8-thread groups are on or off (n % 32 == 0 with kQ8)
    if (!kQ8 && !on) continue;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (on) {
      o = make_float4((v[j].x * s) * (wv[j].x + w_offset), (v[j].y * s) * (wv[j].y + w_offset),
                      (v[j].z * s) * (wv[j].z + w_offset), (v[j].w * s) * (wv[j].w + w_offset));
      yr[c] = o;
    }
    if constexpr (kQ8) {
      const float q[4] = {o.x, o.y, o.z, o.w};
      quantize_block<4>(q, int(c & 7), qrow, n, c >> 3, on);
    }
  }
}

// ---- argmax -------------------------------------------------------------------------------

__device__ __forceinline__ void take_better(float& best, int32_t& bi, float v, int32_t i) {
  // NaN compares false both ways and is never taken; ties go to the lower index.
  if (v > best || (v == best && i < bi)) {
    best = v;
    bi = i;
  }
}

// One block per row.
__global__ void argmax_rows_kernel(const float* x, int64_t n, int32_t* out) {
  pdl_start();
  __shared__ float sv[32];
  __shared__ int32_t si[32];
  const float* r = x + int64_t(blockIdx.x) * n;
  float best = -INFINITY;
  int32_t bi = INT32_MAX;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) take_better(best, bi, r[i], int32_t(i));
  for (int o = 16; o > 0; o >>= 1)
    take_better(best, bi, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, bi, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sv[warp] = best;
    si[warp] = bi;
  }
  __syncthreads();
  if (warp == 0) {
    best = lane < int(blockDim.x >> 5) ? sv[lane] : -INFINITY;
    bi = lane < int(blockDim.x >> 5) ? si[lane] : INT32_MAX;
    for (int o = 16; o > 0; o >>= 1)
      take_better(best, bi, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, bi, o));
    if (lane == 0) out[blockIdx.x] = bi == INT32_MAX ? 0 : bi;  // a row of NaN only
  }
}

// ---- pointwise -------------------------------------------------------------------------------

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  pdl_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__global__ void add_bias_kernel(float* x, const float* bias, int64_t rows, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < rows * n) x[i] += bias[i % n];
}

__global__ void scale_kernel(float* x, float c, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= c;
}

__global__ void softcap_kernel(float* x, float c, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = c * tanhf(x[i] / c);
}


template <bool kSilu>
__global__ void glu_kernel(const float* gate, const float* up, float* out, int64_t n) {
  pdl_start();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = (kSilu ? silu(gate[i]) : gelu_tanh(gate[i])) * up[i];
}

// ---- RoPE ------------------------------------------------------------------------------------

// cos and sin of pair i's angle at position pos (frequencies as Hugging Face computes them).
__device__ __forceinline__ void rope_angle(int32_t i, int32_t d, float base, float freq_scale, const float* freq_factors,
                                           int32_t pos, float& c, float& s) {
  float inv = 1.0f / powf(base, float(2 * i) / float(d));
  inv *= freq_scale;
  if (freq_factors) inv /= freq_factors[i];
  const float theta = float(pos) * inv;
  c = float(cos(double(theta)));
  s = float(sin(double(theta)));
}

// One thread per (token, head, pair). Pairs (i, i + d/2) for NEOX, (2i, 2i + 1) otherwise.
__global__ void rope_kernel(float* x, int64_t n_heads, const int32_t* pos, int64_t n_tokens, int32_t d, float base,
                            float freq_scale, const float* freq_factors, bool neox) {
  const int32_t half = d / 2;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n_tokens * n_heads * half) return;
  const int32_t i = int32_t(idx % half);
  const int64_t th = idx / half, t = th / n_heads;
  float c, s;
  rope_angle(i, d, base, freq_scale, freq_factors, pos[t], c, s);
  float* v = x + th * d;
  const int32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
}

__device__ __forceinline__ void kv_store(const DeviceKV& kv, uint8_t* base, size_t e, float v) {
  if (kv.f16) reinterpret_cast<uint16_t*>(base)[e] = f2h(v);
  else reinterpret_cast<float*>(base)[e] = v;
}

// rope_kernel over the query heads and the key heads of a token at once; a key thread also stores
// its rotated pair, and the value elements of the same places, in the cache.
__global__ void rope_kv_write_kernel(float* q, int64_t n_head, float* k, const float* v, DeviceKV kv, DevicePlacement tp,
                                     float base, float freq_scale, const float* freq_factors, bool neox) {
  const int32_t d = kv.head_dim, half = d / 2;
  const int64_t heads = n_head + kv.n_kv_heads;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= tp.n_tokens * heads * half) return;
  const int32_t i = int32_t(idx % half);
  const int64_t th = idx / half, t = th / heads, h = th % heads;
  // The placement arrays were copied in before the step's first kernel and the frequency factors
  // are weights: the angle and the cache slot are found before waiting for the product of q, k, v.
  const int32_t p = tp.pos[t];
  float c, s;
  rope_angle(i, d, base, freq_scale, freq_factors, p, c, s);
  const int32_t block = h < n_head ? 0 : tp.ids[tp.offs[t] + p / kv.block_size], slot = p % kv.block_size;
  pdl_start();
  const int32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
  float* x = h < n_head ? q + (t * n_head + h) * d : k + (t * kv.n_kv_heads + (h - n_head)) * d;
  const float x0 = x[a], x1 = x[b];
  const float r0 = x0 * c - x1 * s, r1 = x0 * s + x1 * c;
  x[a] = r0;
  x[b] = r1;
  if (h < n_head) return;
  const int64_t hk = h - n_head;
  const size_t e = ((size_t(block) * kv.n_kv_heads + hk) * kv.block_size + slot) * d;
  const float* vr = v + (t * kv.n_kv_heads + hk) * d;
  kv_store(kv, kv.k, e + a, r0);
  kv_store(kv, kv.k, e + b, r1);
  kv_store(kv, kv.v, e + a, vr[a]);
  kv_store(kv, kv.v, e + b, vr[b]);
}

// ---- KV cache write --------------------------------------------------------------------------

// One thread per (token, kv head, element).
__global__ void kv_write_kernel(DeviceKV kv, const float* k, const float* v, DevicePlacement tp) {
  const int64_t row = int64_t(kv.n_kv_heads) * kv.head_dim;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= tp.n_tokens * row) return;
  const int64_t t = idx / row;
  const int32_t h = int32_t((idx % row) / kv.head_dim), i = int32_t(idx % kv.head_dim);
  const int32_t p = tp.pos[t];
  const int32_t block = tp.ids[tp.offs[t] + p / kv.block_size], slot = p % kv.block_size;
  const size_t e = ((size_t(block) * kv.n_kv_heads + h) * kv.block_size + slot) * kv.head_dim + i;
  if (kv.f16) {
    reinterpret_cast<uint16_t*>(kv.k)[e] = f2h(k[idx]);
    reinterpret_cast<uint16_t*>(kv.v)[e] = f2h(v[idx]);
  } else {
    reinterpret_cast<float*>(kv.k)[e] = k[idx];
    reinterpret_cast<float*>(kv.v)[e] = v[idx];
  }
}

}  // namespace

bool type_supported(GGMLType t) {
  switch (t) {
#define SQZ_CASE(T) case GGMLType::T:
    SQZ_CUDA_TYPES(SQZ_CASE)
#undef SQZ_CASE
    return true;
    default: return false;
  }
}

void get_rows(GGMLType type, const uint8_t* table, size_t row_bytes, int64_t dim, const int32_t* ids, int64_t n,
              float* out, cudaStream_t s) {
  if (n <= 0) return;
  if (dim % 8 != 0) throw Error(fmt("CUDA get_rows: row length %lld is not a multiple of 8", (long long)dim));
  const unsigned grid = blocks_for(n * (dim / 8), kThreads);
  switch (type) {
#define SQZ_CASE(T) \
  case GGMLType::T: launch_pdl(get_rows_kernel<GGMLType::T>, dim3(grid), dim3(kThreads), 0, s, table, row_bytes, dim, ids, n, out); break;
    SQZ_CUDA_TYPES(SQZ_CASE)
#undef SQZ_CASE
    case kQ8_0R: launch_pdl(get_rows_kernel<kQ8_0R>, dim3(grid), dim3(kThreads), 0, s, table, row_bytes, dim, ids, n, out); break;
    case kQ4_0R: launch_pdl(get_rows_kernel<kQ4_0R>, dim3(grid), dim3(kThreads), 0, s, table, row_bytes, dim, ids, n, out); break;
    case kQ6_KR: launch_pdl(get_rows_kernel<kQ6_KR>, dim3(grid), dim3(kThreads), 0, s, table, row_bytes, dim, ids, n, out); break;
    default: throw Error(fmt("CUDA get_rows: no kernel for tensor type %s", type_name(type)));
  }
  check_launch("get_rows");
}

void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out, cudaStream_t s) {
  if (rows <= 0) return;
  if (rows > 0x7fffffff || n > 0x7fffffff) throw Error("CUDA argmax: too many rows or columns");
  launch_pdl(argmax_rows_kernel, dim3(unsigned(rows)), dim3(1024), 0, s, x, n, out);
}

void gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst, cudaStream_t s) {
  if (n <= 0) return;
  launch_pdl(gather_rows_kernel, dim3(blocks_for(n * width, kThreads)), dim3(kThreads), 0, s, src, width, rows, n, dst);
  check_launch("gather_rows");
}

void rms_norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
              float* y, cudaStream_t s, uint8_t* xq) {
  if (rows <= 0) return;
  // Few rows (decode): each thread holds its elements in registers (rms_norm_vec_kernel).
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const int64_t n4 = n / 4;
  if (rows <= 16 && n % 32 == 0 && n4 <= 4 * 1024 && aligned(x) && aligned(w) && aligned(y) &&
      (!delta || aligned(delta)) && (!xq || aligned(xq))) {
    const int v = n4 <= 1024 ? 1 : n4 <= 2048 ? 2 : 4;
    const int threads = int((n4 + v - 1) / v + 31) / 32 * 32;
    auto go = [&](auto kernel) {
      launch_pdl(kernel, dim3(unsigned(rows)), dim3(threads), 0, s, x, delta, w, w_offset, n, eps, y, xq);
    };
    if (xq) {
      if (v == 1) go(rms_norm_vec_kernel<1, true>);
      else if (v == 2) go(rms_norm_vec_kernel<2, true>);
      else go(rms_norm_vec_kernel<4, true>);
    } else {
      if (v == 1) go(rms_norm_vec_kernel<1, false>);
      else if (v == 2) go(rms_norm_vec_kernel<2, false>);
      else go(rms_norm_vec_kernel<4, false>);
    }
    check_launch("rms_norm");
    return;
  }
  const int threads = rows <= 16 && n >= 2048 ? 1024 : n >= 1024 ? 256 : n >= 256 ? 128 : 32;
  if (xq) {
    if (n % 32 != 0) throw Error("CUDA rms_norm: quantized output needs rows of a multiple of 32");
    launch_pdl(rms_norm_q8_kernel, dim3(unsigned(rows)), dim3(threads), 0, s, x, delta, w, w_offset, n, eps, y, xq);
  } else {
    launch_pdl(rms_norm_kernel, dim3(unsigned(rows)), dim3(threads), 0, s, x, delta, w, w_offset, n, eps, y);
  }
  check_launch("rms_norm");
}

void add(float* x, const float* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  launch_pdl(add_kernel, dim3(blocks_for(n, kThreads)), dim3(kThreads), 0, s, x, y, n);
  check_launch("add");
}

void add_bias(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t s) {
  if (rows * n <= 0) return;
  add_bias_kernel<<<blocks_for(rows * n, kThreads), kThreads, 0, s>>>(x, bias, rows, n);
  check_launch("add_bias");
}

void scale(float* x, float c, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  scale_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, c, n);
  check_launch("scale");
}

void softcap(float* x, float c, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  softcap_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, c, n);
  check_launch("softcap");
}

void glu(const float* gate, const float* up, float* out, int64_t n, bool silu, cudaStream_t s) {
  if (n <= 0) return;
  if (silu) launch_pdl(glu_kernel<true>, dim3(blocks_for(n, kThreads)), dim3(kThreads), 0, s, gate, up, out, n);
  else launch_pdl(glu_kernel<false>, dim3(blocks_for(n, kThreads)), dim3(kThreads), 0, s, gate, up, out, n);
  check_launch("glu");
}

void rope(float* x, int64_t n_heads, const int32_t* pos, int64_t n_tokens, int32_t head_dim, float base,
          float freq_scale, const float* freq_factors, bool neox, cudaStream_t s) {
  const int64_t n = n_tokens * n_heads * (head_dim / 2);
  if (n <= 0) return;
  rope_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, n_heads, pos, n_tokens, head_dim, base, freq_scale,
                                                            freq_factors, neox);
  check_launch("rope");
}

void rope_kv_write(float* q, int64_t n_head, float* k, const float* v, const DeviceKV& kv, const DevicePlacement& tp,
                   float base, float freq_scale, const float* freq_factors, bool neox, cudaStream_t s) {
  if (tp.n_tokens <= 0) return;
  const int64_t n = tp.n_tokens * (n_head + kv.n_kv_heads) * (kv.head_dim / 2);
  launch_pdl(rope_kv_write_kernel, dim3(blocks_for(n, kThreads)), dim3(kThreads), 0, s, q, n_head, k, v, kv, tp, base, freq_scale,
                                                                     freq_factors, neox);
  check_launch("rope_kv_write");
}

void kv_write(const DeviceKV& kv, const float* k, const float* v, const DevicePlacement& tp, cudaStream_t s) {
  const int64_t n = tp.n_tokens * kv.n_kv_heads * kv.head_dim;
  if (n <= 0) return;
  kv_write_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(kv, k, v, tp);
  check_launch("kv_write");
}

}  // namespace squeeze::cuda
