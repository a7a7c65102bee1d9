#pragma once
// The ggml tensor element types as stored in GGUF files, described as data: one row of the table
// per type (block size, bytes per block, name) plus the kernels that read it.
#include <cstddef>
#include <cstdint>

namespace squeeze {

enum class GGMLType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeInfo {
  GGMLType type;
  const char* name;       // as ggml prints it: "q4_K", "f16", ...
  int64_t block_elems;    // elements per block
  int64_t block_bytes;    // bytes per block
  bool can_compute;       // squeeze has dequantize/dot kernels for it
};

// nullptr for an id that is not a known ggml type.
const TypeInfo* type_info(uint32_t id);
const TypeInfo& type_info(GGMLType t);
inline const char* type_name(GGMLType t) { return type_info(t).name; }

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(GGMLType t, int64_t n) {
  const TypeInfo& ti = type_info(t);
  return size_t(n / ti.block_elems) * size_t(ti.block_bytes);
}

}  // namespace squeeze
