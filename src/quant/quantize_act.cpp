// Activation conversion: the reference quantizers of ggml-quants.c (quantize_row_q8_0_ref,
// _q8_1_ref, _q8_K_ref), reproduced operation for operation so that squeeze feeds its dot
// products the same bytes llama.cpp's generic path does. llama.cpp's x86 AVX quantize_row_q8_0
// differs slightly (it rounds ties to even and scales by 127/amax instead of 1/d); the
// llamacpp numerics use that one (quantize_q8_0_x86).
//
// Bit-exactness needs a*b+c rounded twice, never fused into one FMA. GCC contracts by default
// in C++ (even with -std=c++20) wherever FMA is available (-march=native, or the AVX2 target
// attribute), so CMakeLists.txt builds with -ffp-contract=off. Explicit FMA intrinsics still work.
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "quant/blocks.h"
#include "quant/kernels.h"
#include "quant/vec_dot.h"
#include "util/error.h"
#include "util/fp16.h"

namespace squeeze {

using namespace quant;

GGMLType vec_dot_type(GGMLType t) {
  switch (t) {
    case GGMLType::F32: return GGMLType::F32;
    case GGMLType::F16: return GGMLType::F16;
    case GGMLType::BF16: return GGMLType::BF16;
    case GGMLType::Q4_0:
    case GGMLType::Q5_0:
    case GGMLType::Q8_0: return GGMLType::Q8_0;
    case GGMLType::Q4_1:
    case GGMLType::Q5_1: return GGMLType::Q8_1;
    case GGMLType::Q2_K:
    case GGMLType::Q3_K:
    case GGMLType::Q4_K:
    case GGMLType::Q5_K:
    case GGMLType::Q6_K: return GGMLType::Q8_K;
    default: break;
  }
  throw Error(fmt("no dot-product kernel for tensor type %s", type_info(t).name));
}

namespace {

// Largest |x| of a block, with ggml's MAX(a, b) = a > b ? a : b comparison order.
inline float block_amax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float v = std::fabs(x[j]);
    amax = amax > v ? amax : v;
  }
  return amax;
}

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK) {
    const float d = block_amax(x, QK) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    // roundf: ties away from zero, as the reference quantizer does.
    for (int j = 0; j < QK; ++j) y[i].qs[j] = int8_t(std::roundf(x[j] * id));
  }
}

// llama.cpp's x86 (AVX/AVX2) quantize_row_q8_0: the scale is applied as 127 / amax (not 1 / d)
// and the products are rounded half to even.
void quantize_q8_0_x86_block(const float* x, BlockQ8_0* y) {
  const float amax = block_amax(x, QK);
  y->d = f32_to_f16(amax / 127.0f);
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  for (int j = 0; j < QK; ++j) y->qs[j] = int8_t(std::nearbyint(x[j] * id));  // default mode: ties to even
}

// The same with AVX2 (nearbyint is a libm call per element on the x86-64 baseline: ~5% of Q4_0
// prefill on 2 Zen 4 cores). The maximum and the products are the scalar ones (max is exact in
// any order; one rounded multiply; _mm256_round_ps rounds ties to even like nearbyint in the
// default mode; |x * id| <= 127 + a rounding, so the packs never saturate). A block holding a
// NaN or an infinity, or whose 127 / amax overflows, where the two could differ, goes through
// the scalar code.
#if defined(__x86_64__)
// max |x| over n floats (n % 8 == 0) into amax; false when one of them is NaN or infinite.
__attribute__((target("avx2"))) bool finite_amax_avx2(const float* x, int n, float& amax) {
  const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
  __m256 m = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
  for (int k = 0; k < n; k += 8) {
    const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k));
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));  // |x| >= inf, or NaN
    m = _mm256_max_ps(m, a);
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  amax = _mm_cvtss_f32(h);
  return _mm256_movemask_ps(bad) == 0;
}

// The 32 int32 lanes of q[0..3], each in int8 range, as 32 bytes in order.
__attribute__((target("avx2"))) void store_32_bytes(const __m256i q[4], int8_t* dst) {
  // packs interleave the 128-bit lanes: 0 1 4 5 2 3 6 7 (in groups of 4 bytes) -> permute back.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

__attribute__((target("avx2"))) void quantize_q8_0_x86_avx2(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK) {
    float amax;
    if (!finite_amax_avx2(x, QK, amax)) {
      quantize_q8_0_x86_block(x, y + i);
      continue;
    }
    const float ids = amax != 0.0f ? 127.0f / amax : 0.0f;
    if (ids > 3.0e38f) {  // amax so small that 127 / amax overflows: x * id is inf or NaN
      quantize_q8_0_x86_block(x, y + i);
      continue;
    }
    y[i].d = f32_to_f16(amax / 127.0f);
    const __m256 id = _mm256_set1_ps(ids);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = _mm256_cvtps_epi32(
          _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    store_32_bytes(q, y[i].qs);
  }
}
#endif

void quantize_q8_0_x86(const float* x, BlockQ8_0* y, int64_t nb) {
#if defined(__x86_64__)
  if (quant::avx2::supported()) return quantize_q8_0_x86_avx2(x, y, nb);
#endif
  for (int64_t i = 0; i < nb; ++i, x += QK) quantize_q8_0_x86_block(x, y + i);
}

void quantize_q8_1(const float* x, BlockQ8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK) {
    const float d = block_amax(x, QK) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    int sum = 0;
    for (int j = 0; j < QK; ++j) {
      y[i].qs[j] = int8_t(std::roundf(x[j] * id));
      sum += y[i].qs[j];
    }
    // s lets the Q4_1/Q5_1 dot product apply the weight's min as m * s instead of summing
    // the activations again; it is rounded from f32 sum * d, not from exact values.
    y[i].s = f32_to_f16(float(sum) * d);
  }
}

void quantize_q8_k_block(const float* x, BlockQ8_K* y) {
  // The signed value of the first element with the largest magnitude sets the scale, so that
  // element maps to exactly -127 (the sign flip is what ggml's IQ kernels expect).
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < QK_K; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (amax == 0.0f) {
    std::memset(y, 0, sizeof(*y));
    return;
  }
  const float iscale = -127.0f / max;
  for (int j = 0; j < QK_K; ++j) {
    const int v = nearest_int(iscale * x[j]);
    y->qs[j] = int8_t(v < 127 ? v : 127);
  }
  for (int g = 0; g < QK_K / 16; ++g) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += y->qs[16 * g + l];
    y->bsums[g] = int16_t(sum);
  }
  y->d = 1.0f / iscale;
}

// The same with AVX2 (per element, the scalar code's product and ggml's nearest_int, a libm-free
// round half to even, which _mm256_round_ps matches for |v| < 2^22): ~2% of Q4_K_M prefill on 2
// Zen 4 cores. The scale comes from the first element of the largest magnitude, found by
// comparing with the block's maximum. A block holding a NaN or an infinity, or whose -127 / max
// overflows, goes through the scalar code.
#if defined(__x86_64__)
__attribute__((target("avx2"))) void quantize_q8_k_avx2(const float* x, BlockQ8_K* y, int64_t nb) {
  constexpr int kVecs = QK_K / 8;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    float amax;
    if (!finite_amax_avx2(x, QK_K, amax)) {
      quantize_q8_k_block(x, y + i);
      continue;
    }
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    const __m256 amaxv = _mm256_set1_ps(amax);
    float max = 0.0f;
    for (int k = 0; k < kVecs; ++k) {
      const int hit = _mm256_movemask_ps(
          _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), amaxv, _CMP_EQ_OQ));
      if (hit != 0) {
        max = x[8 * k + __builtin_ctz(unsigned(hit))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    if (!(std::fabs(iscale) <= 3.0e38f)) {  // max so small that the products may overflow
      quantize_q8_k_block(x, y + i);
      continue;
    }
    const __m256 is = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int k = 0; k < kVecs; k += 4) {
      __m256i q[4];
      for (int j = 0; j < 4; ++j)
        q[j] = _mm256_min_epi32(top, _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(is, _mm256_loadu_ps(x + 8 * (k + j))),
                                                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
      // the sums of 16: elements 8k .. 8k + 15 (q0 + q1), 8k + 16 .. 8k + 31 (q2 + q3)
      for (int g = 0; g < 2; ++g) {
        const __m256i s8 = _mm256_add_epi32(q[2 * g], q[2 * g + 1]);
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
        y[i].bsums[k / 2 + g] = int16_t(_mm_cvtsi128_si32(s4));
      }
      store_32_bytes(q, y[i].qs + 8 * k);
    }
    y[i].d = 1.0f / iscale;
  }
}
#endif

void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
#if defined(__x86_64__)
  if (quant::avx2::supported()) return quantize_q8_k_avx2(x, y, nb);
#endif
  for (int64_t i = 0; i < nb; ++i, x += QK_K) quantize_q8_k_block(x, y + i);
}

// f32 -> f16 for a row, 8 at a time with F16C where the CPU has it: its round-to-nearest-even
// conversion gives f32_to_f16's bits for every input but NaN (it quiets them), so a run of 8
// holding a NaN goes through f32_to_f16 (checked over all 2^32 inputs when written). The
// scalar function does not vectorize (its cases branch): ~2% of F16 prefill on 2 Zen 4 cores.
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void f32_to_f16_row_f16c(const float* src, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      for (int j = 0; j < 8; ++j) y[i + j] = f32_to_f16(src[i + j]);
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) y[i] = f32_to_f16(src[i]);
}
#endif

void f32_to_f16_row(const float* src, uint16_t* y, int64_t n) {
#if defined(__x86_64__)
  if (quant::avx2::supported()) return f32_to_f16_row_f16c(src, y, n);  // AVX2, FMA and F16C
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(src[i]);
}

}  // namespace

void quantize_activation_row(GGMLType t, const float* src, void* dst, int64_t n, Numerics numerics) {
  const TypeInfo& ti = type_info(t);
  if (n % ti.block_elems != 0)
    throw Error(fmt("quantize: %lld elements is not a multiple of the %s block size %lld",
                    (long long)n, ti.name, (long long)ti.block_elems));
  const int64_t nb = n / ti.block_elems;
  switch (t) {
    case GGMLType::F32:
      std::memcpy(dst, src, size_t(n) * sizeof(float));
      return;
    case GGMLType::F16:
      f32_to_f16_row(src, static_cast<uint16_t*>(dst), n);
      return;
    case GGMLType::BF16: {
      uint16_t* y = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(src[i]);
      return;
    }
    case GGMLType::Q8_0:
      if (numerics == Numerics::llamacpp) return quantize_q8_0_x86(src, static_cast<BlockQ8_0*>(dst), nb);
      return quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), nb);
    case GGMLType::Q8_1: return quantize_q8_1(src, static_cast<BlockQ8_1*>(dst), nb);
    case GGMLType::Q8_K: return quantize_q8_k(src, static_cast<BlockQ8_K*>(dst), nb);
    default: break;
  }
  throw Error(fmt("quantize: %s is not an activation format", ti.name));
}

}  // namespace squeeze
