// AVX2 dot products for the float types and the 32-element formats, plus the run-time switch
// that decides whether the AVX2 kernels are used at all.
//
// The legacy-format kernels compute the same exact integer sum per block as the scalar ones,
// but accumulate the scaled block sums in 8 float lanes with FMA (as llama.cpp's AVX2 code
// does), so results differ from the scalar kernels by float reassociation only.
#include <cpuid.h>
#include "quant/avx2_common.h"
#include "quant/blocks.h"
#include "quant/kernels.h"
#include "util/fp16.h"

namespace squeeze::quant::avx2 {

#ifdef SQZ_HAVE_AVX2_KERNELS

namespace {

// Float-like rows: 4 independent 8-lane FMA chains hide the FMA latency. Load8 turns 8 stored
// elements into an __m256; Conv handles the scalar tail.
template <typename T, __m256 (*Load8)(const T*), float (*Conv)(T)>
SQZ_AVX2 inline float dot_floats(const T* x, const T* y, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(Load8(x + i), Load8(y + i), acc0);
    acc1 = _mm256_fmadd_ps(Load8(x + i + 8), Load8(y + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(Load8(x + i + 16), Load8(y + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(Load8(x + i + 24), Load8(y + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(Load8(x + i), Load8(y + i), acc0);
  float sum = hsum_f32(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += Conv(x[i]) * Conv(y[i]);
  return sum;
}

SQZ_AVX2 __m256 load8_f32(const float* p) { return _mm256_loadu_ps(p); }
SQZ_AVX2 __m256 load8_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
SQZ_AVX2 __m256 load8_bf16(const uint16_t* p) {
  // bf16 is the top half of an f32: widen to 32 bits and shift into place.
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
float id_f32(float v) { return v; }

SQZ_AVX2 float dot_f32(const void* w, const void* a, int64_t n) {
  return dot_floats<float, load8_f32, id_f32>(static_cast<const float*>(w),
                                              static_cast<const float*>(a), n);
}
SQZ_AVX2 float dot_f16(const void* w, const void* a, int64_t n) {
  return dot_floats<uint16_t, load8_f16, f16_to_f32>(static_cast<const uint16_t*>(w),
                                                     static_cast<const uint16_t*>(a), n);
}
SQZ_AVX2 float dot_bf16(const void* w, const void* a, int64_t n) {
  return dot_floats<uint16_t, load8_bf16, bf16_to_f32>(static_cast<const uint16_t*>(w),
                                                       static_cast<const uint16_t*>(a), n);
}

SQZ_AVX2 float dot_q8_0(const void* w, const void* a, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK; ++i) {
    const __m256i p = dot_i8(load256(x[i].qs), load256(y[i].qs));
    const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
  }
  return hsum_f32(acc);
}

SQZ_AVX2 float dot_q4_0(const void* w, const void* a, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK; ++i) {
    const __m256i q = _mm256_sub_epi8(unpack_nibbles32(x[i].qs), _mm256_set1_epi8(8));
    const __m256i p = dot_i8(q, load256(y[i].qs));
    const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
  }
  return hsum_f32(acc);
}

SQZ_AVX2 float dot_q4_1(const void* w, const void* a, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;  // sum of m * s: the weight min times the activation block sum
  for (int64_t i = 0; i < n / QK; ++i) {
    const __m256i p = dot_u8(unpack_nibbles32(x[i].qs), load256(y[i].qs));
    const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    mins += h2f(x[i].m) * h2f(y[i].s);
  }
  return hsum_f32(acc) + mins;
}

SQZ_AVX2 inline uint32_t load_qh(const uint8_t* p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

SQZ_AVX2 float dot_q5_0(const void* w, const void* a, int64_t n) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK; ++i) {
    const __m256i q5 = _mm256_or_si256(unpack_nibbles32(x[i].qs), expand_bits_0x10(load_qh(x[i].qh)));
    const __m256i p = dot_i8(_mm256_sub_epi8(q5, _mm256_set1_epi8(16)), load256(y[i].qs));
    const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
  }
  return hsum_f32(acc);
}

SQZ_AVX2 float dot_q5_1(const void* w, const void* a, int64_t n) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / QK; ++i) {
    const __m256i q5 = _mm256_or_si256(unpack_nibbles32(x[i].qs), expand_bits_0x10(load_qh(x[i].qh)));
    const __m256i p = dot_u8(q5, load256(y[i].qs));
    const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    mins += h2f(x[i].m) * h2f(y[i].s);
  }
  return hsum_f32(acc) + mins;
}

}  // namespace

bool supported() {
  // Decided once. __builtin_cpu_supports covers AVX2/FMA (including the OS saving YMM state);
  // F16C is read from CPUID leaf 1 directly because clang does not know that feature name.
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  }();
  return ok;
}

VecDotFn kernel(GGMLType t) {
  switch (t) {
    case GGMLType::F32: return dot_f32;
    case GGMLType::F16: return dot_f16;
    case GGMLType::BF16: return dot_bf16;
    case GGMLType::Q4_0: return dot_q4_0;
    case GGMLType::Q4_1: return dot_q4_1;
    case GGMLType::Q5_0: return dot_q5_0;
    case GGMLType::Q5_1: return dot_q5_1;
    case GGMLType::Q8_0: return dot_q8_0;
    case GGMLType::Q2_K: return avx2::dot_q2_k;
    case GGMLType::Q3_K: return avx2::dot_q3_k;
    case GGMLType::Q4_K: return avx2::dot_q4_k;
    case GGMLType::Q5_K: return avx2::dot_q5_k;
    case GGMLType::Q6_K: return avx2::dot_q6_k;
    default: return nullptr;
  }
}

#else  // not x86: only the scalar kernels exist

bool supported() { return false; }
VecDotFn kernel(GGMLType) { return nullptr; }

#endif

}  // namespace squeeze::quant::avx2
