// Scalar dot products for the float types and the 32-element quant formats. The quantized
// kernels follow llama.cpp's generic kernels (ggml-cpu/quants.c): an exact integer sum per
// block, then one float multiply-add per block with the same operand order, so a row's result
// differs from llama.cpp's generic path only where the compiler reassociates nothing (it does
// not here: the float accumulation is a plain serial loop over blocks).
//
// Written for GCC -O3 auto-vectorization: the per-block inner loops are fixed-length int loops
// with no branches; the float kernels keep kLanes independent partial sums (vectorizable
// without -ffast-math, since each lane is a separate serial sum).
#include <cstring>

#include "quant/blocks.h"
#include "quant/kernels.h"
#include "util/fp16.h"

namespace squeeze::quant::scalar {

namespace {

constexpr int kLanes = 16;

// Sums kLanes partial sums pairwise, so the result does not depend on the vector width GCC
// happened to use.
inline float reduce_lanes(float* acc) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

// Generic float-like dot product: Conv turns one stored element into f32.
template <typename T, float (*Conv)(T)>
inline float dot_floats(const T* x, const T* y, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += Conv(x[i + l]) * Conv(y[i + l]);
  for (int l = 0; i < n; ++i, ++l) acc[l] += Conv(x[i]) * Conv(y[i]);
  return reduce_lanes(acc);
}

inline float id_f32(float v) { return v; }

// The 32 high bits of a Q5 block as a little-endian u32: bit j belongs to element j.
inline uint32_t load_qh(const uint8_t* qh) {
  return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}

// Integer dot of the 32 values of a 4-bit block (low nibbles are elements 0-15, high nibbles
// 16-31) with an int8 block, after subtracting `offset` from each weight.
inline int dot_nibbles(const uint8_t* qs, const int8_t* q8, int offset) {
  int s = 0;
  for (int j = 0; j < QK / 2; ++j)
    s += ((qs[j] & 15) - offset) * q8[j] + ((qs[j] >> 4) - offset) * q8[j + QK / 2];
  return s;
}

// As dot_nibbles, with the fifth bit of element j taken from bit j of qh.
inline int dot_5bit(const uint8_t* qs, uint32_t qh, const int8_t* q8, int offset) {
  int s = 0;
  for (int j = 0; j < QK / 2; ++j) {
    const int lo = int((qs[j] & 15) | ((qh >> j) & 1) << 4) - offset;
    const int hi = int((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - offset;
    s += lo * q8[j] + hi * q8[j + QK / 2];
  }
  return s;
}

}  // namespace

float dot_f32(const void* w, const void* a, int64_t n) {
  return dot_floats<float, id_f32>(static_cast<const float*>(w), static_cast<const float*>(a), n);
}

float dot_f16(const void* w, const void* a, int64_t n) {
  return dot_floats<uint16_t, f16_to_f32>(static_cast<const uint16_t*>(w),
                                          static_cast<const uint16_t*>(a), n);
}

float dot_bf16(const void* w, const void* a, int64_t n) {
  return dot_floats<uint16_t, bf16_to_f32>(static_cast<const uint16_t*>(w),
                                           static_cast<const uint16_t*>(a), n);
}

float dot_q4_0(const void* w, const void* a, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK; ++i) {
    const int sumi = dot_nibbles(x[i].qs, y[i].qs, 8);
    sumf += float(sumi) * f16_to_f32(x[i].d) * f16_to_f32(y[i].d);
  }
  return sumf;
}

float dot_q4_1(const void* w, const void* a, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK; ++i) {
    const int sumi = dot_nibbles(x[i].qs, y[i].qs, 0);
    // The min contributes m * sum(a) = m * s, with s precomputed by the Q8_1 quantizer.
    sumf += (f16_to_f32(x[i].d) * f16_to_f32(y[i].d)) * float(sumi) +
            f16_to_f32(x[i].m) * f16_to_f32(y[i].s);
  }
  return sumf;
}

float dot_q5_0(const void* w, const void* a, int64_t n) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK; ++i) {
    const int sumi = dot_5bit(x[i].qs, load_qh(x[i].qh), y[i].qs, 16);
    sumf += (f16_to_f32(x[i].d) * f16_to_f32(y[i].d)) * float(sumi);
  }
  return sumf;
}

float dot_q5_1(const void* w, const void* a, int64_t n) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK; ++i) {
    const int sumi = dot_5bit(x[i].qs, load_qh(x[i].qh), y[i].qs, 0);
    sumf += (f16_to_f32(x[i].d) * f16_to_f32(y[i].d)) * float(sumi) +
            f16_to_f32(x[i].m) * f16_to_f32(y[i].s);
  }
  return sumf;
}

float dot_q8_0(const void* w, const void* a, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sumf += float(sumi) * (f16_to_f32(x[i].d) * f16_to_f32(y[i].d));
  }
  return sumf;
}

}  // namespace squeeze::quant::scalar
