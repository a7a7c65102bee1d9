// Scalar dot products of the K-quant weight formats with Q8_K activations, computing what
// llama.cpp's generic kernels compute: per 256-element super-block, the exact integer sum of
// (sub-block scale * q) * q8, and only then one float scaling by d_weight * d_act. (Q2_K's
// float step is llama.cpp's exactly; for Q3_K-Q6_K llama.cpp spreads the block sum over 8
// float lanes first, so those agree with it to float rounding only.) The weight's mins are applied through the activation's precomputed 16-element sums
// (bsums), as in llama.cpp: sum(min * a) = min * sum(a).
//
// The unpack loops are fixed-length shifts and masks, and the dot loop one fixed-length int16 x
// int8 multiply-add, so GCC -O3 vectorizes all of them without hints. Integer sums cannot overflow:
// the largest is Q6_K's 16 sub-blocks * |scale| 128 * 16 * 32 * 128 < 2^31.
//
// Bit-exactness needs a*b+c rounded twice, never fused into one FMA. GCC contracts by default
// in C++ (even with -std=c++20) wherever FMA is available (-march=native, or the AVX2 target
// attribute), so CMakeLists.txt builds with -ffp-contract=off. Explicit FMA intrinsics still work.
#include "quant/blocks.h"
#include "quant/kernels.h"
#include "util/fp16.h"

namespace squeeze::quant::scalar {

namespace {

// Applies the sub-block scales to the unpacked values: w[e] = q[e] * scale[e / kLen]. The
// products fit int16 for every K-quant (largest: Q6_K's 32 * 128), so the dot product with the
// activation can then run as one long int16 x int8 reduction per super-block (pmaddwd on x86)
// instead of 8 or 16 short ones; integer sums are exact, so the order does not matter.
template <int kLen, typename S>
inline void apply_scales(const int8_t* q, const S* scale, int16_t* w) {
  for (int g = 0; g < QK_K / kLen; ++g)
    for (int l = 0; l < kLen; ++l) w[kLen * g + l] = int16_t(q[kLen * g + l] * int(scale[g]));
}

inline int32_t dot256(const int16_t* w, const int8_t* q8) {
  int32_t s = 0;
  for (int e = 0; e < QK_K; ++e) s += int32_t(w[e]) * int32_t(q8[e]);
  return s;
}

// Unpacks the 4-bit values of a Q4_K/Q5_K super-block: bytes 32*p .. 32*p+31 hold sub-block
// 2p in their low nibbles and sub-block 2p+1 in their high nibbles.
inline void unpack_nibbles_k(const uint8_t* qs, int8_t* q) {
  for (int p = 0; p < 4; ++p)
    for (int l = 0; l < 32; ++l) {
      q[64 * p + l] = int8_t(qs[32 * p + l] & 15);
      q[64 * p + 32 + l] = int8_t(qs[32 * p + l] >> 4);
    }
}

// Sum of mins weighted by the activation sums; each 32-element sub-block covers two bsums.
inline int32_t k_min_sum(const uint8_t* mins, const int16_t* bsums) {
  int32_t s = 0;
  for (int t = 0; t < 8; ++t) s += int32_t(mins[t]) * (int32_t(bsums[2 * t]) + bsums[2 * t + 1]);
  return s;
}

}  // namespace

float dot_q2_k(const void* w, const void* a, int64_t n) {
  const BlockQ2_K* x = static_cast<const BlockQ2_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int8_t q[QK_K];
    // Element 128h + 32j + l is bits 2j..2j+1 of byte 32h + l.
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) q[128 * h + 32 * j + l] = int8_t((x[i].qs[32 * h + l] >> (2 * j)) & 3);
    uint8_t sc[16];
    int32_t summs = 0;
    for (int k = 0; k < 16; ++k) {
      sc[k] = x[i].scales[k] & 15;
      summs += int32_t(x[i].scales[k] >> 4) * y[i].bsums[k];
    }
    int16_t ws[QK_K];
    apply_scales<16>(q, sc, ws);
    const int32_t isum = dot256(ws, y[i].qs);
    const float dall = y[i].d * f16_to_f32(x[i].d);
    const float dmin = y[i].d * f16_to_f32(x[i].dmin);
    sumf += dall * float(isum) - dmin * float(summs);
  }
  return sumf;
}

float dot_q3_k(const void* w, const void* a, int64_t n) {
  const BlockQ3_K* x = static_cast<const BlockQ3_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int8_t q[QK_K];
    // Element 128h + 32j + l: 2 low bits from byte 32h + l of qs, and the high bit from bit
    // 4h + j of hmask[l]; a clear high bit means "subtract 4".
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) {
          const int low = (x[i].qs[32 * h + l] >> (2 * j)) & 3;
          const int hb = (x[i].hmask[l] >> (4 * h + j)) & 1;
          q[128 * h + 32 * j + l] = int8_t(low - ((hb ^ 1) << 2));
        }
    int8_t sc[16];
    q3k_scales(x[i].scales, sc);
    int16_t ws[QK_K];
    apply_scales<16>(q, sc, ws);
    const int32_t isum = dot256(ws, y[i].qs);
    sumf += (f16_to_f32(x[i].d) * y[i].d) * float(isum);
  }
  return sumf;
}

float dot_q4_k(const void* w, const void* a, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int8_t q[QK_K];
    unpack_nibbles_k(x[i].qs, q);
    uint8_t sc[8], mn[8];
    for (int t = 0; t < 8; ++t) k_scale_min(x[i].scales, t, sc[t], mn[t]);
    int16_t ws[QK_K];
    apply_scales<32>(q, sc, ws);
    const int32_t isum = dot256(ws, y[i].qs);
    const float d = f16_to_f32(x[i].d) * y[i].d;
    const float dmin = f16_to_f32(x[i].dmin) * y[i].d;
    sumf += d * float(isum) - dmin * float(k_min_sum(mn, y[i].bsums));
  }
  return sumf;
}

float dot_q5_k(const void* w, const void* a, int64_t n) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int8_t q[QK_K];
    unpack_nibbles_k(x[i].qs, q);
    // Fifth bit of element 32t + l is bit t of qh[l].
    for (int t = 0; t < 8; ++t)
      for (int l = 0; l < 32; ++l) q[32 * t + l] = int8_t(q[32 * t + l] | (((x[i].qh[l] >> t) & 1) << 4));
    uint8_t sc[8], mn[8];
    for (int t = 0; t < 8; ++t) k_scale_min(x[i].scales, t, sc[t], mn[t]);
    int16_t ws[QK_K];
    apply_scales<32>(q, sc, ws);
    const int32_t isum = dot256(ws, y[i].qs);
    const float d = f16_to_f32(x[i].d) * y[i].d;
    const float dmin = f16_to_f32(x[i].dmin) * y[i].d;
    sumf += d * float(isum) - dmin * float(k_min_sum(mn, y[i].bsums));
  }
  return sumf;
}

float dot_q6_k(const void* w, const void* a, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int8_t q[QK_K];
    // Element 128h + 32g + l: low nibble (g < 2) or high nibble (g >= 2) of
    // ql[64h + 32(g&1) + l], plus bits 2g..2g+1 of qh[32h + l] on top; stored with offset 32.
    for (int h = 0; h < 2; ++h)
      for (int g = 0; g < 4; ++g)
        for (int l = 0; l < 32; ++l) {
          const int lo4 = (x[i].ql[64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15;
          const int hi2 = (x[i].qh[32 * h + l] >> (2 * g)) & 3;
          q[128 * h + 32 * g + l] = int8_t((lo4 | (hi2 << 4)) - 32);
        }
    int16_t ws[QK_K];
    apply_scales<16>(q, x[i].scales, ws);
    const int32_t isum = dot256(ws, y[i].qs);
    sumf += (f16_to_f32(x[i].d) * y[i].d) * float(isum);
  }
  return sumf;
}

}  // namespace squeeze::quant::scalar
