// Scalar dequantization. Every expression keeps the operation order of gguf-py's numpy code
// (e.g. Q4_K computes (d*sc)*q - (dmin*m), not d*(sc*q) - ...), because float multiplication
// is not associative and the reference tests compare bit for bit.
//
// Bit-exactness needs a*b+c rounded twice, never fused into one FMA. GCC contracts by default
// in C++ (even with -std=c++20) wherever FMA is available (-march=native, or the AVX2 target
// attribute), so CMakeLists.txt builds with -ffp-contract=off. Explicit FMA intrinsics still work.
#include "quant/dequantize.h"

#include <cstring>

#include "quant/blocks.h"
#include "util/error.h"
#include "util/fp16.h"

namespace squeeze {

using namespace quant;

namespace {

void dq_f32(const void* src, float* y, int64_t n) { std::memcpy(y, src, size_t(n) * 4); }

void dq_f16(const void* src, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void dq_bf16(const void* src, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

void dq_q4_0(const void* src, float* y, int64_t nb) {
  const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = d * float((b[i].qs[j] & 15) - 8);
      y[j + QK / 2] = d * float((b[i].qs[j] >> 4) - 8);
    }
  }
}

void dq_q4_1(const void* src, float* y, int64_t nb) {
  const BlockQ4_1* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = f16_to_f32(b[i].d), m = f16_to_f32(b[i].m);
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = d * float(b[i].qs[j] & 15) + m;
      y[j + QK / 2] = d * float(b[i].qs[j] >> 4) + m;
    }
  }
}

// The 32 high bits of a Q5 block as a little-endian u32: bit j belongs to element j.
inline uint32_t load_qh(const uint8_t* qh) {
  return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}

void dq_q5_0(const void* src, float* y, int64_t nb) {
  const BlockQ5_0* b = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = f16_to_f32(b[i].d);
    const uint32_t qh = load_qh(b[i].qh);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = int((b[i].qs[j] & 15) | ((qh >> j) & 1) << 4);
      const int hi = int((b[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
      y[j] = d * float(lo - 16);
      y[j + QK / 2] = d * float(hi - 16);
    }
  }
}

void dq_q5_1(const void* src, float* y, int64_t nb) {
  const BlockQ5_1* b = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = f16_to_f32(b[i].d), m = f16_to_f32(b[i].m);
    const uint32_t qh = load_qh(b[i].qh);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = int((b[i].qs[j] & 15) | ((qh >> j) & 1) << 4);
      const int hi = int((b[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
      y[j] = d * float(lo) + m;
      y[j + QK / 2] = d * float(hi) + m;
    }
  }
}

void dq_q8_0(const void* src, float* y, int64_t nb) {
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < QK; ++j) y[j] = float(b[i].qs[j]) * d;
  }
}

void dq_q2_k(const void* src, float* y, int64_t nb) {
  const BlockQ2_K* b = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK_K) {
    const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
    for (int e = 0; e < QK_K; ++e) {
      const int h = e / 128, j = (e % 128) / 32, l = e % 32, k = e / 16;
      const int q = (b[i].qs[32 * h + l] >> (2 * j)) & 3;
      const float dl = d * float(b[i].scales[k] & 15);
      const float ml = dmin * float(b[i].scales[k] >> 4);
      y[e] = dl * float(q) - ml;
    }
  }
}

void dq_q3_k(const void* src, float* y, int64_t nb) {
  const BlockQ3_K* b = static_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK_K) {
    const float d = f16_to_f32(b[i].d);
    int8_t sc[16];
    q3k_scales(b[i].scales, sc);
    for (int e = 0; e < QK_K; ++e) {
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int low = (b[i].qs[32 * h + l] >> (2 * j)) & 3;
      const int hb = (b[i].hmask[l] >> (4 * h + j)) & 1;
      const int q = low - (hb ? 0 : 4);  // a set high bit means no offset
      y[e] = (d * float(sc[e / 16])) * float(q);
    }
  }
}

void dq_q4_k(const void* src, float* y, int64_t nb) {
  const BlockQ4_K* b = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK_K) {
    const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
    for (int t = 0; t < 8; ++t) {
      uint8_t sc, m;
      k_scale_min(b[i].scales, t, sc, m);
      const float dl = d * float(sc), ml = dmin * float(m);
      const uint8_t* q = b[i].qs + 32 * (t / 2);
      const int shift = 4 * (t & 1);
      for (int l = 0; l < 32; ++l) y[32 * t + l] = dl * float((q[l] >> shift) & 15) - ml;
    }
  }
}

void dq_q5_k(const void* src, float* y, int64_t nb) {
  const BlockQ5_K* b = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK_K) {
    const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
    for (int t = 0; t < 8; ++t) {
      uint8_t sc, m;
      k_scale_min(b[i].scales, t, sc, m);
      const float dl = d * float(sc), ml = dmin * float(m);
      const uint8_t* q = b[i].qs + 32 * (t / 2);
      const int shift = 4 * (t & 1);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 15) | (((b[i].qh[l] >> t) & 1) << 4);
        y[32 * t + l] = dl * float(v) - ml;
      }
    }
  }
}

void dq_q6_k(const void* src, float* y, int64_t nb) {
  const BlockQ6_K* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < nb; ++i, y += QK_K) {
    const float d = f16_to_f32(b[i].d);
    for (int e = 0; e < QK_K; ++e) {
      const int h = e / 128, g = (e % 128) / 32, l = e % 32;
      const int lo4 = (b[i].ql[64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15;
      const int hi2 = (b[i].qh[32 * h + l] >> (2 * g)) & 3;
      const int q = (lo4 | (hi2 << 4)) - 32;
      y[e] = (d * float(b[i].scales[e / 16])) * float(q);
    }
  }
}

}  // namespace

void dequantize_row(GGMLType t, const void* src, float* dst, int64_t n) {
  const TypeInfo& ti = type_info(t);
  if (n % ti.block_elems != 0)
    throw Error(fmt("dequantize: %lld elements is not a multiple of the %s block size %lld",
                    (long long)n, ti.name, (long long)ti.block_elems));
  const int64_t nb = n / ti.block_elems;
  switch (t) {
    case GGMLType::F32: return dq_f32(src, dst, n);
    case GGMLType::F16: return dq_f16(src, dst, n);
    case GGMLType::BF16: return dq_bf16(src, dst, n);
    case GGMLType::Q4_0: return dq_q4_0(src, dst, nb);
    case GGMLType::Q4_1: return dq_q4_1(src, dst, nb);
    case GGMLType::Q5_0: return dq_q5_0(src, dst, nb);
    case GGMLType::Q5_1: return dq_q5_1(src, dst, nb);
    case GGMLType::Q8_0: return dq_q8_0(src, dst, nb);
    case GGMLType::Q2_K: return dq_q2_k(src, dst, nb);
    case GGMLType::Q3_K: return dq_q3_k(src, dst, nb);
    case GGMLType::Q4_K: return dq_q4_k(src, dst, nb);
    case GGMLType::Q5_K: return dq_q5_k(src, dst, nb);
    case GGMLType::Q6_K: return dq_q6_k(src, dst, nb);
    default: break;
  }
  throw Error(fmt("dequantize: no kernel for tensor type %s", ti.name));
}

}  // namespace squeeze
