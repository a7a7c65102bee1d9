#pragma once
// Host-side launchers of the CUDA kernels (kernels_*.cu). Every pointer is device memory; every
// launcher enqueues on stream s and checks the launch.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "quant/ggml_type.h"

namespace squeeze::cuda {

// The paged-KV placement of a batch on the device: token t sits at pos[t], and its sequence's
// block ids are ids[offs[t]], ids[offs[t] + 1], ...
struct DevicePlacement {
  const int32_t* pos;
  const int32_t* offs;
  const int32_t* ids;
  int64_t n_tokens;
};

// The paged KV storage of one layer: [block][kv_head][slot][head_dim] of F16 or F32.
struct DeviceKV {
  uint8_t* k;
  uint8_t* v;
  int32_t n_kv_heads, head_dim, block_size;
  bool f16;
};

bool type_supported(GGMLType t);

// kernels_matmul.cu: y[t][o] = sum_k W[o][k] x[t][k]; W rows of row_bytes bytes, k % 8 == 0.
void matmul(GGMLType type, const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x,
            int64_t n_tokens, float* y, cudaStream_t s);

// kernels_elementwise.cu
void get_rows(GGMLType type, const uint8_t* table, size_t row_bytes, int64_t dim, const int32_t* ids, int64_t n,
              float* out, cudaStream_t s);
void gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst, cudaStream_t s);
// y = rms_norm(x) * (w + w_offset) per row; with delta, x += delta first (x written back).
void rms_norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
              float* y, cudaStream_t s);
void add(float* x, const float* y, int64_t n, cudaStream_t s);
void add_bias(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t s);
void scale(float* x, float c, int64_t n, cudaStream_t s);
void softcap(float* x, float c, int64_t n, cudaStream_t s);
void glu(const float* gate, const float* up, float* out, int64_t n, bool silu, cudaStream_t s);
void rope(float* x, int64_t n_heads, const int32_t* pos, int64_t n_tokens, int32_t head_dim, float base,
          float freq_scale, const float* freq_factors, bool neox, cudaStream_t s);
void kv_write(const DeviceKV& kv, const float* k, const float* v, const DevicePlacement& tp, cudaStream_t s);

// kernels_attention.cu: causal attention over the paged KV (window 0 = unlimited), online softmax.
// attention_splits: into how many runs to split each query's keys (max_keys: the most keys a
// query of the batch sees); with n_split > 1, partial holds
// n_tokens * n_head * n_split * (head_dim + 2) floats.
int32_t attention_splits(int64_t n_tokens, int32_t n_head, int32_t max_keys);
void attention(const DeviceKV& kv, int32_t n_head, float scale, int32_t window, const float* q,
               const DevicePlacement& tp, float* out, int32_t n_split, float* partial, cudaStream_t s);

}  // namespace squeeze::cuda
