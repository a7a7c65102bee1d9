#pragma once
// Shared pieces of the AVX2 kernels (vec_dot_avx2*.cpp). Everything here is compiled with a
// target attribute instead of -mavx2, so the library still runs on any x86-64 and only
// calls these after avx2::supported() said yes.
#if defined(__x86_64__) || defined(__i386__)
#define SQZ_HAVE_AVX2_KERNELS 1
#include <immintrin.h>

#include <cstdint>

#define SQZ_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace squeeze::quant::avx2 {

// Hardware f16 -> f32 (exact for every non-NaN input, like f16_to_f32).
SQZ_AVX2 inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

SQZ_AVX2 inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Sum of 8 int32 lanes (exact).
SQZ_AVX2 inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

SQZ_AVX2 inline float hsum_f32(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Pairwise int8 x int8 products summed into 8 int32 lanes (4 products per lane).
// maddubs multiplies unsigned by signed bytes, so the weight's sign is moved onto the
// activation first; no int16 saturation is possible because |activation| <= 127.
SQZ_AVX2 inline __m256i dot_i8(__m256i w, __m256i a) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// As dot_i8 for weights already in 0..127 (unsigned), the common case after unpacking.
SQZ_AVX2 inline __m256i dot_u8(__m256i w, __m256i a) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
}

// 32 bytes of a 32-element block from 16 packed nibble bytes: low nibbles (elements 0-15) in
// the low half, high nibbles (16-31) in the high half.
SQZ_AVX2 inline __m256i unpack_nibbles32(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Byte j = 0x10 when bit j of qh is set, else 0 (the Q5 fifth bit, already in place).
SQZ_AVX2 inline __m256i expand_bits_0x10(uint32_t qh) {
  // Byte j takes byte j/8 of qh (shuffle_epi8 works within 128-bit halves, and set1_epi32
  // repeats all four qh bytes in both), then tests bit j%8 of it.
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(qh)), pick);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Bit `shift` of every byte, moved to bit 0 (per-byte logical shift; the 16-bit shift leaks
// bits across bytes, which the mask removes).
SQZ_AVX2 inline __m256i byte_bit(__m256i v, int shift, int mask) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(char(mask)));
}

// Two int16 scales, one per 16-element half of a 32-element chunk (maddubs keeps elements
// 0-15 in the low 128 bits and 16-31 in the high 128 bits).
SQZ_AVX2 inline __m256i scale_pair(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(int16_t(hi)), _mm_set1_epi16(int16_t(lo)));
}

// K-quant kernels (vec_dot_avx2_k.cpp).
float dot_q2_k(const void* w, const void* a, int64_t n);
float dot_q3_k(const void* w, const void* a, int64_t n);
float dot_q4_k(const void* w, const void* a, int64_t n);
float dot_q5_k(const void* w, const void* a, int64_t n);
float dot_q6_k(const void* w, const void* a, int64_t n);

}  // namespace squeeze::quant::avx2
#endif
