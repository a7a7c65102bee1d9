#pragma once
// Dot products of a weight row with an activation row, computed the way llama.cpp's CPU backend
// does: the activation is first converted to the weight type's "vec_dot type" (Q8_0, Q8_1, Q8_K,
// F16, BF16 or F32) and the dot product then runs on the quantized blocks. This keeps squeeze's
// numbers within rounding of llama.cpp's on quantized models.
#include <cstddef>
#include <cstdint>

#include "quant/ggml_type.h"
#include "quant/numerics.h"

namespace squeeze {

// The activation format a weight type's dot product consumes.
GGMLType vec_dot_type(GGMLType weight_type);

// Converts n floats to the given activation format (F32, F16, BF16, Q8_0, Q8_1, Q8_K).
// dst must hold row_bytes(act_type, n) bytes. Numerics::llamacpp uses llama.cpp's x86 Q8_0
// quantizer (the other formats are the same in both).
void quantize_activation_row(GGMLType act_type, const float* src, void* dst, int64_t n,
                             Numerics numerics = Numerics::exact);

// sum_i w[i] * a[i] over n elements; w is a weight row of type weight_type and a the activation
// row already converted with quantize_activation_row(vec_dot_type(weight_type), ...).
float vec_dot(GGMLType weight_type, const void* w, const void* a, int64_t n);

// The kernel vec_dot() dispatches to, for callers that loop over many rows (the matmul) and
// want to skip the per-call switch. Picked once per process for the CPU (AVX2 when available).
// Throws Error for a weight type without kernels.
using VecDotFn = float (*)(const void* w, const void* a, int64_t n);
VecDotFn vec_dot_fn(GGMLType weight_type);
// The kernel for the given numerics: Numerics::llamacpp picks kernels that accumulate in
// llama.cpp's AVX2 order (bit-identical to it for F32/F16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q6_K).
VecDotFn vec_dot_fn(GGMLType weight_type, Numerics numerics);

}  // namespace squeeze
