#pragma once
// Reference (scalar) dequantization of one row, bit-exact with the gguf Python package.
#include <cstdint>

#include "quant/ggml_type.h"

namespace squeeze {

// Writes n floats to dst. n must be a multiple of the type's block size. Throws Error for a type
// without kernels.
void dequantize_row(GGMLType t, const void* src, float* dst, int64_t n);

}  // namespace squeeze
