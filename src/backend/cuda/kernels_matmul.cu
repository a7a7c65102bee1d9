// Weight x activation products on the GPU: y[t][o] = sum_k W[o][k] x[t][k], fp32 accumulation.
//   - decode (up to 8 tokens; weights dequantized in registers, never to a full-size copy):
//       * Q8_0, Q4_0, Q6_K (in their repacked device layouts, kernels.h) and Q4_K: the
//         activations are quantized to 8 bits and multiplied on the integer units
//         (kernels_matvec_q8.cu);
//       * other types: fp32 activations, one warp per weight row, each lane walking groups of 8
//         elements (four in flight), up to 4 tokens per pass so each weight byte is read once per
//         4 tokens.
//   - prefill (more than 8 tokens): with cuBLAS and non-F32 weights, tensor cores (activations
//     rounded to f16, or bf16 for BF16 weights; quantized weights dequantized to f16 in runs of
//     rows of at most 64 MiB); otherwise (F32 weights: the 1e-3 bar) a shared-memory tiled fp32
//     GEMM, 64 weight rows x 64 tokens per block, K in steps of 32.
#include <algorithm>

#include "backend/cuda/dequant.cuh"
#include "backend/cuda/kernels.h"

#ifdef SQUEEZE_HAVE_CUBLAS
#include "backend/cuda/cublas_loader.h"
#include <cuda_bf16.h>
#endif

namespace squeeze::cuda {

namespace {

// ---- decode: warp per row --------------------------------------------------------------------

constexpr int kMatvecWarps = 4;        // rows per block
constexpr int kMatvecMaxTokens = 4;    // tokens per pass
constexpr int64_t kMatvecUpTo = 8;     // at most this many tokens use matvec

// An activation as the CPU backend and the tensor-core path feed 16-bit weights: rounded to the
// weight's type (round to nearest even in integer arithmetic: bf16 exactly; f16 exactly within
// its normal range, which is where activations live), so that GPU and CPU products agree to the
// order of summation. Other types take the activation as it is.
template <GGMLType T>
__device__ __forceinline__ float round_x(float v) {
  if constexpr (T == GGMLType::BF16) {
    uint32_t u = __float_as_uint(v);
    u += 0x7fffu + ((u >> 16) & 1u);
    return __uint_as_float(u & 0xffff0000u);
  } else if constexpr (T == GGMLType::F16) {
    uint32_t u = __float_as_uint(v);
    u += 0xfffu + ((u >> 13) & 1u);
    return __uint_as_float(u & 0xffffe000u);
  } else {
    return v;
  }
}

// acc[t] += v . x[t][8g .. 8g + 8), in a fixed order of explicitly rounded operations (the same
// bits for a row whatever the instantiation, so results do not depend on the batch).
template <GGMLType T, int NT>
__device__ __forceinline__ void dot8(const float v[8], const float* x, int64_t k, int64_t g, float acc[NT]) {
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float4* xp = reinterpret_cast<const float4*>(x + t * k) + 2 * g;
    const float4 a = xp[0], b = xp[1];
    float s = __fmul_rn(v[0], round_x<T>(a.x));
    s = __fmaf_rn(v[1], round_x<T>(a.y), s);
    s = __fmaf_rn(v[2], round_x<T>(a.z), s);
    s = __fmaf_rn(v[3], round_x<T>(a.w), s);
    s = __fmaf_rn(v[4], round_x<T>(b.x), s);
    s = __fmaf_rn(v[5], round_x<T>(b.y), s);
    s = __fmaf_rn(v[6], round_x<T>(b.z), s);
    s = __fmaf_rn(v[7], round_x<T>(b.w), s);
    acc[t] = __fadd_rn(acc[t], s);
  }
}

// One warp per weight row, kMatvecWarps rows per block; blocks are assigned to the targets' weights
// in turn (tg.first_block). With kGlu (gate and up of one shape), a block takes 2 output rows:
// warps 0-1 their gate rows, warps 2-3 their up rows, and writes act(gate) * up.
template <GGMLType T, int NT, bool kGlu>
__global__ void __launch_bounds__(32 * kMatvecWarps)
    matvec_kernel(const MatvecTargets tg, size_t row_bytes, int64_t k, const float* __restrict__ x) {
  __shared__ float part[kMatvecWarps][NT];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const BlockTarget bt = block_target<kGlu>(tg);
  const uint8_t* w = kGlu && warp >= 2 ? tg.w[1] : bt.w;
  float* y = bt.y;
  const int64_t n_out = bt.n_out;
  const unsigned block = bt.block;
  const int64_t o = kGlu ? int64_t(block) * 2 + (warp & 1) : int64_t(block) * kMatvecWarps + warp;
  // The weights do not depend on the kernels before: the row's first bytes are fetched while
  // those finish (about 16 MB over a full wave of blocks; L2: 50 MB).
  if (lane == 0 && o < n_out) prefetch_l2(w + size_t(o) * row_bytes, row_bytes < 4096 ? row_bytes : 4096);
  pdl_start();
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  if (o < n_out) {
    const uint8_t* row = w + size_t(o) * row_bytes;
    const int64_t groups = k / 8;
    int64_t g = lane;
    // Four groups per lane in flight: the weight loads are issued before any of them is used.
    for (; g + 96 < groups; g += 128) {
      float v[4][8];
#pragma unroll
      for (int u = 0; u < 4; ++u) group8<T>(row, g + 32 * u, v[u]);
#pragma unroll
      for (int u = 0; u < 4; ++u) dot8<T, NT>(v[u], x, k, g + 32 * u, acc);
    }
    for (; g < groups; g += 32) {
      float v[8];
      group8<T>(row, g, v);
      dot8<T, NT>(v, x, k, g, acc);
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = warp_sum(acc[t]);
  if constexpr (!kGlu) {
    if (lane == 0 && o < n_out)
#pragma unroll
      for (int t = 0; t < NT; ++t) y[t * n_out + o] = acc[t];
  } else {
    if (lane == 0)
#pragma unroll
      for (int t = 0; t < NT; ++t) part[warp][t] = acc[t];
    __syncthreads();
    if (threadIdx.x < 2 * NT) {
      const int r = threadIdx.x / NT, t = threadIdx.x % NT;
      const int64_t oo = int64_t(block) * 2 + r;
      const float gate = part[r][t], up = part[2 + r][t];
      if (oo < n_out) y[t * n_out + oo] = (tg.glu == 1 ? silu(gate) : gelu_tanh(gate)) * up;
    }
  }
}

template <GGMLType T, bool kGlu>
void launch_matvec(MatvecTargets tg, size_t row_bytes, int64_t k, const float* x, int64_t n_tokens, cudaStream_t s) {
  const unsigned total = assign_blocks(tg, kGlu ? 2 : kMatvecWarps);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kMatvecMaxTokens) {
    const int nt = int(std::min<int64_t>(kMatvecMaxTokens, n_tokens - t0));
    const float* xt = x + t0 * k;
    const MatvecTargets tt = from_token(tg, t0);
    switch (nt) {
      case 1: launch_pdl(matvec_kernel<T, 1, kGlu>, dim3(total), dim3(32 * kMatvecWarps), 0, s, tt, row_bytes, k, xt); break;
      case 2: launch_pdl(matvec_kernel<T, 2, kGlu>, dim3(total), dim3(32 * kMatvecWarps), 0, s, tt, row_bytes, k, xt); break;
      case 3: launch_pdl(matvec_kernel<T, 3, kGlu>, dim3(total), dim3(32 * kMatvecWarps), 0, s, tt, row_bytes, k, xt); break;
      default: launch_pdl(matvec_kernel<T, 4, kGlu>, dim3(total), dim3(32 * kMatvecWarps), 0, s, tt, row_bytes, k, xt); break;
    }
    check_launch("matvec");
  }
}

template <GGMLType T>
void launch_matvec(const MatvecTargets& tg, size_t row_bytes, int64_t k, const float* x, int64_t n_tokens,
                   cudaStream_t s) {
  if constexpr (T == GGMLType::F16 || T == GGMLType::BF16) {
    if (tg.glu) return launch_matvec<T, true>(tg, row_bytes, k, x, n_tokens, s);
  }
  if (tg.glu) throw Error("CUDA matmul: no GLU epilogue for this weight type");
  launch_matvec<T, false>(tg, row_bytes, k, x, n_tokens, s);
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


// ---- prefill on tensor cores (cuBLAS) --------------------------------------------------------------
// The activations are rounded to the weights' 16-bit type once per product (f16, or bf16 for BF16
// weights); quantized weights are dequantized to f16 in runs of rows into the scratch buffer
// (at most kTcChunkBytes at a time, never a copy of the whole model); cublasGemmEx multiplies
// with fp32 accumulation and fp32 output.

constexpr size_t kTcChunkBytes = size_t(64) << 20;

__global__ void to_half_kernel(const float* __restrict__ x, uint16_t* __restrict__ out, int64_t n, bool bf16) {
  const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  if (i >= n) return;
  const float4 a = *reinterpret_cast<const float4*>(x + i);
  const float v[4] = {a.x, a.y, a.z, a.w};
  uint16_t h[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (bf16) {
      uint32_t u = __float_as_uint(v[j]);
      u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even (finite inputs)
      h[j] = uint16_t(u >> 16);
    } else {
      h[j] = f2h(v[j]);
    }
  }
  uint2 o;
  o.x = uint32_t(h[0]) | uint32_t(h[1]) << 16;
  o.y = uint32_t(h[2]) | uint32_t(h[3]) << 16;
  *reinterpret_cast<uint2*>(out + i) = o;
}

template <GGMLType T>
__global__ void dequant_f16_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t k, int64_t rows,
                                   uint16_t* __restrict__ out) {
  const int64_t groups = k / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * groups) return;
  const int64_t r = i / groups, g = i % groups;
  float v[8];
  group8<T>(w + size_t(r) * row_bytes, g, v);
  uint4 o;
  o.x = uint32_t(f2h(v[0])) | uint32_t(f2h(v[1])) << 16;
  o.y = uint32_t(f2h(v[2])) | uint32_t(f2h(v[3])) << 16;
  o.z = uint32_t(f2h(v[4])) | uint32_t(f2h(v[5])) << 16;
  o.w = uint32_t(f2h(v[6])) | uint32_t(f2h(v[7])) << 16;
  reinterpret_cast<uint4*>(out + r * k)[g] = o;
}

int64_t tc_chunk_rows(int64_t k, int64_t n_out) {
  const int64_t fit = std::max<int64_t>(128, int64_t(kTcChunkBytes / (2 * size_t(k))) / 128 * 128);
  return std::min(n_out, fit);
}

#ifdef SQUEEZE_HAVE_CUBLAS
void check_cublas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) throw Error(fmt("cuBLAS error %d in %s", int(st), what));
}

template <GGMLType T>
void launch_tc(const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x, int64_t n_tokens,
               float* y, cudaStream_t s, const TensorCores& tc) {
  // The handle is bound to the backend's stream (cublasSetStream would also drop its workspace).
  auto h = static_cast<cublasHandle_t>(tc.handle);
  (void)s;
  constexpr bool bf16 = T == GGMLType::BF16;
  constexpr bool direct = T == GGMLType::F16 || T == GGMLType::BF16;
  auto* xh = static_cast<uint16_t*>(tc.scratch);
  const int64_t nx = n_tokens * k;
  to_half_kernel<<<blocks_for(nx / 4, 256), 256, 0, s>>>(x, xh, nx, bf16);
  check_launch("to_half");
  const cudaDataType_t dt = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  const float one = 1.0f, zero = 0.0f;
  if (direct) {
    check_cublas(cublas_api()->gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n_out), int(n_tokens), int(k), &one, w, dt, int(k), xh,
                              dt, int(k), &zero, y, CUDA_R_32F, int(n_out), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
    return;
  }
  auto* wh = reinterpret_cast<uint16_t*>(static_cast<uint8_t*>(tc.scratch) + align256(size_t(nx) * 2));
  const int64_t chunk = tc_chunk_rows(k, n_out);
  for (int64_t o0 = 0; o0 < n_out; o0 += chunk) {
    const int64_t rows = std::min(chunk, n_out - o0);
    dequant_f16_kernel<T><<<blocks_for(rows * (k / 8), 256), 256, 0, s>>>(w + size_t(o0) * row_bytes, row_bytes, k,
                                                                         rows, wh);
    check_launch("dequant_f16");
    check_cublas(cublas_api()->gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(n_tokens), int(k), &one, wh, CUDA_R_16F,
                              int(k), xh, CUDA_R_16F, int(k), &zero, y + o0, CUDA_R_32F, int(n_out),
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }
}
#endif

template <GGMLType T>
void launch(const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x, int64_t n_tokens, float* y,
            cudaStream_t s, const TensorCores* tc) {
#ifdef SQUEEZE_HAVE_CUBLAS
  if (tc && tc->handle && matmul_tc_scratch(T, k, n_out, n_tokens) > 0) {
    if (tc->scratch_bytes < matmul_tc_scratch(T, k, n_out, n_tokens)) throw Error("CUDA matmul: scratch too small");
    return launch_tc<T>(w, row_bytes, k, n_out, x, n_tokens, y, s, *tc);
  }
#else
  (void)tc;
#endif
  launch_gemm<T>(w, row_bytes, k, n_out, x, n_tokens, y, s);
}

// Device layouts: runs of 8 blocks of the file's layout -> [8 bodies][8 f16 scales]. A block is
// kBlock bytes with its f16 scale at byte kScaleAt (Q8_0, Q4_0: first; Q6_K: last).
template <int kBlock, int kScaleAt>
__global__ void repack_kernel(const uint8_t* __restrict__ src, uint8_t* __restrict__ dst, int64_t n_blocks) {
  constexpr int kBody = kBlock - 2;
  const int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= n_blocks) return;
  const uint8_t* in = src + b * kBlock;
  uint8_t* run = dst + (b >> 3) * (8 * kBlock);
  const int bi = int(b & 7);
  for (int i = 0; i < kBody; ++i) run[kBody * bi + i] = in[i < kScaleAt ? i : i + 2];
  run[8 * kBody + 2 * bi] = in[kScaleAt];
  run[8 * kBody + 2 * bi + 1] = in[kScaleAt + 1];
}

}  // namespace

GGMLType device_type(GGMLType t, int64_t k) {
  if (t == GGMLType::Q6_K && k % 2048 == 0) return kQ6_KR;
  if (k % 256 != 0) return t;
  if (t == GGMLType::Q8_0) return kQ8_0R;
  if (t == GGMLType::Q4_0) return kQ4_0R;
  return t;
}

void repack(GGMLType t, const uint8_t* src, uint8_t* dst, size_t bytes, cudaStream_t s) {
  if (t == GGMLType::Q8_0) {
    const int64_t nb = int64_t(bytes / 34);
    repack_kernel<34, 0><<<blocks_for(nb, 256), 256, 0, s>>>(src, dst, nb);
  } else if (t == GGMLType::Q4_0) {
    const int64_t nb = int64_t(bytes / 18);
    repack_kernel<18, 0><<<blocks_for(nb, 256), 256, 0, s>>>(src, dst, nb);
  } else if (t == GGMLType::Q6_K) {
    const int64_t nb = int64_t(bytes / 210);
    repack_kernel<210, 208><<<blocks_for(nb, 256), 256, 0, s>>>(src, dst, nb);
  } else {
    throw Error(fmt("CUDA repack: no device layout for %s", type_name(t)));
  }
  check_launch("repack");
}

bool have_tensor_cores() {
#ifdef SQUEEZE_HAVE_CUBLAS
  return true;
#else
  return false;
#endif
}

size_t matmul_tc_scratch(GGMLType type, int64_t k, int64_t n_out, int64_t n_tokens) {
  if (!have_tensor_cores() || n_tokens <= kMatvecUpTo || type == GGMLType::F32) return 0;
  if (k % 8 != 0 || k > (int64_t(1) << 30) || n_out > (int64_t(1) << 30) || n_tokens > (int64_t(1) << 30)) return 0;
  const size_t xb = align256(size_t(n_tokens) * size_t(k) * 2);
  if (type == GGMLType::F16 || type == GGMLType::BF16) return xb;
  return xb + align256(size_t(tc_chunk_rows(k, n_out)) * size_t(k) * 2);
}

bool matmul_quantizes_activations(GGMLType type, int64_t k, int64_t n_tokens) {
  return n_tokens <= kMatvecUpTo && k % 256 == 0 && matvec_q8_supported(type);
}

bool matmul_glu_quantizes(GGMLType type, int64_t k, int64_t n_out, int64_t n_tokens) {
  return matmul_quantizes_activations(type, k, n_tokens) && matvec_q8_glu_quantizes(type, k, n_out);
}

bool matmul_glu_supported(GGMLType type, int64_t k, int64_t n_tokens) {
  return n_tokens <= kMatvecUpTo &&
         (matmul_quantizes_activations(type, k, n_tokens) || type == GGMLType::F16 || type == GGMLType::BF16);
}

size_t matmul_scratch(GGMLType type, int64_t k, int64_t n_out, int64_t n_tokens, bool tensor_cores) {
  if (matmul_quantizes_activations(type, k, n_tokens)) return size_t(n_tokens) * q8x_bytes(k);
  return tensor_cores ? matmul_tc_scratch(type, k, n_out, n_tokens) : 0;
}

void matmul(GGMLType type, const MatvecTargets& tg, size_t row_bytes, int64_t k, const float* x, int64_t n_tokens,
            cudaStream_t s, const TensorCores* tc, bool x_quantized, size_t xq_offset) {
  if (n_tokens <= 0) return;
  if (k % 8 != 0) throw Error(fmt("CUDA matmul: row length %lld is not a multiple of 8", (long long)k));
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0) throw Error("CUDA matmul: activations are not 16-byte aligned");
  if (matmul_quantizes_activations(type, k, n_tokens)) {
    if (!tc || tc->scratch_bytes < xq_offset + size_t(n_tokens) * q8x_bytes(k))
      throw Error("CUDA matmul: scratch too small");
    auto* xq = static_cast<uint8_t*>(tc->scratch) + xq_offset;
    if (!x_quantized) quantize_q8x(x, k, n_tokens, xq, s);
    return matvec_q8(type, tg, row_bytes, k, xq, n_tokens, s);
  }
  if (n_tokens <= kMatvecUpTo) {
    switch (type) {
#define SQZ_CASE(T) \
  case GGMLType::T: return launch_matvec<GGMLType::T>(tg, row_bytes, k, x, n_tokens, s);
      SQZ_CUDA_TYPES(SQZ_CASE)
#undef SQZ_CASE
      case kQ8_0R: return launch_matvec<kQ8_0R>(tg, row_bytes, k, x, n_tokens, s);
      case kQ4_0R: return launch_matvec<kQ4_0R>(tg, row_bytes, k, x, n_tokens, s);
      case kQ6_KR: return launch_matvec<kQ6_KR>(tg, row_bytes, k, x, n_tokens, s);
      default: throw Error(fmt("CUDA matmul: no kernel for tensor type %s", type_name(type)));
    }
  }
  if (tg.glu) throw Error("CUDA matmul: a GLU epilogue is for decode products only");
  for (int i = 0; i < tg.n; ++i) {
    const uint8_t* w = tg.w[i];
    const int64_t n_out = tg.n_out[i];
    float* y = tg.y[i];
    if (n_out <= 0) continue;
    switch (type) {
#define SQZ_CASE(T) \
  case GGMLType::T: launch<GGMLType::T>(w, row_bytes, k, n_out, x, n_tokens, y, s, tc); continue;
      SQZ_CUDA_TYPES(SQZ_CASE)
#undef SQZ_CASE
      case kQ8_0R: launch<kQ8_0R>(w, row_bytes, k, n_out, x, n_tokens, y, s, tc); continue;
      case kQ4_0R: launch<kQ4_0R>(w, row_bytes, k, n_out, x, n_tokens, y, s, tc); continue;
      case kQ6_KR: launch<kQ6_KR>(w, row_bytes, k, n_out, x, n_tokens, y, s, tc); continue;
      default: break;
    }
    throw Error(fmt("CUDA matmul: no kernel for tensor type %s", type_name(type)));
  }
}

void matmul(GGMLType type, const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x,
            int64_t n_tokens, float* y, cudaStream_t s, const TensorCores* tc) {
  MatvecTargets tg;
  tg.n = 1;
  tg.w[0] = w;
  tg.y[0] = y;
  tg.n_out[0] = n_out;
  matmul(type, tg, row_bytes, k, x, n_tokens, s, tc);
}

}  // namespace squeeze::cuda
