// Picks the tiled kernels for this CPU. Each set matches the vec_dot kernels bit for bit, so
// which one runs changes speed only.
#include "quant/gemm.h"

#include <cstring>

#include "quant/kernels.h"

namespace squeeze {

#if defined(__x86_64__)
namespace quant {
#define SQZ_DECLARE_GEMM(ns)                                                                                 \
  namespace ns {                                                                                             \
  void gemm_f16(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t);  \
  void gemm_q4_0(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q5_0(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q8_0(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q4_k(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q6_k(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q4_0_exact(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q5_0_exact(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q8_0_exact(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q4_k_exact(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q6_k_exact(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t); \
  void gemm_q4_0_x4(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t);  \
  void gemm_q5_0_x4(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t);  \
  void gemm_q8_0_x4(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t);  \
  void gemm_q4_k_x4(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, int64_t, int64_t, float*, int64_t);  \
  }
SQZ_DECLARE_GEMM(gemm_avx2)
SQZ_DECLARE_GEMM(gemm_avx512)
#undef SQZ_DECLARE_GEMM
}  // namespace quant

namespace {


template <typename Set>
GemmFn pick(GGMLType t, Numerics numerics) {
  switch (t) {
    case GGMLType::F16: return Set::f16;
    // The 32-element formats: llama.cpp's lane order, or the scalar kernels' block order.
    case GGMLType::Q4_0: return numerics == Numerics::llamacpp ? Set::q4_0 : Set::q4_0_exact;
    case GGMLType::Q5_0: return numerics == Numerics::llamacpp ? Set::q5_0 : Set::q5_0_exact;
    case GGMLType::Q8_0: return numerics == Numerics::llamacpp ? Set::q8_0 : Set::q8_0_exact;
    // K-quants: llama.cpp's lane order, or the exact mode's sum-the-integers-first order.
    case GGMLType::Q4_K: return numerics == Numerics::llamacpp ? Set::q4_k : Set::q4_k_exact;
    case GGMLType::Q6_K: return numerics == Numerics::llamacpp ? Set::q6_k : Set::q6_k_exact;
    default: return nullptr;
  }
}

template <typename Set>
GemmFn pick_x4(GGMLType t) {
  switch (t) {
    case GGMLType::Q4_0: return Set::q4_0_x4;
    case GGMLType::Q5_0: return Set::q5_0_x4;
    case GGMLType::Q8_0: return Set::q8_0_x4;
    case GGMLType::Q4_K: return Set::q4_k_x4;
    default: return nullptr;
  }
}

#define SQZ_GEMM_SET(name, ns)                          \
  struct name {                                         \
    static constexpr GemmFn f16 = quant::ns::gemm_f16;   \
    static constexpr GemmFn q4_0 = quant::ns::gemm_q4_0; \
    static constexpr GemmFn q5_0 = quant::ns::gemm_q5_0; \
    static constexpr GemmFn q8_0 = quant::ns::gemm_q8_0; \
    static constexpr GemmFn q4_k = quant::ns::gemm_q4_k; \
    static constexpr GemmFn q6_k = quant::ns::gemm_q6_k; \
    static constexpr GemmFn q4_0_exact = quant::ns::gemm_q4_0_exact; \
    static constexpr GemmFn q5_0_exact = quant::ns::gemm_q5_0_exact; \
    static constexpr GemmFn q8_0_exact = quant::ns::gemm_q8_0_exact; \
    static constexpr GemmFn q4_k_exact = quant::ns::gemm_q4_k_exact; \
    static constexpr GemmFn q6_k_exact = quant::ns::gemm_q6_k_exact; \
    static constexpr GemmFn q4_0_x4 = quant::ns::gemm_q4_0_x4; \
    static constexpr GemmFn q5_0_x4 = quant::ns::gemm_q5_0_x4; \
    static constexpr GemmFn q8_0_x4 = quant::ns::gemm_q8_0_x4; \
    static constexpr GemmFn q4_k_x4 = quant::ns::gemm_q4_k_x4; \
  };
SQZ_GEMM_SET(Avx2Set, gemm_avx2)
SQZ_GEMM_SET(Avx512Set, gemm_avx512)
#undef SQZ_GEMM_SET

}  // namespace

GemmIsa gemm_isa() {
  static const GemmIsa isa = [] {
    if (!quant::avx2::supported()) return GemmIsa::none;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni"))
      return GemmIsa::avx512_vnni;
    return GemmIsa::avx2;
  }();
  return isa;
}

GemmFn gemm_fn(GGMLType t, Numerics numerics, GemmIsa isa) {
  if (int(isa) > int(gemm_isa())) return nullptr;
  switch (isa) {
    case GemmIsa::avx512_vnni: return pick<Avx512Set>(t, numerics);
    case GemmIsa::avx2: return pick<Avx2Set>(t, numerics);
    default: return nullptr;
  }
}

GemmFn gemm_x4_fn(GGMLType t, Numerics numerics, GemmIsa isa) {
  if (int(isa) > int(gemm_isa()) || numerics != Numerics::llamacpp) return nullptr;
  // Q8_0 gains from the x4 layout only with the AVX-512 row-pair decode kernel.
  if (t == GGMLType::Q8_0 && isa != GemmIsa::avx512_vnni) return nullptr;
  switch (isa) {
    case GemmIsa::avx512_vnni: return pick_x4<Avx512Set>(t);
    case GemmIsa::avx2: return pick_x4<Avx2Set>(t);
    default: return nullptr;
  }
}

#else  // no tiled kernels off x86: vec_dot per pair

GemmIsa gemm_isa() { return GemmIsa::none; }
GemmFn gemm_fn(GGMLType, Numerics, GemmIsa) { return nullptr; }
GemmFn gemm_x4_fn(GGMLType, Numerics, GemmIsa) { return nullptr; }

#endif

GemmFn gemm_fn(GGMLType t, Numerics numerics) { return gemm_fn(t, numerics, gemm_isa()); }
GemmFn gemm_x4_fn(GGMLType t, Numerics numerics) { return gemm_x4_fn(t, numerics, gemm_isa()); }

void repack_x4(const uint8_t* src, uint8_t* dst, int64_t n_rows, size_t row_bytes, size_t block_bytes) {
  const int64_t full = n_rows / 4 * 4;
  const size_t nb = row_bytes / block_bytes;
  for (int64_t r = 0; r < full; r += 4) {
    const uint8_t* g = src + size_t(r) * row_bytes;
    uint8_t* d = dst + size_t(r) * row_bytes;
    for (size_t b = 0; b < nb; ++b)
      for (size_t j = 0; j < 4; ++j)
        std::memcpy(d + (b * 4 + j) * block_bytes, g + j * row_bytes + b * block_bytes, block_bytes);
  }
  std::memcpy(dst + size_t(full) * row_bytes, src + size_t(full) * row_bytes, size_t(n_rows - full) * row_bytes);
}

void x4_row(const uint8_t* packed, int64_t n_rows, int64_t row, size_t row_bytes, size_t block_bytes, uint8_t* dst) {
  const int64_t full = n_rows / 4 * 4;
  if (row >= full) {
    std::memcpy(dst, packed + size_t(row) * row_bytes, row_bytes);
    return;
  }
  const uint8_t* g = packed + size_t(row / 4 * 4) * row_bytes;
  const size_t j = size_t(row % 4), nb = row_bytes / block_bytes;
  for (size_t b = 0; b < nb; ++b) std::memcpy(dst + b * block_bytes, g + (b * 4 + j) * block_bytes, block_bytes);
}

const char* gemm_isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::avx512_vnni: return "avx512-vnni";
    case GemmIsa::avx2: return "avx2";
    default: return "none";
  }
}

}  // namespace squeeze
