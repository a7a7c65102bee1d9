// Scalar dot products for the float types and the 32-element quant formats. The quantized
// kernels follow llama.cpp's generic kernels (ggml-cpu/quants.c): an exact integer sum per
// block, then the per-block float scaling with the same operands in the same order, summed
// serially over blocks. For the same activation bytes the result should therefore equal
// llama.cpp's generic (non-SIMD) result bit for bit.
//
// Written for GCC -O3 auto-vectorization: each block is first unpacked into 32 plain int8
// values, then multiplied with the activation in a fixed-length int loop with no branches.
// The float kernels keep kLanes independent partial sums (vectorizable without -ffast-math,
// since each lane is a separate serial sum); llama.cpp's F16/F32 SIMD paths also sum in lanes,
// so those results match it only to rounding.
//
// Bit-exactness needs a*b+c rounded twice, never fused into one FMA. GCC contracts by default
// in C++ (even with -std=c++20) wherever FMA is available (-march=native, or the AVX2 target
// attribute), so CMakeLists.txt builds with -ffp-contract=off. Explicit FMA intrinsics still work.
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

// Unpacks a 4-bit block into 32 int8 values minus `offset`: low nibbles are elements 0-15,
// high nibbles 16-31.
inline void unpack_nibbles(const uint8_t* qs, int offset, int8_t* q) {
  for (int j = 0; j < QK / 2; ++j) {
    q[j] = int8_t((qs[j] & 15) - offset);
    q[j + QK / 2] = int8_t((qs[j] >> 4) - offset);
  }
}

// Bit j of a Q5 block's little-endian u32 qh is the fifth bit of element j. Testing it against
// a table of single-bit masks (instead of `(qh >> j) & 1`, a per-lane variable shift that
// baseline x86-64 lacks) lets GCC vectorize the unpacking as AND + compare in 32-bit lanes.
struct BitMasks {
  uint32_t m[QK];
  constexpr BitMasks() : m{} {
    for (int j = 0; j < QK; ++j) m[j] = 1u << j;
  }
};
constexpr BitMasks kBit;

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // ggml stores qh as 4 bytes, read little-endian as ggml does
  return v;
}

// Unpacks a 5-bit block into 32 int8 values minus `offset`.
inline void unpack_5bit(const uint8_t* qs, const uint8_t* qh_bytes, int offset, int8_t* q) {
  const uint32_t qh = load_u32(qh_bytes);
  uint8_t hb[QK];
  for (int j = 0; j < QK; ++j) hb[j] = (qh & kBit.m[j]) ? 16 : 0;
  for (int j = 0; j < QK / 2; ++j) {
    q[j] = int8_t(((qs[j] & 15) | hb[j]) - offset);
    q[j + QK / 2] = int8_t(((qs[j] >> 4) | hb[j + QK / 2]) - offset);
  }
}

inline int32_t dot32(const int8_t* a, const int8_t* b) {
  int32_t s = 0;
  for (int j = 0; j < QK; ++j) s += int32_t(a[j]) * int32_t(b[j]);
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
    int8_t q[QK];
    unpack_nibbles(x[i].qs, 8, q);
    const int32_t sumi = dot32(q, y[i].qs);
    sumf += float(sumi) * f16_to_f32(x[i].d) * f16_to_f32(y[i].d);
  }
  return sumf;
}

float dot_q4_1(const void* w, const void* a, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK; ++i) {
    int8_t q[QK];
    unpack_nibbles(x[i].qs, 0, q);
    const int32_t sumi = dot32(q, y[i].qs);
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
    int8_t q[QK];
    unpack_5bit(x[i].qs, x[i].qh, 16, q);
    const int32_t sumi = dot32(q, y[i].qs);
    sumf += (f16_to_f32(x[i].d) * f16_to_f32(y[i].d)) * float(sumi);
  }
  return sumf;
}

float dot_q5_1(const void* w, const void* a, int64_t n) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK; ++i) {
    int8_t q[QK];
    unpack_5bit(x[i].qs, x[i].qh, 0, q);
    const int32_t sumi = dot32(q, y[i].qs);
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
    const int32_t sumi = dot32(x[i].qs, y[i].qs);
    sumf += float(sumi) * (f16_to_f32(x[i].d) * f16_to_f32(y[i].d));
  }
  return sumf;
}

}  // namespace squeeze::quant::scalar
