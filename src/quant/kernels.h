#pragma once
// Internal to the quant layer (and its tests): the individual dot-product kernels behind
// vec_dot(), so that the scalar and SIMD versions can be called and compared directly.
// Every kernel has the VecDotFn signature: w is a weight row, a the activation row in the weight
// type's vec_dot_type, n the element count (a multiple of the block size).
#include <cstdint>

#include "quant/vec_dot.h"

namespace squeeze::quant {

// Portable C++ written so that GCC -O3 auto-vectorizes the integer inner loops.
namespace scalar {
float dot_f32(const void* w, const void* a, int64_t n);
float dot_f16(const void* w, const void* a, int64_t n);
float dot_bf16(const void* w, const void* a, int64_t n);
float dot_q4_0(const void* w, const void* a, int64_t n);
float dot_q4_1(const void* w, const void* a, int64_t n);
float dot_q5_0(const void* w, const void* a, int64_t n);
float dot_q5_1(const void* w, const void* a, int64_t n);
float dot_q8_0(const void* w, const void* a, int64_t n);
float dot_q2_k(const void* w, const void* a, int64_t n);
float dot_q3_k(const void* w, const void* a, int64_t n);
float dot_q4_k(const void* w, const void* a, int64_t n);
float dot_q5_k(const void* w, const void* a, int64_t n);
float dot_q6_k(const void* w, const void* a, int64_t n);
}  // namespace scalar

// Hand-written AVX2 (+FMA, F16C) kernels, compiled with target attributes so the rest of the
// build stays baseline x86-64. They produce the same integer block sums as the scalar kernels;
// only the float accumulation order differs (per-lane sums, as in llama.cpp's AVX2 code).
namespace avx2 {
bool supported();                  // CPU has AVX2, FMA and F16C (false on non-x86 builds)
VecDotFn kernel(GGMLType weight_type);  // nullptr where there is no AVX2 version
}  // namespace avx2

// Kernels in llama.cpp's AVX2 accumulation order (vec_dot_llamacpp.cpp), for Numerics::llamacpp.
namespace llamacpp_order {
namespace scalar {  // portable, lane by lane; the same bits as the AVX2 versions
float dot_q8_0(const void* w, const void* a, int64_t n);
float dot_q5_0(const void* w, const void* a, int64_t n);
float dot_q4_k(const void* w, const void* a, int64_t n);
float dot_q6_k(const void* w, const void* a, int64_t n);
}  // namespace scalar
namespace avx2 {
float dot_q4_k(const void* w, const void* a, int64_t n);
float dot_q6_k(const void* w, const void* a, int64_t n);
}  // namespace avx2
VecDotFn kernel(GGMLType weight_type);  // the best llama.cpp-order kernel for this CPU
}  // namespace llamacpp_order

// The kernel table for the current CPU: the scalar kernels, with AVX2 versions swapped in where
// they exist and the CPU supports AVX2+FMA+F16C. nullptr for types without kernels.
VecDotFn scalar_kernel(GGMLType weight_type);
VecDotFn best_kernel(GGMLType weight_type);

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 pushes the fraction out of
// the mantissa and the FPU's default rounding mode does the rest. This is ggml's nearest_int(),
// which Q8_K activation quantization uses (unlike Q8_0/Q8_1, which round half away from zero).
inline int nearest_int(float v) {
  const float t = v + 12582912.0f;
  int32_t i;
  __builtin_memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace squeeze::quant
