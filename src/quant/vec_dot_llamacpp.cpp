// Dot products in llama.cpp's x86 AVX2 accumulation order (Numerics::llamacpp).
//
// llama.cpp's AVX2 kernels keep eight float lanes per row: lane k holds the integer sum of the
// elements whose index within each 32-element run is 4k..4k+3 (what maddubs + madd produce),
// converted to float and added with one FMA per block (or super-block) into that lane; the eight
// lanes are summed at the end as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). The legacy-format AVX2
// kernels of vec_dot_avx2.cpp already work this way; the K-quant ones there sum all integers
// first (bit-identical to the scalar kernels instead). This file has the K-quant kernels in
// llama.cpp's order, as portable lane-by-lane C++ (the reference, and the fallback without AVX2)
// and as AVX2 code; both give identical bits (std::fma is exactly rounded like vfmadd).
#include <cmath>

#include "quant/avx2_common.h"
#include "quant/blocks.h"
#include "quant/kernels.h"
#include "util/fp16.h"

namespace squeeze::quant::llamacpp_order {

namespace {

// The final reduction of the eight lanes (llama.cpp's hsum_float_8).
inline float hsum8(const float* l) { return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); }

// A 32-element block of int8 weights times Q8_0 activations, as eight 4-element lane sums.
inline void lanes32(const int8_t* w, const int8_t* a, int32_t* lane) {
  for (int k = 0; k < 8; ++k) {
    int32_t s = 0;
    for (int e = 4 * k; e < 4 * k + 4; ++e) s += int32_t(w[e]) * a[e];
    lane[k] = s;
  }
}

template <typename Block, void (*Unpack)(const Block&, int8_t*)>
float dot_legacy(const void* w, const void* a, int64_t n) {
  const Block* x = static_cast<const Block*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float acc[8] = {};
  for (int64_t i = 0; i < n / QK; ++i) {
    int8_t q[QK];
    Unpack(x[i], q);
    int32_t lane[8];
    lanes32(q, y[i].qs, lane);
    const float d = f16_to_f32(x[i].d) * f16_to_f32(y[i].d);
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, float(lane[k]), acc[k]);
  }
  return hsum8(acc);
}

void unpack_q8_0(const BlockQ8_0& b, int8_t* q) {
  for (int j = 0; j < QK; ++j) q[j] = b.qs[j];
}

void unpack_q5_0(const BlockQ5_0& b, int8_t* q) {
  uint32_t qh;
  __builtin_memcpy(&qh, b.qh, 4);
  for (int j = 0; j < QK / 2; ++j) {
    q[j] = int8_t(((b.qs[j] & 15) | (((qh >> j) & 1) << 4)) - 16);
    q[j + 16] = int8_t(((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
  }
}

}  // namespace

namespace scalar {

float dot_q8_0(const void* w, const void* a, int64_t n) { return dot_legacy<BlockQ8_0, unpack_q8_0>(w, a, n); }
float dot_q5_0(const void* w, const void* a, int64_t n) { return dot_legacy<BlockQ5_0, unpack_q5_0>(w, a, n); }

float dot_q4_k(const void* w, const void* a, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float acc[8] = {}, acc_m[4] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], mn[8];
    for (int t = 0; t < 8; ++t) k_scale_min(x[i].scales, t, sc[t], mn[t]);
    int32_t lane[8] = {};
    for (int p = 0; p < 4; ++p)
      for (int l = 0; l < 32; ++l) {
        const uint8_t b = x[i].qs[32 * p + l];
        lane[l / 4] += int32_t(sc[2 * p]) * (b & 15) * y[i].qs[64 * p + l] +
                       int32_t(sc[2 * p + 1]) * (b >> 4) * y[i].qs[64 * p + 32 + l];
      }
    const float d = y[i].d * f16_to_f32(x[i].d);
    const float dmin = -y[i].d * f16_to_f32(x[i].dmin);
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, float(lane[k]), acc[k]);
    // The mins: four lanes, each two 32-element sub-blocks (min times activation sum).
    for (int l = 0; l < 4; ++l) {
      const int32_t s0 = y[i].bsums[4 * l] + y[i].bsums[4 * l + 1];
      const int32_t s1 = y[i].bsums[4 * l + 2] + y[i].bsums[4 * l + 3];
      acc_m[l] = std::fma(dmin, float(int32_t(mn[2 * l]) * s0 + int32_t(mn[2 * l + 1]) * s1), acc_m[l]);
    }
  }
  return hsum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

float dot_q6_k(const void* w, const void* a, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float acc[8] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* sc = x[i].scales;
    int32_t lane[8] = {};
    for (int h = 0; h < 2; ++h)
      for (int g = 0; g < 4; ++g)
        for (int l = 0; l < 32; ++l) {
          const uint8_t b = x[i].ql[64 * h + 32 * (g & 1) + l];
          const int q = ((g >> 1) ? (b >> 4) : (b & 15)) | (((x[i].qh[32 * h + l] >> (2 * g)) & 3) << 4);
          const int e = 128 * h + 32 * g + l;
          lane[l / 4] += int32_t(sc[e / 16]) * q * y[i].qs[e];
        }
    // The -32 offset, taken out per lane through the 16-element activation sums 2k and 2k+1.
    for (int k = 0; k < 8; ++k)
      lane[k] -= 32 * (int32_t(y[i].bsums[2 * k]) * sc[2 * k] + int32_t(y[i].bsums[2 * k + 1]) * sc[2 * k + 1]);
    const float d = y[i].d * f16_to_f32(x[i].d);
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, float(lane[k]), acc[k]);
  }
  return hsum8(acc);
}

}  // namespace scalar

#ifdef SQZ_HAVE_AVX2_KERNELS
namespace avx2 {

using namespace quant::avx2;

SQZ_AVX2 float dot_q4_k(const void* w, const void* a, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  float acc_m[4] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], mn[8];
    for (int t = 0; t < 8; ++t) k_scale_min(x[i].scales, t, sc[t], mn[t]);
    __m256i lane = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const __m256i bytes = load256(x[i].qs + 32 * p);
      const __m256i lo = _mm256_and_si256(bytes, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[i].qs + 64 * p));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[i].qs + 64 * p + 32));
      lane = _mm256_add_epi32(lane, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * p])));
      lane = _mm256_add_epi32(lane, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * p + 1])));
    }
    const float d = y[i].d * h2f(x[i].d);
    const float dmin = -y[i].d * h2f(x[i].dmin);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lane), acc);
    for (int l = 0; l < 4; ++l) {
      const int32_t s0 = y[i].bsums[4 * l] + y[i].bsums[4 * l + 1];
      const int32_t s1 = y[i].bsums[4 * l + 2] + y[i].bsums[4 * l + 3];
      acc_m[l] = std::fma(dmin, float(int32_t(mn[2 * l]) * s0 + int32_t(mn[2 * l + 1]) * s1), acc_m[l]);
    }
  }
  return hsum_f32(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

SQZ_AVX2 float dot_q6_k(const void* w, const void* a, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* sc = x[i].scales;
    __m256i lane = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(x[i].ql + 64 * h);
      const __m256i ql1 = load256(x[i].ql + 64 * h + 32);
      const __m256i qh = load256(x[i].qh + 32 * h);
      const __m256i lo4[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
      for (int g = 0; g < 4; ++g) {
        const int k = 8 * h + 2 * g;
        const __m256i q = _mm256_or_si256(lo4[g], _mm256_slli_epi16(byte_bit(qh, 2 * g, 3), 4));
        const __m256i p = _mm256_maddubs_epi16(q, load256(y[i].qs + 128 * h + 32 * g));
        lane = _mm256_add_epi32(lane, _mm256_madd_epi16(p, scale_pair(sc[k], sc[k + 1])));
      }
    }
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i offs = _mm256_slli_epi32(_mm256_madd_epi16(load256(y[i].bsums), sc16), 5);
    lane = _mm256_sub_epi32(lane, offs);
    const float d = y[i].d * h2f(x[i].d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lane), acc);
  }
  return hsum_f32(acc);
}

}  // namespace avx2
#endif

VecDotFn kernel(GGMLType t) {
#ifdef SQZ_HAVE_AVX2_KERNELS
  if (quant::avx2::supported()) {
    switch (t) {
      case GGMLType::Q4_K: return avx2::dot_q4_k;
      case GGMLType::Q6_K: return avx2::dot_q6_k;
      // The legacy AVX2 kernels already accumulate in llama.cpp's order.
      case GGMLType::F32: case GGMLType::F16: case GGMLType::BF16:
      case GGMLType::Q4_0: case GGMLType::Q4_1: case GGMLType::Q5_0:
      case GGMLType::Q5_1: case GGMLType::Q8_0:
        return quant::avx2::kernel(t);
      default: break;
    }
  }
#endif
  switch (t) {
    case GGMLType::Q8_0: return scalar::dot_q8_0;
    case GGMLType::Q5_0: return scalar::dot_q5_0;
    case GGMLType::Q4_K: return scalar::dot_q4_k;
    case GGMLType::Q6_K: return scalar::dot_q6_k;
    default: break;
  }
  // No llama.cpp-order kernel (Q2_K, Q3_K, Q5_K, ...): the best available one.
  return best_kernel(t);
}

}  // namespace squeeze::quant::llamacpp_order
