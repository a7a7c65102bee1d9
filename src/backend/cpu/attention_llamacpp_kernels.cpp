// The two kernel sets of attention_llamacpp_kernels.h. The portable set is the reference: each
// AVX2 kernel does the same operations on the same operands in the same order per output element,
// only several elements at a time. The project builds with -ffp-contract=off, so no multiply-add
// is fused unless written as an fma here.
#include "backend/cpu/attention_llamacpp_kernels.h"

#include <atomic>
#include <cmath>
#include <cstring>

#include "util/fp16.h"

#if defined(__x86_64__) || defined(__i386__)
#define SQZ_ATTN_X86 1
#include <cpuid.h>
#include <immintrin.h>
#define SQZ_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SQZ_UNROLL _Pragma("GCC unroll 8")
#endif

namespace squeeze::attn_llamacpp {

namespace {

// ---------------------------------------------------------------------------------------------
// Portable kernels.

// ggml_vec_dot_f16/_f32 with 8-wide AVX: four 8-lane FMA accumulators over runs of 32, reduced
// as (a0 + a2) + (a1 + a3) per lane, then lanes (l + l+4), then (t0 + t1) + (t2 + t3); the tail
// (n % 32) is added in double.
template <typename K>
float dot_portable(const K* k, const float* q, int32_t n) {
  auto x = [&](int32_t i) {
    if constexpr (sizeof(K) == 2) return f16_to_f32(k[i]);
    else return k[i];
  };
  float acc[4][8] = {};
  int32_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 8; ++l) acc[j][l] = std::fma(x(i + 8 * j + l), q[i + 8 * j + l], acc[j][l]);
  float t[4];
  for (int l = 0; l < 4; ++l)
    t[l] = ((acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l])) + ((acc[0][l + 4] + acc[2][l + 4]) + (acc[1][l + 4] + acc[3][l + 4]));
  double sum = double((t[0] + t[1]) + (t[2] + t[3]));
  for (; i < n; ++i) sum += double(x(i) * q[i]);
  return float(sum);
}

void round_f16_portable(float* x, int32_t n) {
  for (int32_t i = 0; i < n; ++i) x[i] = f16_to_f32(f32_to_f16(x[i]));
}

void scale_f16_portable(uint16_t* acc, float s, int32_t n) {
  for (int32_t i = 0; i < n; ++i) acc[i] = f32_to_f16(f16_to_f32(acc[i]) * s);
}

void mad_f16_portable(uint16_t* acc, const uint16_t* v, float p, int32_t n) {
  const int32_t np = n & ~31;
  for (int32_t i = 0; i < np; ++i) acc[i] = f32_to_f16(std::fma(f16_to_f32(v[i]), p, f16_to_f32(acc[i])));
  for (int32_t i = np; i < n; ++i) acc[i] = f32_to_f16(f16_to_f32(acc[i]) + f16_to_f32(v[i]) * p);
}

void mad_f32_portable(float* acc, const float* v, float p, int32_t n) {
  const int32_t np = n & ~31;
  for (int32_t i = 0; i < np; ++i) acc[i] = std::fma(v[i], p, acc[i]);
  for (int32_t i = np; i < n; ++i) acc[i] = acc[i] + v[i] * p;
}

void f16_to_f32_row_portable(const uint16_t* src, float* dst, int32_t n) {
  for (int32_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void k_tile_portable(const void* const* rows, bool f16, int32_t d, float* kt) {
  for (int j = 0; j < kTileKV; ++j) {
    for (int32_t i = 0; i < d; ++i) {
      float x = 0.0f;
      if (rows[j] && f16) x = f16_to_f32(static_cast<const uint16_t*>(rows[j])[i]);
      else if (rows[j]) x = static_cast<const float*>(rows[j])[i];
      kt[size_t(i) * kTileKV + j] = x;
    }
  }
}

void scores_portable(const float* const* q, int nq, const float* kt, int32_t d, int32_t j0, int32_t j1, float* s) {
  for (int b = 0; b < nq; ++b) {
    for (int32_t j = j0; j <= j1; ++j) {
      float acc = 0.0f;
      for (int32_t i = 0; i < d; ++i) acc = std::fma(kt[size_t(i) * kTileKV + j], q[b][i], acc);
      s[b * kTileKV + j] = acc;
    }
  }
}

inline uint32_t bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }
inline float from_bits(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }

// ggml's vectorized expf (ggml_v_expf), one lane: exp(x) = 2^n * (1 + p(b)) with n = round(x /
// ln 2) and b the reduced argument; lanes with |n| > 126 are rebuilt from two scale factors.
float ggml_expf_lane(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const uint32_t e = bits(z) << 23;
  const float k = from_bits(e + bits(1.0f));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);
  if (!(std::fabs(n) > 126.0f)) return std::fma(k, j, k);
  const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = from_bits(g + 0x7f000000u);
  const float s2 = from_bits(e - g);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  return std::fma(s2, j, s2) * s1;
}

// ggml_vec_soft_max_f32's sum of one 8-lane vector.
inline float sum8(const float* e) { return ((e[0] + e[4]) + (e[2] + e[6])) + ((e[1] + e[5]) + (e[3] + e[7])); }

double exp_tile_portable(float* s, float m) {
  double sum = 0.0;
  for (int j8 = 0; j8 < kTileKV; j8 += 8) {
    for (int l = 0; l < 8; ++l) s[j8 + l] = ggml_expf_lane(s[j8 + l] - m);
    sum += double(sum8(s + j8));
  }
  return sum;
}

void accumulate_v_portable(float* const* acc, const float* const* p, int nq, const float* const* v, int32_t j0,
                           int32_t j1, int32_t d) {
  for (int b = 0; b < nq; ++b)
    for (int32_t j = j0; j <= j1; ++j)
      for (int32_t i = 0; i < d; ++i) acc[b][i] = std::fma(v[j][i], p[b][j], acc[b][i]);
}

constexpr Kernels kPortable = {
    dot_portable<uint16_t>, dot_portable<float>, round_f16_portable, scale_f16_portable, mad_f16_portable,
    mad_f32_portable,       f16_to_f32_row_portable, k_tile_portable, scores_portable, exp_tile_portable,
    accumulate_v_portable,
};

#ifdef SQZ_ATTN_X86
// ---------------------------------------------------------------------------------------------
// AVX2 kernels.

SQZ_AVX2 inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
SQZ_AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
SQZ_AVX2 inline __m128i to_f16(__m256 x) { return _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT); }
SQZ_AVX2 inline void store8(uint16_t* p, __m256 x) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), to_f16(x)); }

template <typename K>
SQZ_AVX2 float dot_avx2(const K* k, const float* q, int32_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int32_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(load8(k + i), _mm256_loadu_ps(q + i), a0);
    a1 = _mm256_fmadd_ps(load8(k + i + 8), _mm256_loadu_ps(q + i + 8), a1);
    a2 = _mm256_fmadd_ps(load8(k + i + 16), _mm256_loadu_ps(q + i + 16), a2);
    a3 = _mm256_fmadd_ps(load8(k + i + 24), _mm256_loadu_ps(q + i + 24), a3);
  }
  const __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));
  float t[4];
  _mm_storeu_ps(t, _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)));
  double sum = double((t[0] + t[1]) + (t[2] + t[3]));
  for (; i < n; ++i) {
    float x;
    if constexpr (sizeof(K) == 2) x = _cvtsh_ss(k[i]);
    else x = k[i];
    sum += double(x * q[i]);
  }
  return float(sum);
}

SQZ_AVX2 void round_f16_avx2(float* x, int32_t n) {
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_cvtph_ps(to_f16(_mm256_loadu_ps(x + i))));
  round_f16_portable(x + i, n - i);
}

SQZ_AVX2 void scale_f16_avx2(uint16_t* acc, float s, int32_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) store8(acc + i, _mm256_mul_ps(load8(acc + i), vs));
  scale_f16_portable(acc + i, s, n - i);
}

SQZ_AVX2 void mad_f16_avx2(uint16_t* acc, const uint16_t* v, float p, int32_t n) {
  const int32_t np = n & ~31;
  const __m256 vp = _mm256_set1_ps(p);
  for (int32_t i = 0; i < np; i += 8) store8(acc + i, _mm256_fmadd_ps(load8(v + i), vp, load8(acc + i)));
  for (int32_t i = np; i < n; ++i) acc[i] = f32_to_f16(f16_to_f32(acc[i]) + f16_to_f32(v[i]) * p);
}

SQZ_AVX2 void mad_f32_avx2(float* acc, const float* v, float p, int32_t n) {
  const int32_t np = n & ~31;
  const __m256 vp = _mm256_set1_ps(p);
  for (int32_t i = 0; i < np; i += 8)
    _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(_mm256_loadu_ps(v + i), vp, _mm256_loadu_ps(acc + i)));
  for (int32_t i = np; i < n; ++i) acc[i] = acc[i] + v[i] * p;
}

SQZ_AVX2 void f16_to_f32_row_avx2(const uint16_t* src, float* dst, int32_t n) {
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(src + i));
  f16_to_f32_row_portable(src + i, dst + i, n - i);
}

SQZ_AVX2 inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    s[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x20);
    r[k + 4] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x31);
  }
}

template <typename K>
SQZ_AVX2 void k_tile_avx2_t(const void* const* rows, int32_t d, float* kt) {
  for (int j = 0; j < kTileKV; j += 8) {
    const K* r[8];
    for (int k = 0; k < 8; ++k) r[k] = static_cast<const K*>(rows[j + k]);
    int32_t i = 0;
    for (; i + 8 <= d; i += 8) {
      __m256 x[8];
      for (int k = 0; k < 8; ++k) x[k] = r[k] ? load8(r[k] + i) : _mm256_setzero_ps();
      transpose8(x);
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(kt + size_t(i + k) * kTileKV + j, x[k]);
    }
    for (; i < d; ++i)
      for (int k = 0; k < 8; ++k) {
        float x = 0.0f;
        if constexpr (sizeof(K) == 2) x = r[k] ? f16_to_f32(r[k][i]) : 0.0f;
        else x = r[k] ? r[k][i] : 0.0f;
        kt[size_t(i) * kTileKV + j + k] = x;
      }
  }
}

SQZ_AVX2 void k_tile_avx2(const void* const* rows, bool f16, int32_t d, float* kt) {
  if (f16) k_tile_avx2_t<uint16_t>(rows, d, kt);
  else k_tile_avx2_t<float>(rows, d, kt);
}

// NQ queries x NK vectors of 8 keys: NQ * NK independent FMA chains, enough to cover the FMA
// latency, and each K load is shared by all NQ queries.
template <int NQ, int NK>
SQZ_AVX2 void scores_block(const float* const* q, const float* kt, int32_t d, int32_t j0, int32_t j1, float* s) {
  constexpr int32_t W = 8 * NK;
  for (int32_t j = j0 / W * W; j <= j1; j += W) {
    __m256 acc[NQ][NK];
    SQZ_UNROLL for (int b = 0; b < NQ; ++b)
      SQZ_UNROLL for (int k = 0; k < NK; ++k) acc[b][k] = _mm256_setzero_ps();
    const float* kp = kt + j;
    for (int32_t i = 0; i < d; ++i, kp += kTileKV) {
      __m256 kv[NK];
      SQZ_UNROLL for (int k = 0; k < NK; ++k) kv[k] = _mm256_loadu_ps(kp + 8 * k);
      SQZ_UNROLL for (int b = 0; b < NQ; ++b) {
        const __m256 qb = _mm256_broadcast_ss(q[b] + i);
        SQZ_UNROLL for (int k = 0; k < NK; ++k) acc[b][k] = _mm256_fmadd_ps(kv[k], qb, acc[b][k]);
      }
    }
    SQZ_UNROLL for (int b = 0; b < NQ; ++b)
      SQZ_UNROLL for (int k = 0; k < NK; ++k) _mm256_storeu_ps(s + b * kTileKV + j + 8 * k, acc[b][k]);
  }
}

SQZ_AVX2 void scores_avx2(const float* const* q, int nq, const float* kt, int32_t d, int32_t j0, int32_t j1,
                          float* s) {
  switch (nq) {
    case 1: scores_block<1, 8>(q, kt, d, j0, j1, s); break;
    case 2: scores_block<2, 4>(q, kt, d, j0, j1, s); break;
    case 3: scores_block<3, 2>(q, kt, d, j0, j1, s); break;
    default: scores_block<4, 2>(q, kt, d, j0, j1, s); break;
  }
}

// ggml_v_expf (AVX2), lane for lane the same operations as ggml_expf_lane.
SQZ_AVX2 inline __m256 v_expf(__m256 x) {
  const __m256 r = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
  const __m256 n = _mm256_sub_ps(z, r);
  const __m256 b =
      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
  const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1))));
  const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  const __m256 c = _mm256_cmp_ps(an, _mm256_set1_ps(126), _CMP_GT_OQ);
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                      _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
      u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
  const __m256 normal = _mm256_fmadd_ps(k, j, k);
  if (!_mm256_movemask_ps(c)) return normal;
  const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                     _mm256_set1_epi32(int32_t(0x82000000u)));
  const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
  const __m256 dd = _mm256_cmp_ps(an, _mm256_set1_ps(192), _CMP_GT_OQ);
  const __m256 big = _mm256_blendv_ps(_mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1), _mm256_mul_ps(s1, s1), dd);
  return _mm256_blendv_ps(normal, big, c);
}

SQZ_AVX2 double exp_tile_avx2(float* s, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  double sum = 0.0;
  for (int j8 = 0; j8 < kTileKV; j8 += 8) {
    _mm256_storeu_ps(s + j8, v_expf(_mm256_sub_ps(_mm256_loadu_ps(s + j8), vm)));
    sum += double(sum8(s + j8));
  }
  return sum;
}

// NQ queries x NI vectors of 8 output elements, accumulated in registers over all keys; each V
// load is shared by the NQ queries.
template <int NQ, int NI>
SQZ_AVX2 inline void accumulate_block(float* const* acc, const float* const* p, const float* const* v, int32_t j0,
                                      int32_t j1, int32_t i) {
  // Fully unrolled on purpose: otherwise GCC keeps a copy of the accumulators on the stack and
  // stores them after every key.
  __m256 a[NQ][NI];
  SQZ_UNROLL for (int b = 0; b < NQ; ++b)
    SQZ_UNROLL for (int k = 0; k < NI; ++k) a[b][k] = _mm256_loadu_ps(acc[b] + i + 8 * k);
  for (int32_t j = j0; j <= j1; ++j) {
    __m256 vv[NI];
    SQZ_UNROLL for (int k = 0; k < NI; ++k) vv[k] = _mm256_loadu_ps(v[j] + i + 8 * k);
    SQZ_UNROLL for (int b = 0; b < NQ; ++b) {
      const __m256 pj = _mm256_broadcast_ss(p[b] + j);
      SQZ_UNROLL for (int k = 0; k < NI; ++k) a[b][k] = _mm256_fmadd_ps(vv[k], pj, a[b][k]);
    }
  }
  SQZ_UNROLL for (int b = 0; b < NQ; ++b)
    SQZ_UNROLL for (int k = 0; k < NI; ++k) _mm256_storeu_ps(acc[b] + i + 8 * k, a[b][k]);
}

template <int NQ, int NI>
SQZ_AVX2 void accumulate_nq(float* const* acc, const float* const* p, const float* const* v, int32_t j0, int32_t j1,
                            int32_t d) {
  int32_t i = 0;
  for (; i + 8 * NI <= d; i += 8 * NI) accumulate_block<NQ, NI>(acc, p, v, j0, j1, i);
  for (; i + 8 <= d; i += 8) accumulate_block<NQ, 1>(acc, p, v, j0, j1, i);
  for (; i < d; ++i)
    for (int b = 0; b < NQ; ++b)
      for (int32_t j = j0; j <= j1; ++j) acc[b][i] = std::fma(v[j][i], p[b][j], acc[b][i]);
}

SQZ_AVX2 void accumulate_v_avx2(float* const* acc, const float* const* p, int nq, const float* const* v, int32_t j0,
                                int32_t j1, int32_t d) {
  switch (nq) {
    case 1: accumulate_nq<1, 8>(acc, p, v, j0, j1, d); break;
    case 2: accumulate_nq<2, 4>(acc, p, v, j0, j1, d); break;
    case 3: accumulate_nq<3, 2>(acc, p, v, j0, j1, d); break;
    default: accumulate_nq<4, 2>(acc, p, v, j0, j1, d); break;
  }
}

constexpr Kernels kAvx2 = {
    dot_avx2<uint16_t>, dot_avx2<float>,     round_f16_avx2, scale_f16_avx2, mad_f16_avx2,
    mad_f32_avx2,       f16_to_f32_row_avx2, k_tile_avx2,    scores_avx2,    exp_tile_avx2,
    accumulate_v_avx2,
};

bool has_avx2() {
  // __builtin_cpu_supports covers AVX2/FMA (including the OS saving YMM state); F16C is read
  // from CPUID leaf 1 because clang does not know that feature name.
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}
#endif

std::atomic<bool> g_force_portable{false};

}  // namespace

const Kernels& kernels() {
#ifdef SQZ_ATTN_X86
  static const bool avx2 = has_avx2();
  if (avx2 && !g_force_portable.load(std::memory_order_relaxed)) return kAvx2;
#endif
  return kPortable;
}

void force_portable_kernels(bool on) { g_force_portable.store(on, std::memory_order_relaxed); }

}  // namespace squeeze::attn_llamacpp
