// Decode products of quantized weights on the integer units: the activations are quantized to
// 8 bits in blocks of 32 (quantize_q8x: d = max|x| / 127, q = round(x / d), as the CPU backend's
// Q8_0 activations), and each thread multiplies 4 weight quants by 4 activation quants in one
// __dp4a. A float product per weight (convert, subtract the offset, FMA) made the fp32 kernels
// issue-bound at about 40% of the memory bandwidth for 4-bit weights; here a 4-bit weight costs
// about half an instruction, so the kernels stream at the bandwidth limit.
//
// Layout of the quantized activations (per token, q8x_bytes(k) bytes): k int8 quants, then k / 32
// float2 {d, d * sum of the block's quants} (the sum serves the offset of Q4_0 and the mins of
// Q4_K).
//
// The weight types, each read with 16-byte loads from a 16-byte-aligned device layout:
//   kQ8_0R, kQ4_0R: runs of 8 blocks as [8 quant arrays][8 f16 scales] (kernels.h); a unit of
//     work is one 32-element block;
//   Q4_K: the file's 144-byte super-blocks; a unit is one 32-byte chunk of quants (sub-blocks 2c
//     and 2c + 1, 64 elements);
//   kQ6_KR: runs of 8 super-blocks as [8 x (ql 128, qh 64, scales 16)][8 f16 scales]; a unit is
//     16 bytes each of two ql runs and of qh: elements 16p + l + {0, 32, 64, 96} of one half.
// A block of 128 threads takes R rows per group of `lanes` threads (128, or 64 / 32 when the row
// has fewer units), each thread loading its units of the R rows before using them; the group's
// partial sums are added in shared memory. Several weights that share the activations (Q, K and
// V; gate and up) run in one launch. The float arithmetic is written with explicit _rn
// intrinsics: no FMA contraction left to the compiler, so every instantiation (tokens per pass,
// rows, GLU epilogue) rounds a row the same way and results do not depend on the batch.
#include <algorithm>
#include <cstdlib>

#include "backend/cuda/dequant.cuh"
#include "backend/cuda/kernels.h"

namespace squeeze::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kMaxTokens = 4;  // tokens per pass
// Bytes of each weight row fetched into L2 before the kernel waits for the previous one: about one
// pass of a group over the row, and about 16 MB over a full wave of blocks (L2: 50 MB).
constexpr size_t kPrefetchRowBytes = 2304;
constexpr int kMaxChunks = 32;
constexpr int kBlocksPerSm = 4;  // SQUEEZE_CUDA_QMV_BPS

// One warp per 32-element block.
__global__ void quantize_q8x_kernel(const float* __restrict__ x, int64_t k, int64_t n_blocks,
                                    uint8_t* __restrict__ out) {
  pdl_start();
  const int64_t b = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (b >= n_blocks) return;
  const int64_t per_token = k / 32, t = b / per_token, j = b % per_token;
  const int lane = threadIdx.x & 31;
  quantize_block32(x[t * k + 32 * j + lane], lane, out + size_t(t) * q8x_bytes(k), k, j);
}

// Activation quants of elements [e, e + 16) as four words, and the {d, d*sum} of block e / 32.
__device__ __forceinline__ uint4 x16(const uint8_t* xq, int64_t e) { return __ldg(reinterpret_cast<const uint4*>(xq + e)); }
__device__ __forceinline__ float2 xds(const uint8_t* xq, int64_t k, int64_t block) {
  return __ldg(reinterpret_cast<const float2*>(xq + k) + block);
}
__device__ __forceinline__ int dot16(uint4 w, uint4 x, int acc) {
  acc = __dp4a(int(w.x), int(x.x), acc);
  acc = __dp4a(int(w.y), int(x.y), acc);
  acc = __dp4a(int(w.z), int(x.z), acc);
  return __dp4a(int(w.w), int(x.w), acc);
}
__device__ __forceinline__ uint4 nibbles(uint4 w, int shift) {
  return make_uint4((w.x >> shift) & 0x0f0f0f0fu, (w.y >> shift) & 0x0f0f0f0fu, (w.z >> shift) & 0x0f0f0f0fu,
                    (w.w >> shift) & 0x0f0f0f0fu);
}

template <GGMLType T>
struct Q8Unit;

template <>
struct Q8Unit<kQ8_0R> {
  static constexpr int kElems = 32;
  struct W {
    uint4 a, b;
    float d;
  };
  __device__ static void load(const uint8_t* row, int64_t u, W& w) {
    const uint8_t* run = row + (u >> 3) * 272;
    const int bi = int(u & 7);
    w.a = *reinterpret_cast<const uint4*>(run + 32 * bi);
    w.b = *reinterpret_cast<const uint4*>(run + 32 * bi + 16);
    w.d = h2f(ld16(run + 256 + 2 * bi));
  }
  __device__ static float dot(const W& w, const uint8_t* xq, int64_t k, int64_t u) {
    const int s = dot16(w.b, x16(xq, 32 * u + 16), dot16(w.a, x16(xq, 32 * u), 0));
    return __fmul_rn(__fmul_rn(w.d, xds(xq, k, u).x), float(s));
  }
};

template <>
struct Q8Unit<kQ4_0R> {
  static constexpr int kElems = 32;
  struct W {
    uint4 q;
    float d;
  };
  __device__ static void load(const uint8_t* row, int64_t u, W& w) {
    const uint8_t* run = row + (u >> 3) * 144;
    const int bi = int(u & 7);
    w.q = *reinterpret_cast<const uint4*>(run + 16 * bi);
    w.d = h2f(ld16(run + 128 + 2 * bi));
  }
  // sum (q - 8) * xq = sum q * xq - 8 * sum xq.
  __device__ static float dot(const W& w, const uint8_t* xq, int64_t k, int64_t u) {
    const int s = dot16(nibbles(w.q, 4), x16(xq, 32 * u + 16), dot16(nibbles(w.q, 0), x16(xq, 32 * u), 0));
    const float2 ds = xds(xq, k, u);
    return __fmul_rn(w.d, __fmaf_rn(ds.x, float(s), -8.0f * ds.y));
  }
};

template <>
struct Q8Unit<GGMLType::Q4_K> {
  static constexpr int kElems = 64;
  struct W {
    uint4 a, b;        // the chunk's 32 quant bytes
    float d0, m0, d1, m1;  // d * scale and dmin * min of sub-blocks 2c and 2c + 1
  };
  __device__ static int byte_of(const uint4& h, int i) {  // byte i of the 12 scale bytes
    const uint32_t v = i < 4 ? h.y : i < 8 ? h.z : h.w;
    return int((v >> (8 * (i & 3))) & 0xffu);
  }
  __device__ static void scale_min(const uint4& h, int t, int& sc, int& m) {
    if (t < 4) {
      sc = byte_of(h, t) & 63;
      m = byte_of(h, t + 4) & 63;
    } else {
      sc = (byte_of(h, t + 4) & 15) | ((byte_of(h, t - 4) >> 6) << 4);
      m = (byte_of(h, t + 4) >> 4) | ((byte_of(h, t) >> 6) << 4);
    }
  }
  __device__ static void load(const uint8_t* row, int64_t u, W& w) {
    const uint8_t* sb = row + (u >> 2) * 144;
    const int c = int(u & 3);
    const uint4 h = *reinterpret_cast<const uint4*>(sb);
    w.a = *reinterpret_cast<const uint4*>(sb + 16 + 32 * c);
    w.b = *reinterpret_cast<const uint4*>(sb + 32 + 32 * c);
    const float d = h2f(uint16_t(h.x & 0xffffu)), dmin = h2f(uint16_t(h.x >> 16));
    int sc, m;
    scale_min(h, 2 * c, sc, m);
    w.d0 = d * float(sc);
    w.m0 = dmin * float(m);
    scale_min(h, 2 * c + 1, sc, m);
    w.d1 = d * float(sc);
    w.m1 = dmin * float(m);
  }
  // Low nibbles: elements 64c + l (activation block 2u), high: 64c + 32 + l (block 2u + 1).
  __device__ static float dot(const W& w, const uint8_t* xq, int64_t k, int64_t u) {
    const int64_t e = 64 * u;
    const int s0 = dot16(nibbles(w.b, 0), x16(xq, e + 16), dot16(nibbles(w.a, 0), x16(xq, e), 0));
    const int s1 = dot16(nibbles(w.b, 4), x16(xq, e + 48), dot16(nibbles(w.a, 4), x16(xq, e + 32), 0));
    const float2 x0 = xds(xq, k, 2 * u), x1 = xds(xq, k, 2 * u + 1);
    const float a = __fmaf_rn(__fmul_rn(w.d0, x0.x), float(s0), -__fmul_rn(w.m0, x0.y));
    const float b = __fmaf_rn(__fmul_rn(w.d1, x1.x), float(s1), -__fmul_rn(w.m1, x1.y));
    return __fadd_rn(a, b);
  }
};

template <>
struct Q8Unit<kQ6_KR> {
  static constexpr int kElems = 64;
  struct W {
    uint4 la, lb, h;  // ql of elements l and l + 64, of l + 32 and l + 96, and their qh
    uint32_t sc;      // the four int8 scales of the unit's 16-element groups
    float d;
  };
  __device__ static void load(const uint8_t* row, int64_t u, W& w) {
    const int64_t b = u >> 2;
    const uint8_t* run = row + (b >> 3) * 1680;
    const int bi = int(b & 7), n = int(u >> 1) & 1, p = int(u & 1);
    const uint8_t* body = run + 208 * bi;
    w.la = *reinterpret_cast<const uint4*>(body + 64 * n + 16 * p);
    w.lb = *reinterpret_cast<const uint4*>(body + 64 * n + 32 + 16 * p);
    w.h = *reinterpret_cast<const uint4*>(body + 128 + 32 * n + 16 * p);
    const uint2 s = *reinterpret_cast<const uint2*>(body + 192 + 8 * n);  // scales 8n .. 8n + 7
    // bytes p, p + 2, p + 4, p + 6 of s
    w.sc = __byte_perm(s.x, s.y, 0x6420u + 0x1111u * uint32_t(p));
    w.d = h2f(ld16(run + 1664 + 2 * bi));
  }
  __device__ static uint32_t q6(uint32_t lo, uint32_t hi, int lshift, int hshift) {
    const uint32_t q = ((lo >> lshift) & 0x0f0f0f0fu) | (((hi >> hshift) & 0x03030303u) << 4);
    return __vsub4(q, 0x20202020u);  // 0..63 -> -32..31
  }
  __device__ static int dot_part(uint4 lo, uint4 hi, int lshift, int hshift, uint4 x) {
    int acc = __dp4a(int(q6(lo.x, hi.x, lshift, hshift)), int(x.x), 0);
    acc = __dp4a(int(q6(lo.y, hi.y, lshift, hshift)), int(x.y), acc);
    acc = __dp4a(int(q6(lo.z, hi.z, lshift, hshift)), int(x.z), acc);
    return __dp4a(int(q6(lo.w, hi.w, lshift, hshift)), int(x.w), acc);
  }
  // Part j covers elements 128n + 16p + 32j + i of the super-block (activation block 8b + 4n + j).
  __device__ static float dot(const W& w, const uint8_t* xq, int64_t k, int64_t u) {
    const int64_t b = u >> 2;
    const int n = int(u >> 1) & 1, p = int(u & 1);
    const int64_t e = 256 * b + 128 * n + 16 * p, xb = 8 * b + 4 * n;
    const int s0 = dot_part(w.la, w.h, 0, 0, x16(xq, e));
    const int s1 = dot_part(w.lb, w.h, 0, 2, x16(xq, e + 32));
    const int s2 = dot_part(w.la, w.h, 4, 4, x16(xq, e + 64));
    const int s3 = dot_part(w.lb, w.h, 4, 6, x16(xq, e + 96));
    const float sc0 = float(int8_t(w.sc & 0xffu)), sc1 = float(int8_t((w.sc >> 8) & 0xffu));
    const float sc2 = float(int8_t((w.sc >> 16) & 0xffu)), sc3 = float(int8_t(w.sc >> 24));
    float r = __fmul_rn(__fmul_rn(sc0, xds(xq, k, xb).x), float(s0));
    r = __fmaf_rn(__fmul_rn(sc1, xds(xq, k, xb + 1).x), float(s1), r);
    r = __fmaf_rn(__fmul_rn(sc2, xds(xq, k, xb + 2).x), float(s2), r);
    r = __fmaf_rn(__fmul_rn(sc3, xds(xq, k, xb + 3).x), float(s3), r);
    return __fmul_rn(w.d, r);
  }
};

// ---- K-quants: one pass per block ----------------------------------------------------------------
// The K-quants' units carry more state per row (scales, several quant runs): the chunked kernel
// below streamed them slower than these short blocks, each loading its rows' units once (8B
// Q4_K_M tg256 on one H100: 301 against 337 t/s, alternating runs).
// With kGlu, each group takes R rows of the gate (w[0]) and the same R rows of the up weight
// (w[1]) and writes act(gate) * up to y[0].
template <GGMLType T, int NT, int R, bool kGlu, bool kPair>
__global__ void __launch_bounds__(kThreads)
    qmv8_rows_kernel(const MatvecTargets tg, size_t row_bytes, int64_t k, int lanes, const uint8_t* __restrict__ xq) {
  using Q = Q8Unit<T>;
  constexpr int RT = kGlu ? 2 * R : R;  // rows per thread
  __shared__ float red[kThreads / 32][NT * RT];
  const BlockTarget bt = block_target<kGlu>(tg);
  const uint8_t* w = bt.w;
  float* y = bt.y;
  const int64_t n_out = bt.n_out;
  const unsigned block = bt.block;
  const int groups = kThreads / lanes, grp = threadIdx.x / lanes, li = threadIdx.x % lanes;
  const int64_t o0 = (int64_t(block) * groups + grp) * R;
  const uint8_t* rows[RT];
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    const int64_t o = o0 + r % R;
    rows[r] = (kGlu && r >= R ? tg.w[1] : w) + size_t(o < n_out ? o : n_out - 1) * row_bytes;
  }
  // The weights do not depend on the kernels before: their first bytes are fetched while those
  // finish (one request per row of each group, by the group's first threads).
  if (li < RT && o0 + li % R < n_out) prefetch_l2(rows[li], row_bytes < kPrefetchRowBytes ? row_bytes : kPrefetchRowBytes);
  pdl_start();
  float acc[NT][RT];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int r = 0; r < RT; ++r) acc[t][r] = 0.0f;
  const int64_t n_units = k / Q::kElems;
  const size_t x_stride = q8x_bytes(k);
  int64_t u = li;
  // kPair (long rows, as the FFN's down product): two passes' loads in flight before their use,
  // the sums still added pass by pass.
  if constexpr (kPair)
    for (; u + lanes < n_units; u += 2 * lanes) {
      typename Q::W wa[RT], wb[RT];
#pragma unroll
      for (int r = 0; r < RT; ++r) Q::load(rows[r], u, wa[r]);
#pragma unroll
      for (int r = 0; r < RT; ++r) Q::load(rows[r], u + lanes, wb[r]);
#pragma unroll
      for (int t = 0; t < NT; ++t)
#pragma unroll
        for (int r = 0; r < RT; ++r) {
          acc[t][r] = __fadd_rn(acc[t][r], Q::dot(wa[r], xq + t * x_stride, k, u));
          acc[t][r] = __fadd_rn(acc[t][r], Q::dot(wb[r], xq + t * x_stride, k, u + lanes));
        }
    }
  for (; u < n_units; u += lanes) {
    typename Q::W wu[RT];
#pragma unroll
    for (int r = 0; r < RT; ++r) Q::load(rows[r], u, wu[r]);
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int r = 0; r < RT; ++r) acc[t][r] = __fadd_rn(acc[t][r], Q::dot(wu[r], xq + t * x_stride, k, u));
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int r = 0; r < RT; ++r) {
      const float v = warp_sum(acc[t][r]);
      if (lane == 0) red[warp][t * RT + r] = v;
    }
  __syncthreads();
  const int warps_per_group = lanes / 32;
  if (threadIdx.x < groups * NT * R) {
    const int g = threadIdx.x / (NT * R), tr = threadIdx.x % (NT * R), t = tr / R, r = tr % R;
    float v = 0.0f, up = 0.0f;
    for (int i = 0; i < warps_per_group; ++i) {
      v += red[g * warps_per_group + i][t * RT + r];
      if (kGlu) up += red[g * warps_per_group + i][t * RT + R + r];
    }
    if (kGlu) v = (tg.glu == 1 ? silu(v) : gelu_tanh(v)) * up;
    const int64_t o = (int64_t(block) * groups + g) * R + r;
    if (o < n_out) y[t * n_out + o] = v;
  }
}

template <GGMLType T, int R, bool kGlu, bool kPair>
void launch_qmv8_rows(MatvecTargets tg, size_t row_bytes, int64_t k, const uint8_t* xq, int64_t n_tokens, cudaStream_t s) {
  const int64_t n_units = k / Q8Unit<T>::kElems;
  const int lanes = n_units >= 128 ? 128 : n_units >= 64 ? 64 : 32;
  const unsigned total = assign_blocks(tg, (kThreads / lanes) * R);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTokens) {
    const int nt = int(std::min<int64_t>(kMaxTokens, n_tokens - t0));
    const MatvecTargets tt = from_token(tg, t0);
    const uint8_t* xt = xq + size_t(t0) * q8x_bytes(k);
    switch (nt) {
      case 1: launch_pdl(qmv8_rows_kernel<T, 1, R, kGlu, kPair>, dim3(total), dim3(kThreads), 0, s, tt, row_bytes, k, lanes, xt); break;
      case 2: launch_pdl(qmv8_rows_kernel<T, 2, R, kGlu, kPair>, dim3(total), dim3(kThreads), 0, s, tt, row_bytes, k, lanes, xt); break;
      case 3: launch_pdl(qmv8_rows_kernel<T, 3, R, kGlu, kPair>, dim3(total), dim3(kThreads), 0, s, tt, row_bytes, k, lanes, xt); break;
      default: launch_pdl(qmv8_rows_kernel<T, 4, R, kGlu, kPair>, dim3(total), dim3(kThreads), 0, s, tt, row_bytes, k, lanes, xt); break;
    }
    check_launch("qmv8");
  }
}

template <GGMLType T, int R>
void launch_qmv8_rows(const MatvecTargets& tg, size_t row_bytes, int64_t k, const uint8_t* xq, int64_t n_tokens,
                 cudaStream_t s) {
  if (tg.glu) return launch_qmv8_rows<T, (R > 2 ? R / 2 : R), true, false>(tg, row_bytes, k, xq, n_tokens, s);
  // Rows of at least two passes of 128 threads (the FFN's down product): kPair.
  if (k / Q8Unit<T>::kElems >= 256) return launch_qmv8_rows<T, R, false, true>(tg, row_bytes, k, xq, n_tokens, s);
  launch_qmv8_rows<T, R, false, false>(tg, row_bytes, k, xq, n_tokens, s);
}

// ---- Q4_0 and Q8_0: blocks that stream several row chunks ---------------------------------------
// A block takes `chunks` runs of R rows per group of `lanes` threads (128, or 64 / 32 when the
// row has fewer units), rows_per_block = chunks * groups * R consecutive rows in all; a group's
// thread walks units li, li + lanes, ... of each of its chunks in turn. With several chunks a
// block streams its rows with the next step's loads (one unit of each of the R rows) in flight
// while the current one is multiplied, instead of thousands of short blocks that each load once,
// reduce and exit. Each chunk's per-thread sums are reduced across the warp when the chunk ends
// and across the group's warps once, at the end; the sums are added in the same order whatever
// chunks is, so the grid does not change the bits.
//
// With kGlu, each group takes R rows of the gate (w[0]) and the same R rows of the up weight
// (w[1]) and writes act(gate) * up to y[0]; with tg.yq and 32 rows per block, also that output
// in 8-bit blocks (quantize_q8x's layout and arithmetic) for the down product.
template <GGMLType T, int NT, int R, bool kGlu>
__global__ void __launch_bounds__(kThreads)
    qmv8_kernel(const MatvecTargets tg, size_t row_bytes, int64_t k, int lanes, int chunks, int prefetch_chunks,
                const uint8_t* __restrict__ xq) {
  using Q = Q8Unit<T>;
  constexpr int RT = kGlu ? 2 * R : R;  // rows per thread and chunk
  extern __shared__ float red[];        // [warp][chunk][NT * RT]
  const BlockTarget bt = block_target<kGlu>(tg);
  float* y = bt.y;
  const int64_t n_out = bt.n_out;
  const int groups = kThreads / lanes, grp = threadIdx.x / lanes, li = threadIdx.x % lanes;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t rows_per_block = int64_t(chunks) * groups * R;
  const int64_t base = int64_t(bt.block) * rows_per_block;
  auto row_of = [&](int c, int r) {
    const int64_t o = base + (int64_t(c) * groups + grp) * R + r % R;
    return (kGlu && r >= R ? tg.w[1] : bt.w) + size_t(o < n_out ? o : n_out - 1) * row_bytes;
  };
  // The weights do not depend on the kernels before: the first chunks' leading bytes are fetched
  // into L2, and the first step's units into registers, while those finish.
  for (int i = threadIdx.x; i < prefetch_chunks * groups * RT; i += kThreads) {
    const int c = i / (groups * RT), g = (i / RT) % groups, r = i % RT;
    const int64_t o = base + (int64_t(c) * groups + g) * R + r % R;
    if (o < n_out)
      prefetch_l2((kGlu && r >= R ? tg.w[1] : bt.w) + size_t(o) * row_bytes,
                  row_bytes < kPrefetchRowBytes ? row_bytes : kPrefetchRowBytes);
  }
  const int64_t n_units = k / Q::kElems;
  const int passes = int((n_units + lanes - 1) / lanes);
  const int steps = chunks * passes;
  const uint8_t* rows[RT];
#pragma unroll
  for (int r = 0; r < RT; ++r) rows[r] = row_of(0, r);
  typename Q::W cur[RT];
  if (li < n_units)
#pragma unroll
    for (int r = 0; r < RT; ++r) Q::load(rows[r], li, cur[r]);
  pdl_start();
  float acc[NT][RT];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int r = 0; r < RT; ++r) acc[t][r] = 0.0f;
  const size_t x_stride = q8x_bytes(k);
  int c = 0, p = 0;  // the step being multiplied: chunk c, pass p
  for (int s = 0; s < steps; ++s) {
    int cn = c, pn = p + 1;
    if (pn == passes) pn = 0, ++cn;
    if (cn != c && cn < chunks)
#pragma unroll
      for (int r = 0; r < RT; ++r) rows[r] = row_of(cn, r);
    const int64_t u = li + int64_t(p) * lanes, un = li + int64_t(pn) * lanes;
    typename Q::W nxt[RT];
    if (s + 1 < steps && un < n_units)
#pragma unroll
      for (int r = 0; r < RT; ++r) Q::load(rows[r], un, nxt[r]);
    if (u < n_units)
#pragma unroll
      for (int t = 0; t < NT; ++t)
#pragma unroll
        for (int r = 0; r < RT; ++r) acc[t][r] = __fadd_rn(acc[t][r], Q::dot(cur[r], xq + t * x_stride, k, u));
    if (pn == 0) {  // chunk c is done: its sums, warp by warp
#pragma unroll
      for (int t = 0; t < NT; ++t)
#pragma unroll
        for (int r = 0; r < RT; ++r) {
          const float v = warp_sum(acc[t][r]);
          if (lane == 0) red[(warp * chunks + c) * NT * RT + t * RT + r] = v;
          acc[t][r] = 0.0f;
        }
    }
#pragma unroll
    for (int r = 0; r < RT; ++r) cur[r] = nxt[r];
    c = cn, p = pn;
  }
  __syncthreads();
  // Output i of the block: token i / rows_per_block, row i % rows_per_block. With yq, 32 rows per
  // block: warp w holds token w's 32 outputs, one 8-bit block.
  const int wpg = lanes / 32;
  const int n_outs = int(rows_per_block) * NT;
  for (int i = threadIdx.x; i < n_outs; i += kThreads) {
    const int t = i / int(rows_per_block), ol = i % int(rows_per_block);
    const int cc = ol / (groups * R), g = (ol / R) % groups, r = ol % R;
    float v = 0.0f, up = 0.0f;
    for (int j = 0; j < wpg; ++j) {
      const float* rr = red + ((g * wpg + j) * chunks + cc) * NT * RT + t * RT;
      v += rr[r];
      if (kGlu) up += rr[R + r];
    }
    if (kGlu) v = (tg.glu == 1 ? silu(v) : gelu_tanh(v)) * up;
    const int64_t o = base + ol;
    if (o < n_out) y[t * n_out + o] = v;
    if (kGlu && tg.yq) quantize_block32(v, lane, tg.yq + size_t(t) * q8x_bytes(n_out), n_out, o / 32);
  }
}

// Rows per group of a product without and with a GLU.
template <GGMLType T>
constexpr int rows_per_group() {
  return T == kQ8_0R ? 2 : 4;  // Q4_0
}
template <GGMLType T>
constexpr int glu_rows_per_group() {
  return rows_per_group<T>() > 2 ? rows_per_group<T>() / 2 : rows_per_group<T>();
}

int sm_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      return 132;
    return v;
  }();
  return n;
}

// Blocks per SM the grid aims at (rows per block follow); 0: one chunk per block.
int blocks_per_sm() {
  static const int n = [] {
    const char* e = std::getenv("SQUEEZE_CUDA_QMV_BPS");
    return e ? std::atoi(e) : kBlocksPerSm;
  }();
  return n;
}

template <GGMLType T>
int lanes_for(int64_t k) {
  const int64_t n_units = k / Q8Unit<T>::kElems;
  return n_units >= 128 ? 128 : n_units >= 64 ? 64 : 32;
}

// Chunks per block: with a GLU, 32 output rows per block (one 8-bit block of the output), where
// the grid allows; otherwise about blocks_per_sm() blocks per SM.
template <GGMLType T>
int chunks_for(const MatvecTargets& tg, int64_t k, int R) {
  const int groups = kThreads / lanes_for<T>(k);
  const int bps = blocks_per_sm();
  if (bps <= 0) return 1;
  if (tg.glu) return 32 % (groups * R) == 0 ? 32 / (groups * R) : 1;
  int64_t total = 0;
  for (int i = 0; i < tg.n; ++i) total += (tg.n_out[i] + groups * R - 1) / (groups * R);
  const int64_t want = int64_t(sm_count()) * bps;
  return int(std::clamp<int64_t>((total + want - 1) / want, 1, kMaxChunks));
}

template <GGMLType T>
int glu_rows_per_block(int64_t k) {
  MatvecTargets tg;
  tg.glu = 1;
  const int R = glu_rows_per_group<T>(), groups = kThreads / lanes_for<T>(k);
  return chunks_for<T>(tg, k, R) * groups * R;
}

template <GGMLType T, int R, bool kGlu>
void launch_qmv8(MatvecTargets tg, size_t row_bytes, int64_t k, const uint8_t* xq, int64_t n_tokens, cudaStream_t s) {
  const int lanes = lanes_for<T>(k), groups = kThreads / lanes;
  const int chunks = chunks_for<T>(tg, k, R);
  const int64_t rows_per_block = int64_t(chunks) * groups * R;
  if (tg.yq && (!kGlu || rows_per_block != 32 || tg.n_out[0] % 32 != 0))
    throw Error("CUDA matvec_q8: no 8-bit output for this shape");
  const unsigned total = assign_blocks(tg, rows_per_block);
  // About 16 MB of leading row bytes fetched into L2 ahead, over the whole grid.
  const size_t per_chunk = size_t(total) * groups * (kGlu ? 2 * R : R) * std::min(row_bytes, kPrefetchRowBytes);
  const int prefetch = int(std::clamp<size_t>((size_t(16) << 20) / std::max<size_t>(per_chunk, 1), 1, size_t(chunks)));
  const size_t smem = size_t(kThreads / 32) * chunks * kMaxTokens * (kGlu ? 2 * R : R) * sizeof(float);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTokens) {
    const int nt = int(std::min<int64_t>(kMaxTokens, n_tokens - t0));
    MatvecTargets tt = from_token(tg, t0);
    if (tt.yq) tt.yq += size_t(t0) * q8x_bytes(tg.n_out[0]);
    const uint8_t* xt = xq + size_t(t0) * q8x_bytes(k);
    switch (nt) {
      case 1: launch_pdl(qmv8_kernel<T, 1, R, kGlu>, dim3(total), dim3(kThreads), smem, s, tt, row_bytes, k, lanes, chunks, prefetch, xt); break;
      case 2: launch_pdl(qmv8_kernel<T, 2, R, kGlu>, dim3(total), dim3(kThreads), smem, s, tt, row_bytes, k, lanes, chunks, prefetch, xt); break;
      case 3: launch_pdl(qmv8_kernel<T, 3, R, kGlu>, dim3(total), dim3(kThreads), smem, s, tt, row_bytes, k, lanes, chunks, prefetch, xt); break;
      default: launch_pdl(qmv8_kernel<T, 4, R, kGlu>, dim3(total), dim3(kThreads), smem, s, tt, row_bytes, k, lanes, chunks, prefetch, xt); break;
    }
    check_launch("qmv8");
  }
}

template <GGMLType T, int R>
void launch_qmv8(const MatvecTargets& tg, size_t row_bytes, int64_t k, const uint8_t* xq, int64_t n_tokens,
                 cudaStream_t s) {
  if (tg.glu) return launch_qmv8<T, glu_rows_per_group<T>(), true>(tg, row_bytes, k, xq, n_tokens, s);
  launch_qmv8<T, R, false>(tg, row_bytes, k, xq, n_tokens, s);
}

}  // namespace

bool matvec_q8_supported(GGMLType t) { return t == kQ8_0R || t == kQ4_0R || t == GGMLType::Q4_K || t == kQ6_KR; }

bool matvec_q8_glu_quantizes(GGMLType t, int64_t k, int64_t n_out) {
  if (!matvec_q8_supported(t) || k % 256 != 0 || n_out % 32 != 0) return false;
  switch (t) {
    case kQ8_0R: return glu_rows_per_block<kQ8_0R>(k) == 32;
    case kQ4_0R: return glu_rows_per_block<kQ4_0R>(k) == 32;
    default: return false;  // the K-quants' kernel writes floats only
  }
}

void quantize_q8x(const float* x, int64_t k, int64_t n_tokens, uint8_t* out, cudaStream_t s) {
  if (k % 32 != 0) throw Error("CUDA quantize_q8x: row length is not a multiple of 32");
  const int64_t n_blocks = n_tokens * (k / 32);
  launch_pdl(quantize_q8x_kernel, dim3(blocks_for(n_blocks * 32, 256)), dim3(256), 0, s, x, k, n_blocks, out);
  check_launch("quantize_q8x");
}

void matvec_q8(GGMLType type, const MatvecTargets& tg, size_t row_bytes, int64_t k, const uint8_t* xq,
               int64_t n_tokens, cudaStream_t s) {
  if (tg.n < 1 || tg.n > MatvecTargets::kMax) throw Error("CUDA matvec_q8: bad number of weights");
  if (k % 256 != 0) throw Error("CUDA matvec_q8: row length is not a multiple of 256");
  if (tg.glu && (tg.n != 2 || tg.n_out[0] != tg.n_out[1])) throw Error("CUDA matvec_q8: GLU needs gate and up of one shape");
  switch (type) {
    case kQ8_0R: return launch_qmv8<kQ8_0R, rows_per_group<kQ8_0R>()>(tg, row_bytes, k, xq, n_tokens, s);
    case kQ4_0R: return launch_qmv8<kQ4_0R, rows_per_group<kQ4_0R>()>(tg, row_bytes, k, xq, n_tokens, s);
    case GGMLType::Q4_K: return launch_qmv8_rows<GGMLType::Q4_K, 4>(tg, row_bytes, k, xq, n_tokens, s);
    case kQ6_KR: return launch_qmv8_rows<kQ6_KR, 4>(tg, row_bytes, k, xq, n_tokens, s);
    default: break;
  }
  throw Error(fmt("CUDA matvec_q8: no kernel for %s", type_name(type)));
}

}  // namespace squeeze::cuda
