#pragma once
// A named weight inside a mapped model file. Dimensions follow ggml order: ne[0] varies fastest,
// so a [out, in] PyTorch matrix has ne = {in, out}. Owns nothing; the file mapping must outlive it.
#include <array>
#include <cstdint>
#include <string>

#include "quant/ggml_type.h"

namespace squeeze {

struct TensorRef {
  std::string name;
  GGMLType type = GGMLType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

}  // namespace squeeze
