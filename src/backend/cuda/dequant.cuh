#pragma once
// Device dequantization of the ggml weight types, eight elements at a time: group8<T>(row, g, v)
// writes elements [8g, 8g + 8) of a row of type T to v as floats. The bit layouts follow
// quant/blocks.h and the reference dequantizers in quant/dequantize.cpp (same formulas; the GPU
// may fuse a multiply and an add into one FMA, so results agree to rounding, not bit for bit).
// Every kernel that reads weights (get_rows, the matrix-vector product, the GEMM tiles) is built
// on these, so a new type is one function here plus one line in SQZ_CUDA_TYPES.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"
#include "quant/ggml_type.h"

namespace squeeze::cuda {

// The weight types the CUDA kernels read.
#define SQZ_CUDA_TYPES(X) \
  X(F32) X(F16) X(BF16) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q8_0) X(Q2_K) X(Q3_K) X(Q4_K) X(Q5_K) X(Q6_K)

__device__ __forceinline__ uint16_t ld16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }

// The 8 halves of a 16-byte word.
__device__ __forceinline__ void unpack8(const uint4 u, uint16_t h[8]) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    h[2 * i] = uint16_t(w[i] & 0xffffu);
    h[2 * i + 1] = uint16_t(w[i] >> 16);
  }
}

// Q4_K / Q5_K: the 6-bit scale and min of sub-block t (quant::k_scale_min).
__device__ __forceinline__ void k_scale_min(const uint8_t* s, int t, int& sc, int& m) {
  if (t < 4) {
    sc = s[t] & 63;
    m = s[t + 4] & 63;
  } else {
    sc = (s[t + 4] & 15) | ((s[t - 4] >> 6) << 4);
    m = (s[t + 4] >> 4) | ((s[t] >> 6) << 4);
  }
}

template <GGMLType T>
__device__ __forceinline__ void group8(const uint8_t* row, int64_t g, float v[8]);

template <>
__device__ __forceinline__ void group8<GGMLType::F32>(const uint8_t* row, int64_t g, float v[8]) {
  const float4* p = reinterpret_cast<const float4*>(row) + 2 * g;
  const float4 a = p[0], b = p[1];
  v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
  v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}

template <>
__device__ __forceinline__ void group8<GGMLType::F16>(const uint8_t* row, int64_t g, float v[8]) {
  uint16_t h[8];
  unpack8(reinterpret_cast<const uint4*>(row)[g], h);
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = h2f(h[j]);
}

template <>
__device__ __forceinline__ void group8<GGMLType::BF16>(const uint8_t* row, int64_t g, float v[8]) {
  uint16_t h[8];
  unpack8(reinterpret_cast<const uint4*>(row)[g], h);
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = bf2f(h[j]);
}

// Legacy 32-element blocks: group p = g % 4 of block g / 4. Elements 0-15 are the low nibbles of
// qs[0..15], 16-31 the high nibbles.
// Q4_0 / Q8_0: the group of a block given its quants and scale, wherever the layout keeps them
// (the file's blocks or the repacked runs below).
__device__ __forceinline__ void q4_0_group8(const uint8_t* qs, float d, int64_t g, float v[8]) {
  const int p = int(g & 3), base = (p & 1) * 8, shift = (p >> 1) * 4;
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = d * float(((qs[base + j] >> shift) & 15) - 8);
}
__device__ __forceinline__ void q8_0_group8(const uint8_t* qs, float d, int64_t g, float v[8]) {
  const int8_t* q = reinterpret_cast<const int8_t*>(qs) + 8 * (g & 3);
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = float(q[j]) * d;
}

template <>
__device__ __forceinline__ void group8<GGMLType::Q4_0>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 2) * 18;
  q4_0_group8(b + 2, h2f(ld16(b)), g, v);
}
template <>
__device__ __forceinline__ void group8<GGMLType::Q4_1>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 2) * 20;
  const int p = int(g & 3), base = (p & 1) * 8, shift = (p >> 1) * 4;
  const float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = d * float((b[4 + base + j] >> shift) & 15) + m;
}

__device__ __forceinline__ uint32_t ld_qh(const uint8_t* q) {
  return uint32_t(q[0]) | uint32_t(q[1]) << 8 | uint32_t(q[2]) << 16 | uint32_t(q[3]) << 24;
}

// Q5: the fifth bit of element e is bit e of qh.
template <>
__device__ __forceinline__ void group8<GGMLType::Q5_0>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 2) * 22;
  const int p = int(g & 3), base = (p & 1) * 8, shift = (p >> 1) * 4;
  const float d = h2f(ld16(b));
  const uint32_t qh = ld_qh(b + 2);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int e = 8 * p + j;
    const int q = ((b[6 + base + j] >> shift) & 15) | int((qh >> e) & 1) << 4;
    v[j] = d * float(q - 16);
  }
}

template <>
__device__ __forceinline__ void group8<GGMLType::Q5_1>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 2) * 24;
  const int p = int(g & 3), base = (p & 1) * 8, shift = (p >> 1) * 4;
  const float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
  const uint32_t qh = ld_qh(b + 4);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int e = 8 * p + j;
    const int q = ((b[8 + base + j] >> shift) & 15) | int((qh >> e) & 1) << 4;
    v[j] = d * float(q) + m;
  }
}

template <>
__device__ __forceinline__ void group8<GGMLType::Q8_0>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 2) * 34;
  q8_0_group8(b + 2, h2f(ld16(b)), g, v);
}

// The repacked layouts (kernels.h): runs of 8 blocks as [8 quant arrays][8 f16 scales].
template <>
__device__ __forceinline__ void group8<kQ8_0R>(const uint8_t* row, int64_t g, float v[8]) {
  const int64_t b = g >> 2;
  const uint8_t* run = row + (b >> 3) * 272;
  const int bi = int(b & 7);
  q8_0_group8(run + 32 * bi, h2f(ld16(run + 256 + 2 * bi)), g, v);
}

template <>
__device__ __forceinline__ void group8<kQ4_0R>(const uint8_t* row, int64_t g, float v[8]) {
  const int64_t b = g >> 2;
  const uint8_t* run = row + (b >> 3) * 144;
  const int bi = int(b & 7);
  q4_0_group8(run + 16 * bi, h2f(ld16(run + 128 + 2 * bi)), g, v);
}

// K-quants: 256-element super-blocks; group g covers elements e0..e0+7 of super-block g / 32.
template <>
__device__ __forceinline__ void group8<GGMLType::Q2_K>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 5) * 84;
  const int e0 = 8 * int(g & 31), h = e0 / 128, jj = (e0 % 128) / 32, l0 = e0 % 32, k = e0 / 16;
  const float d = h2f(ld16(b + 80)), dmin = h2f(ld16(b + 82));
  const float dl = d * float(b[k] & 15), ml = dmin * float(b[k] >> 4);
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = dl * float((b[16 + 32 * h + l0 + j] >> (2 * jj)) & 3) - ml;
}

template <>
__device__ __forceinline__ void group8<GGMLType::Q3_K>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 5) * 110;
  const int e0 = 8 * int(g & 31), h = e0 / 128, jj = (e0 % 128) / 32, l0 = e0 % 32, k = e0 / 16;
  const uint8_t* s = b + 96;
  const int lo4 = k < 8 ? (s[k] & 15) : (s[k - 8] >> 4);
  const int hi2 = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
  const float dl = h2f(ld16(b + 108)) * float((lo4 | (hi2 << 4)) - 32);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int l = l0 + j;
    const int low = (b[32 + 32 * h + l] >> (2 * jj)) & 3;
    const int hb = (b[l] >> (4 * h + jj)) & 1;
    v[j] = dl * float(low - (hb ? 0 : 4));
  }
}

template <>
__device__ __forceinline__ void group8<GGMLType::Q4_K>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 5) * 144;
  const int e0 = 8 * int(g & 31), t = e0 / 32, l0 = e0 % 32;
  int sc, m;
  k_scale_min(b + 4, t, sc, m);
  const float dl = h2f(ld16(b)) * float(sc), ml = h2f(ld16(b + 2)) * float(m);
  const uint8_t* q = b + 16 + 32 * (t / 2) + l0;
  const int shift = 4 * (t & 1);
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = dl * float((q[j] >> shift) & 15) - ml;
}

template <>
__device__ __forceinline__ void group8<GGMLType::Q5_K>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 5) * 176;
  const int e0 = 8 * int(g & 31), t = e0 / 32, l0 = e0 % 32;
  int sc, m;
  k_scale_min(b + 4, t, sc, m);
  const float dl = h2f(ld16(b)) * float(sc), ml = h2f(ld16(b + 2)) * float(m);
  const uint8_t* qh = b + 16 + l0;
  const uint8_t* q = b + 48 + 32 * (t / 2) + l0;
  const int shift = 4 * (t & 1);
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = dl * float(((q[j] >> shift) & 15) | (((qh[j] >> t) & 1) << 4)) - ml;
}

// Q6_K: body (ql 128, qh 64, int8 scales 16) and its d, wherever they are stored.
__device__ __forceinline__ void q6k_group8(const uint8_t* b, float d, int64_t g, float v[8]) {
  const int e0 = 8 * int(g & 31), h = e0 / 128, gg = (e0 % 128) / 32, l0 = e0 % 32;
  const float dl = d * float(reinterpret_cast<const int8_t*>(b + 192)[e0 / 16]);
  const uint8_t* ql = b + 64 * h + 32 * (gg & 1) + l0;
  const uint8_t* qh = b + 128 + 32 * h + l0;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int lo4 = (ql[j] >> (4 * (gg >> 1))) & 15;
    const int hi2 = (qh[j] >> (2 * gg)) & 3;
    v[j] = dl * float((lo4 | (hi2 << 4)) - 32);
  }
}
template <>
__device__ __forceinline__ void group8<GGMLType::Q6_K>(const uint8_t* row, int64_t g, float v[8]) {
  const uint8_t* b = row + (g >> 5) * 210;
  q6k_group8(b, h2f(ld16(b + 208)), g, v);
}
// The repacked layout (kernels.h): runs of 8 super-blocks as [8 bodies of 208 bytes][8 f16 d].
template <>
__device__ __forceinline__ void group8<kQ6_KR>(const uint8_t* row, int64_t g, float v[8]) {
  const int64_t b = g >> 5;
  const uint8_t* run = row + (b >> 3) * 1680;
  const int bi = int(b & 7);
  q6k_group8(run + 208 * bi, h2f(ld16(run + 1664 + 2 * bi)), g, v);
}

}  // namespace squeeze::cuda
