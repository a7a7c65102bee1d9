// Weight x activation products on the GPU: y[t][o] = sum_k W[o][k] x[t][k], activations and
// accumulation in float32 (no activation quantization). Weights are dequantized in registers
// eight elements at a time (dequant.cuh), never to a full-size copy.
//   - matvec (decode, up to 8 tokens): one warp per weight row, each lane walking groups of 8
//     elements (four groups in flight), up to 4 tokens per pass so each weight byte is read once
//     per 4 tokens.
//   - gemm (prefill): 64 weight rows x 64 tokens per block, K in steps of 32; the weight tile is
//     dequantized into shared memory, each thread accumulates a 4 x 4 patch.
// Tensor cores are a later step.
#include "backend/cuda/dequant.cuh"
#include "backend/cuda/kernels.h"

namespace squeeze::cuda {

namespace {

// ---- decode: warp per row --------------------------------------------------------------------

constexpr int kMatvecWarps = 4;        // rows per block
constexpr int kMatvecMaxTokens = 4;    // tokens per pass
constexpr int64_t kMatvecUpTo = 8;     // at most this many tokens use matvec

// acc[t] += v . x[t][8g .. 8g + 8)
template <int NT>
__device__ __forceinline__ void dot8(const float v[8], const float* x, int64_t k, int64_t g, float acc[NT]) {
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float4* xp = reinterpret_cast<const float4*>(x + t * k) + 2 * g;
    const float4 a = xp[0], b = xp[1];
    acc[t] += v[0] * a.x + v[1] * a.y + v[2] * a.z + v[3] * a.w + v[4] * b.x + v[5] * b.y + v[6] * b.z + v[7] * b.w;
  }
}

template <GGMLType T, int NT>
__global__ void __launch_bounds__(32 * kMatvecWarps)
    matvec_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t k, int64_t n_out,
                  const float* __restrict__ x, float* __restrict__ y) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t o = int64_t(blockIdx.x) * kMatvecWarps + warp;
  if (o >= n_out) return;
  const uint8_t* row = w + size_t(o) * row_bytes;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  const int64_t groups = k / 8;
  int64_t g = lane;
  // Four groups per lane in flight: the weight loads are issued before any of them is used.
  for (; g + 96 < groups; g += 128) {
    float v[4][8];
#pragma unroll
    for (int u = 0; u < 4; ++u) group8<T>(row, g + 32 * u, v[u]);
#pragma unroll
    for (int u = 0; u < 4; ++u) dot8<NT>(v[u], x, k, g + 32 * u, acc);
  }
  for (; g < groups; g += 32) {
    float v[8];
    group8<T>(row, g, v);
    dot8<NT>(v, x, k, g, acc);
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float sum = warp_sum(acc[t]);
    if (lane == 0) y[t * n_out + o] = sum;
  }
}

template <GGMLType T>
void launch_matvec(const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x, int64_t n_tokens,
                   float* y, cudaStream_t s) {
  const unsigned grid = blocks_for(n_out, kMatvecWarps);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kMatvecMaxTokens) {
    const int nt = int(std::min<int64_t>(kMatvecMaxTokens, n_tokens - t0));
    const float* xt = x + t0 * k;
    float* yt = y + t0 * n_out;
    switch (nt) {
      case 1: matvec_kernel<T, 1><<<grid, 32 * kMatvecWarps, 0, s>>>(w, row_bytes, k, n_out, xt, yt); break;
      case 2: matvec_kernel<T, 2><<<grid, 32 * kMatvecWarps, 0, s>>>(w, row_bytes, k, n_out, xt, yt); break;
      case 3: matvec_kernel<T, 3><<<grid, 32 * kMatvecWarps, 0, s>>>(w, row_bytes, k, n_out, xt, yt); break;
      default: matvec_kernel<T, 4><<<grid, 32 * kMatvecWarps, 0, s>>>(w, row_bytes, k, n_out, xt, yt); break;
    }
    check_launch("matvec");
  }
}

// ---- prefill: shared-memory tiled GEMM ---------------------------------------------------------

constexpr int kBM = 64, kBN = 64, kBK = 32, kGemmThreads = 256;

// Dequantizes the weight tile rows o0..o0+63, elements k0..k0+31 into ws[k][row] (zeros outside).
template <GGMLType T>
__device__ __forceinline__ void load_w_tile(const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, int64_t o0,
                                            int64_t k0, float (*ws)[kBM + 4]) {
  const int r = threadIdx.x >> 2, p = threadIdx.x & 3;
  const int64_t g = k0 / 8 + p;
  float v[8];
  if (o0 + r < n_out && 8 * g < k) {
    group8<T>(w + size_t(o0 + r) * row_bytes, g, v);
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = 0.0f;
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) ws[8 * p + j][r] = v[j];
}

// Copies activations of tokens t0..t0+63, elements k0..k0+31 into xs[k][token] (zeros outside).
__device__ __forceinline__ void load_x_tile(const float* x, int64_t k, int64_t n_tokens, int64_t t0, int64_t k0,
                                            float (*xs)[kBN + 4]) {
#pragma unroll
  for (int i = 0; i < (kBN * kBK / 4) / kGemmThreads; ++i) {
    const int idx = threadIdx.x + kGemmThreads * i, tok = idx >> 3, q = idx & 7;
    const int64_t kk = k0 + 4 * q;
    float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (t0 + tok < n_tokens && kk < k) a = *reinterpret_cast<const float4*>(x + (t0 + tok) * k + kk);
    xs[4 * q + 0][tok] = a.x;
    xs[4 * q + 1][tok] = a.y;
    xs[4 * q + 2][tok] = a.z;
    xs[4 * q + 3][tok] = a.w;
  }
}

template <GGMLType T>
__global__ void __launch_bounds__(kGemmThreads)
    gemm_kernel(const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x, int64_t n_tokens,
                float* y) {
  __shared__ float ws[kBK][kBM + 4];
  __shared__ float xs[kBK][kBN + 4];
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  const int64_t o0 = int64_t(blockIdx.x) * kBM, t0 = int64_t(blockIdx.y) * kBN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < k; k0 += kBK) {
    load_w_tile<T>(w, row_bytes, k, n_out, o0, k0, ws);
    load_x_tile(x, k, n_tokens, t0, k0, xs);
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kBK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = ws[kk][tx + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = xs[kk][ty + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int64_t t = t0 + ty + 16 * j;
    if (t >= n_tokens) continue;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t o = o0 + tx + 16 * i;
      if (o < n_out) y[t * n_out + o] = acc[i][j];
    }
  }
}

template <GGMLType T>
void launch_gemm(const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x, int64_t n_tokens,
                 float* y, cudaStream_t s) {
  const dim3 grid(blocks_for(n_out, kBM), blocks_for(n_tokens, kBN));
  if (grid.y > 65535) throw Error(fmt("CUDA matmul: %lld tokens are too many for one call", (long long)n_tokens));
  gemm_kernel<T><<<grid, kGemmThreads, 0, s>>>(w, row_bytes, k, n_out, x, n_tokens, y);
  check_launch("gemm");
}

template <GGMLType T>
void launch(const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x, int64_t n_tokens, float* y,
            cudaStream_t s) {
  if (n_tokens <= kMatvecUpTo) launch_matvec<T>(w, row_bytes, k, n_out, x, n_tokens, y, s);
  else launch_gemm<T>(w, row_bytes, k, n_out, x, n_tokens, y, s);
}

}  // namespace

void matmul(GGMLType type, const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x,
            int64_t n_tokens, float* y, cudaStream_t s) {
  if (n_tokens <= 0 || n_out <= 0) return;
  if (k % 8 != 0) throw Error(fmt("CUDA matmul: row length %lld is not a multiple of 8", (long long)k));
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0) throw Error("CUDA matmul: activations are not 16-byte aligned");
  switch (type) {
#define SQZ_CASE(T) \
  case GGMLType::T: return launch<GGMLType::T>(w, row_bytes, k, n_out, x, n_tokens, y, s);
    SQZ_CUDA_TYPES(SQZ_CASE)
#undef SQZ_CASE
    default: break;
  }
  throw Error(fmt("CUDA matmul: no kernel for tensor type %s", type_name(type)));
}

}  // namespace squeeze::cuda
