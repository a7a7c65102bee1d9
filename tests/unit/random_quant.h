#pragma once
// Random quantized weight rows and activation rows for the kernel tests.
#include <cstring>
#include <random>
#include <vector>

#include "quant/ggml_type.h"
#include "util/fp16.h"

namespace squeeze::test {

// Byte offsets of the f16 scale/min fields of each quant block (see blocks.h).
inline std::vector<int> f16_fields(GGMLType t) {
  switch (t) {
    case GGMLType::Q4_0: case GGMLType::Q5_0: case GGMLType::Q8_0: return {0};
    case GGMLType::Q4_1: case GGMLType::Q5_1: case GGMLType::Q4_K: case GGMLType::Q5_K: return {0, 2};
    case GGMLType::Q2_K: return {80, 82};
    case GGMLType::Q3_K: return {108};
    case GGMLType::Q6_K: return {208};
    default: return {};
  }
}

// A random weight row: random bytes with modest finite scales (signed for the scale-only
// formats, so both signs of d are covered), or gaussian values for the float types.
inline std::vector<uint8_t> random_weights(GGMLType t, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> w(row_bytes(t, n));
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  if (t == GGMLType::F32 || t == GGMLType::F16 || t == GGMLType::BF16) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = gauss(rng);
      if (t == GGMLType::F32) std::memcpy(&w[4 * i], &v, 4);
      const uint16_t h = t == GGMLType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
      if (t != GGMLType::F32) std::memcpy(&w[2 * i], &h, 2);
    }
    return w;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w) b = uint8_t(byte(rng));
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  const TypeInfo& ti = type_info(t);
  for (int64_t blk = 0; blk < n / ti.block_elems; ++blk)
    for (int off : f16_fields(t)) {
      const uint16_t h = f32_to_f16(scale(rng));
      std::memcpy(&w[blk * ti.block_bytes + off], &h, 2);
    }
  return w;
}

inline std::vector<float> random_activations(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = gauss(rng);
  // An outlier, as real activations have. Not in single-block rows: there one outlier sets the
  // whole row's quantization step and the 1e-2 budget below would no longer be representative.
  if (n >= 256) x[n / 3] *= 20.0f;
  return x;
}

}  // namespace squeeze::test
