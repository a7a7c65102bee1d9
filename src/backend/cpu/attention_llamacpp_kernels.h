#pragma once
// Inner loops of attention_llamacpp.cpp. Two sets with the same results bit for bit: AVX2/FMA/F16C
// intrinsics, taken when the CPU has those features (checked at run time, so the build stays
// baseline x86-64), and portable scalar code. std::fma rounds exactly like vfmadd. F16C converts
// like util/fp16.h except that it quiets signaling NaNs, and none reach these kernels: the cache
// and the F16 accumulator only ever hold results of arithmetic, which are never signaling.
#include <cstdint>

namespace squeeze::attn_llamacpp {

constexpr int kTileKV = 64;   // llama.cpp's GGML_FA_TILE_KV: keys per tile in the tiled path
constexpr int kMaxBatch = 4;  // queries the tiled kernels handle in one pass over a tile

struct Kernels {
  // --- One-query path ---
  // ggml_vec_dot_f16 / ggml_vec_dot_f32 of a cached K row (F16 or F32) with q.
  float (*dot_f16)(const uint16_t* k, const float* q, int32_t n);
  float (*dot_f32)(const float* k, const float* q, int32_t n);
  // x = f16(x) in place (llama.cpp converts Q to the cache type).
  void (*round_f16)(float* x, int32_t n);
  // acc = f16(acc * s), the F16 accumulator rescale.
  void (*scale_f16)(uint16_t* acc, float s, int32_t n);
  // ggml_vec_mad_f16 / _f32: acc += v * p, fused over runs of 32, unfused for the tail.
  void (*mad_f16)(uint16_t* acc, const uint16_t* v, float p, int32_t n);
  void (*mad_f32)(float* acc, const float* v, float p, int32_t n);

  // --- Tiled path ---
  // F16 row -> F32.
  void (*f16_to_f32_row)(const uint16_t* src, float* dst, int32_t n);
  // Transposed K tile: kt[i * kTileKV + j] = rows[j][i]; a null row gives zeros. Rows are F16
  // when f16, else F32.
  void (*k_tile)(const void* const* rows, bool f16, int32_t d, float* kt);
  // s[b * kTileKV + j] = sequential FMA chain over i of kt[i][j] * q[b][i], for b < nq and at
  // least every j in [j0, j1] (a few neighbours may be computed too).
  void (*scores)(const float* const* q, int nq, const float* kt, int32_t d, int32_t j0, int32_t j1, float* s);
  // s[j] = ggml_v_expf(s[j] - m) for the whole tile; returns the sum in ggml's order (8 lanes
  // pairwise, each group of 8 added to a double).
  double (*exp_tile)(float* s, float m);
  // acc[b][i] = fma(v[j][i], p[b][j], acc[b][i]) for j = j0..j1 in order, b < nq.
  void (*accumulate_v)(float* const* acc, const float* const* p, int nq, const float* const* v, int32_t j0,
                       int32_t j1, int32_t d);
};

// The fastest set this CPU runs (decided once), or the portable one while forced (tests).
const Kernels& kernels();
void force_portable_kernels(bool on);

}  // namespace squeeze::attn_llamacpp
