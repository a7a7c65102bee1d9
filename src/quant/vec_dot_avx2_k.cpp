// AVX2 dot products of the K-quant formats with Q8_K activations.
//
// Per super-block each kernel computes the same exact integer sum as its scalar twin
// (vec_dot_kquants.cpp): weights are unpacked to unsigned bytes, multiplied with the int8
// activations by maddubs (int16 pair sums), and weighted with the sub-block scales by madd
// (int32). Signed offsets (Q3_K's -4, Q6_K's -32) are taken out through the activation's
// 16-element sums (bsums) afterwards. The float step per super-block is then written exactly
// as in the scalar kernel, so the AVX2 and scalar results are bit-identical.
//
// Bit-exactness needs a*b+c rounded twice, never fused into one FMA. GCC contracts by default
// in C++ (even with -std=c++20) wherever FMA is available (-march=native, or the AVX2 target
// attribute), so CMakeLists.txt builds with -ffp-contract=off. Explicit FMA intrinsics still work.
#include "quant/avx2_common.h"
#include "quant/blocks.h"
#include "quant/kernels.h"

#ifdef SQZ_HAVE_AVX2_KERNELS

namespace squeeze::quant::avx2 {

SQZ_AVX2 float dot_q2_k(const void* w, const void* a, int64_t n) {
  const BlockQ2_K* x = static_cast<const BlockQ2_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* sc = x[i].scales;
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = load256(x[i].qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        // Elements 128h + 32j + (0..31): 2-bit field j of each byte, sub-blocks k and k+1.
        const int k = 8 * h + 2 * j;
        const __m256i q = byte_bit(bytes, 2 * j, 3);
        const __m256i p = _mm256_maddubs_epi16(q, load256(y[i].qs + 128 * h + 32 * j));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scale_pair(sc[k] & 15, sc[k + 1] & 15)));
      }
    }
    int32_t summs = 0;
    for (int k = 0; k < 16; ++k) summs += int32_t(sc[k] >> 4) * y[i].bsums[k];
    const int32_t isum = hsum_i32(acc);
    const float dall = y[i].d * h2f(x[i].d);
    const float dmin = y[i].d * h2f(x[i].dmin);
    sumf += dall * float(isum) - dmin * float(summs);
  }
  return sumf;
}

SQZ_AVX2 float dot_q3_k(const void* w, const void* a, int64_t n) {
  const BlockQ3_K* x = static_cast<const BlockQ3_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int8_t sc[16];
    q3k_scales(x[i].scales, sc);
    const __m256i hm = load256(x[i].hmask);
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = load256(x[i].qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        // q + 4 = low 2 bits + 4 * high bit, in 0..7; the -4 comes back through bsums below.
        const int k = 8 * h + 2 * j;
        const __m256i low = byte_bit(bytes, 2 * j, 3);
        const __m256i high = _mm256_slli_epi16(byte_bit(hm, 4 * h + j, 1), 2);
        const __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(low, high),
                                               load256(y[i].qs + 128 * h + 32 * j));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scale_pair(sc[k], sc[k + 1])));
      }
    }
    int32_t offset = 0;
    for (int k = 0; k < 16; ++k) offset += int32_t(sc[k]) * y[i].bsums[k];
    const int32_t isum = hsum_i32(acc) - 4 * offset;
    sumf += (h2f(x[i].d) * y[i].d) * float(isum);
  }
  return sumf;
}

namespace {

// Scales and mins of a Q4_K/Q5_K super-block, and the mins weighted by the activation sums.
struct ScaleMin {
  uint8_t sc[8], mn[8];
  int32_t min_sum;
};

SQZ_AVX2 inline ScaleMin scale_min(const uint8_t* scales, const int16_t* bsums) {
  ScaleMin r;
  r.min_sum = 0;
  for (int t = 0; t < 8; ++t) {
    k_scale_min(scales, t, r.sc[t], r.mn[t]);
    r.min_sum += int32_t(r.mn[t]) * (int32_t(bsums[2 * t]) + bsums[2 * t + 1]);
  }
  return r;
}

}  // namespace

SQZ_AVX2 float dot_q4_k(const void* w, const void* a, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const ScaleMin s = scale_min(x[i].scales, y[i].bsums);
    __m256i acc = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      // 32 bytes hold sub-block 2p in the low nibbles and 2p+1 in the high nibbles.
      const __m256i bytes = load256(x[i].qs + 32 * p);
      const __m256i lo = _mm256_and_si256(bytes, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[i].qs + 64 * p));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[i].qs + 64 * p + 32));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, _mm256_set1_epi16(s.sc[2 * p])));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, _mm256_set1_epi16(s.sc[2 * p + 1])));
    }
    const int32_t isum = hsum_i32(acc);
    const float d = h2f(x[i].d) * y[i].d;
    const float dmin = h2f(x[i].dmin) * y[i].d;
    sumf += d * float(isum) - dmin * float(s.min_sum);
  }
  return sumf;
}

SQZ_AVX2 float dot_q5_k(const void* w, const void* a, int64_t n) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const ScaleMin s = scale_min(x[i].scales, y[i].bsums);
    const __m256i qh = load256(x[i].qh);  // bit t of byte l: fifth bit of element 32t + l
    __m256i acc = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const __m256i bytes = load256(x[i].qs + 32 * p);
      const __m256i hlo = _mm256_slli_epi16(byte_bit(qh, 2 * p, 1), 4);
      const __m256i hhi = _mm256_slli_epi16(byte_bit(qh, 2 * p + 1, 1), 4);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(bytes, m4), hlo);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4), hhi);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[i].qs + 64 * p));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[i].qs + 64 * p + 32));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, _mm256_set1_epi16(s.sc[2 * p])));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, _mm256_set1_epi16(s.sc[2 * p + 1])));
    }
    const int32_t isum = hsum_i32(acc);
    const float d = h2f(x[i].d) * y[i].d;
    const float dmin = h2f(x[i].dmin) * y[i].d;
    sumf += d * float(isum) - dmin * float(s.min_sum);
  }
  return sumf;
}

SQZ_AVX2 float dot_q6_k(const void* w, const void* a, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* sc = x[i].scales;
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(x[i].ql + 64 * h);
      const __m256i ql1 = load256(x[i].ql + 64 * h + 32);
      const __m256i qh = load256(x[i].qh + 32 * h);
      // Elements 128h + 32g + (0..31): nibble g>>1 of ql[64h + 32(g&1) + l], with bits
      // 2g..2g+1 of qh[32h + l] on top, as unsigned 0..63 (the -32 comes back via bsums).
      const __m256i lo4[4] = {
          _mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
          _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
          _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
      for (int g = 0; g < 4; ++g) {
        const int k = 8 * h + 2 * g;
        const __m256i hi2 = _mm256_slli_epi16(byte_bit(qh, 2 * g, 3), 4);
        const __m256i q = _mm256_or_si256(lo4[g], hi2);
        const __m256i p = _mm256_maddubs_epi16(q, load256(y[i].qs + 128 * h + 32 * g));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scale_pair(sc[k], sc[k + 1])));
      }
    }
    int32_t offset = 0;
    for (int k = 0; k < 16; ++k) offset += int32_t(sc[k]) * y[i].bsums[k];
    const int32_t isum = hsum_i32(acc) - 32 * offset;
    sumf += (h2f(x[i].d) * y[i].d) * float(isum);
  }
  return sumf;
}

}  // namespace squeeze::quant::avx2

#endif
