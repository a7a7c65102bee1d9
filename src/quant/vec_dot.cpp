// Kernel selection for vec_dot(): a table from weight type to kernel, filled once per process.
#include "quant/vec_dot.h"

#include "quant/kernels.h"
#include "util/error.h"

namespace squeeze {

namespace quant {

VecDotFn scalar_kernel(GGMLType t) {
  switch (t) {
    case GGMLType::F32: return scalar::dot_f32;
    case GGMLType::F16: return scalar::dot_f16;
    case GGMLType::BF16: return scalar::dot_bf16;
    case GGMLType::Q4_0: return scalar::dot_q4_0;
    case GGMLType::Q4_1: return scalar::dot_q4_1;
    case GGMLType::Q5_0: return scalar::dot_q5_0;
    case GGMLType::Q5_1: return scalar::dot_q5_1;
    case GGMLType::Q8_0: return scalar::dot_q8_0;
    case GGMLType::Q2_K: return scalar::dot_q2_k;
    case GGMLType::Q3_K: return scalar::dot_q3_k;
    case GGMLType::Q4_K: return scalar::dot_q4_k;
    case GGMLType::Q5_K: return scalar::dot_q5_k;
    case GGMLType::Q6_K: return scalar::dot_q6_k;
    default: return nullptr;
  }
}

VecDotFn best_kernel(GGMLType t) {
  if (avx2::supported()) {
    if (VecDotFn f = avx2::kernel(t)) return f;
  }
  return scalar_kernel(t);
}

}  // namespace quant

namespace {

constexpr uint32_t kTableSize = 40;

// Exact mode: the scalar kernels' block order. Q4_0/Q5_0/Q8_0 keep it on every CPU (their tiled
// kernels reproduce it); the other formats' AVX2 kernels either match it already (K-quants) or
// accumulate in 8 lanes (floats, Q4_1, Q5_1).
VecDotFn exact_kernel(GGMLType t) {
  switch (t) {
    case GGMLType::Q4_0: case GGMLType::Q5_0: case GGMLType::Q8_0: return quant::scalar_kernel(t);
    default: return quant::best_kernel(t);
  }
}  // one past the largest ggml type id squeeze knows

struct KernelTable {
  VecDotFn fn[kTableSize] = {};
  explicit KernelTable(Numerics numerics) {
    for (uint32_t id = 0; id < kTableSize; ++id)
      if (type_info(id))
        fn[id] = numerics == Numerics::llamacpp ? quant::llamacpp_order::kernel(GGMLType(id))
                                                : exact_kernel(GGMLType(id));
  }
};

const KernelTable& kernels(Numerics numerics = Numerics::exact) {
  // Thread-safe one-time init; CPU features do not change.
  static const KernelTable exact(Numerics::exact), llamacpp(Numerics::llamacpp);
  return numerics == Numerics::llamacpp ? llamacpp : exact;
}

}  // namespace

VecDotFn vec_dot_fn(GGMLType t) {
  const uint32_t id = uint32_t(t);
  VecDotFn f = id < kTableSize ? kernels().fn[id] : nullptr;
  if (!f) throw Error(fmt("no dot-product kernel for tensor type %s", type_info(t).name));
  return f;
}

VecDotFn vec_dot_fn(GGMLType t, Numerics numerics) {
  const uint32_t id = uint32_t(t);
  VecDotFn f = id < kTableSize ? kernels(numerics).fn[id] : nullptr;
  if (!f) throw Error(fmt("no dot-product kernel for tensor type %s", type_info(t).name));
  return f;
}

float vec_dot(GGMLType t, const void* w, const void* a, int64_t n) {
  const int64_t be = type_info(t).block_elems;
  if (n % be != 0)
    throw Error(fmt("vec_dot: %lld elements is not a multiple of the %s block size %lld",
                    (long long)n, type_name(t), (long long)be));
  return vec_dot_fn(t)(w, a, n);
}

}  // namespace squeeze
