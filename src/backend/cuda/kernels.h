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

// Device-only layouts of Q8_0 and Q4_0 (the backend repacks such weights on upload when a row's
// length is a multiple of 256): the blocks of each run of 8 are stored as their 8 quant arrays
// (16-byte aligned, for 16-byte loads) followed by their 8 f16 scales. Same row size as the
// original type. They are tagged with the two activation-only types (never a weight's type, and
// not in SQZ_CUDA_TYPES, so no tensor reaches a kernel with that tag): a value outside the enum
// breaks nvcc's host stubs of the kernel templates.
inline constexpr GGMLType kQ8_0R = GGMLType::Q8_1;
inline constexpr GGMLType kQ4_0R = GGMLType::Q8_K;
// Q6_K with rows of a multiple of 2048 elements: runs of 8 super-blocks as [8 x 208 bytes of
// ql, qh and scales][8 f16 d] (kernels_matvec_q8.cu), tagged with a type no weight has.
inline constexpr GGMLType kQ6_KR = GGMLType::I8;
// The layout a weight of type t with rows of k elements gets on the device.
GGMLType device_type(GGMLType t, int64_t k);
// dst = the device layout of bytes of type t (src in the original layout), both device memory.
void repack(GGMLType t, const uint8_t* src, uint8_t* dst, size_t bytes, cudaStream_t s);

// What a product may use beside its operands. handle: a cublasHandle_t for prefill on tensor
// cores (16-bit weights and activations, fp32 accumulation), or null; scratch: device memory of
// matmul_scratch() bytes.
struct TensorCores {
  void* handle = nullptr;
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
};
bool have_tensor_cores();
// Bytes of scratch the tensor-core path needs for this product; 0 when it does not take it.
size_t matmul_tc_scratch(GGMLType type, int64_t k, int64_t n_out, int64_t n_tokens);

// Several weights of one type and row length applied to the same activations (Q, K and V; gate
// and up): y[i][t][o] = sum_k w[i][o][k] x[t][k].
struct MatvecTargets {
  static constexpr int kMax = 3;
  const uint8_t* w[kMax] = {};
  float* y[kMax] = {};
  int64_t n_out[kMax] = {};
  unsigned first_block[kMax + 1] = {};  // set by the launcher
  int n = 0;
  // 1 (SiLU) or 2 (GELU, tanh form): the two weights are gate and up and y[0] = act(gate) * up
  // (decode products where matmul_glu_supported()).
  int glu = 0;
  // With glu, where matmul_glu_quantizes(): y[0] also written as 8-bit activations (quantize_q8x's
  // layout, [token][q8x_bytes(n_out)]) for the down product.
  uint8_t* yq = nullptr;
};

// The targets' grid: blocks of rows_per_block rows of each weight in turn (with glu, the rows of
// gate and up together, counted once); sets tg.first_block and returns the number of blocks.
inline unsigned assign_blocks(MatvecTargets& tg, int64_t rows_per_block) {
  unsigned total = 0;
  for (int i = 0; i < (tg.glu ? 1 : tg.n); ++i) {
    tg.first_block[i] = total;
    total += unsigned((tg.n_out[i] + rows_per_block - 1) / rows_per_block);
  }
  return total;
}
// The targets as seen from token t0 on (outputs are [token][n_out]).
inline MatvecTargets from_token(MatvecTargets tg, int64_t t0) {
  for (int i = 0; i < tg.n; ++i) tg.y[i] += t0 * tg.n_out[i];
  return tg;
}
#ifdef __CUDACC__
// The weight this block serves and the block's index among that weight's blocks (with glu, the
// gate: target 0). Selected without indexing the parameter arrays, which would copy them to
// local memory.
struct BlockTarget {
  const uint8_t* w;
  float* y;
  int64_t n_out;
  unsigned block;
};
template <bool kGlu>
__device__ __forceinline__ BlockTarget block_target(const MatvecTargets& tg) {
  const bool in1 = !kGlu && tg.n > 1 && blockIdx.x >= tg.first_block[1];
  const bool in2 = !kGlu && tg.n > 2 && blockIdx.x >= tg.first_block[2];
  return BlockTarget{in2 ? tg.w[2] : in1 ? tg.w[1] : tg.w[0], in2 ? tg.y[2] : in1 ? tg.y[1] : tg.y[0],
                     in2 ? tg.n_out[2] : in1 ? tg.n_out[1] : tg.n_out[0],
                     blockIdx.x - (in2 ? tg.first_block[2] : in1 ? tg.first_block[1] : 0u)};
}
#endif

// kernels_matmul.cu: y[t][o] = sum_k W[o][k] x[t][k]; W rows of row_bytes bytes, k % 8 == 0.
// Decode (up to 8 tokens) of the types of matvec_q8_supported() quantizes the activations to 8
// bits first (tc->scratch holds them); with a cuBLAS handle in tc (and matmul_scratch() > 0),
// prefill runs on tensor cores.
void matmul(GGMLType type, const uint8_t* w, size_t row_bytes, int64_t k, int64_t n_out, const float* x,
            int64_t n_tokens, float* y, cudaStream_t s, const TensorCores* tc = nullptr);
// The integer matvec's 8-bit activations are at tc->scratch + xq_offset; x_quantized: they are
// there already (written by the op before, e.g. rms_norm with xq).
void matmul(GGMLType type, const MatvecTargets& targets, size_t row_bytes, int64_t k, const float* x, int64_t n_tokens,
            cudaStream_t s, const TensorCores* tc = nullptr, bool x_quantized = false, size_t xq_offset = 0);
// Scratch regions start on 256-byte boundaries.
inline size_t align256(size_t b) { return (b + 255) / 256 * 256; }
// Bytes of scratch a product needs (8-bit activations, or 16-bit ones and dequantized weight
// rows for the tensor cores); 0: none.
size_t matmul_scratch(GGMLType type, int64_t k, int64_t n_out, int64_t n_tokens, bool tensor_cores);
// Whether decode products of this type can apply a GLU in their epilogue (MatvecTargets::glu).
bool matmul_glu_supported(GGMLType type, int64_t k, int64_t n_tokens);
// Whether such a GLU product can also write its output as the next product's 8-bit activations
// (MatvecTargets::yq; the down product then skips its quantize pass).
bool matmul_glu_quantizes(GGMLType type, int64_t k, int64_t n_out, int64_t n_tokens);
// Whether a product of n_tokens rounds its activations to 8 bits (quantize_q8x) first.
bool matmul_quantizes_activations(GGMLType type, int64_t k, int64_t n_tokens);

// kernels_matvec_q8.cu: activations quantized to int8 blocks of 32 and integer dot products.
__host__ __device__ inline size_t q8x_bytes(int64_t k) { return size_t(k) + size_t(k / 32) * 8; }
#ifdef __CUDACC__
// 32-element block b of a row into the row's quantized form (row: q8x_bytes(k) bytes): d =
// max|x| / 127, q = round(x / d). The block is held by 32 / N consecutive lanes of the calling
// warp, N consecutive elements each (part: the lane's place among them); every lane of those
// groups takes part in the shuffles, and only those with store write.
template <int N>
__device__ __forceinline__ void quantize_block(const float (&v)[N], int part, uint8_t* row, int64_t k, int64_t b,
                                               bool store = true) {
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) amax = fmaxf(amax, fabsf(v[i]));
  for (int o = 1; o < 32 / N; o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float d = amax / 127.0f;
  int q[N], sum = 0;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    q[i] = amax == 0.0f ? 0 : __float2int_rn(v[i] / d);
    sum += q[i];
  }
  for (int o = 1; o < 32 / N; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (!store) return;
  if constexpr (N == 4) {  // one 4-byte store
    *reinterpret_cast<char4*>(row + 32 * b + 4 * part) = make_char4(int8_t(q[0]), int8_t(q[1]), int8_t(q[2]), int8_t(q[3]));
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) reinterpret_cast<int8_t*>(row)[32 * b + N * part + i] = int8_t(q[i]);
  }
  if (part == 0) reinterpret_cast<float2*>(row + k)[b] = make_float2(d, d * float(sum));
}
// One element per lane (the whole warp holds the block).
__device__ __forceinline__ void quantize_block32(float v, int lane, uint8_t* row, int64_t k, int64_t b) {
  const float one[1] = {v};
  quantize_block<1>(one, lane, row, k, b);
}
#endif
bool matvec_q8_supported(GGMLType t);
// Whether the integer matvec with a GLU of this shape can also write its output 8-bit (tg.yq).
bool matvec_q8_glu_quantizes(GGMLType t, int64_t k, int64_t n_out);
void quantize_q8x(const float* x, int64_t k, int64_t n_tokens, uint8_t* out, cudaStream_t s);
void matvec_q8(GGMLType type, const MatvecTargets& targets, size_t row_bytes, int64_t k, const uint8_t* xq,
               int64_t n_tokens, cudaStream_t s);

// kernels_elementwise.cu
void get_rows(GGMLType type, const uint8_t* table, size_t row_bytes, int64_t dim, const int32_t* ids, int64_t n,
              float* out, cudaStream_t s);
void gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst, cudaStream_t s);
// out[r] = the argmax of row r of x (rows of n; Backend::argmax_rows' rules), device memory.
void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out, cudaStream_t s);
// The k best entries of each row of x (rows of n; Backend::top_k_rows' order and padding) into
// values / ids [rows][k], device memory. 1 <= k <= kMaxTopK, rows <= 65535; scratch: device
// memory of top_k_scratch_bytes(rows, n, k).
constexpr int32_t kMaxTopK = 1024;
size_t top_k_scratch_bytes(int64_t rows, int64_t n, int32_t k);
void top_k_rows(const float* x, int64_t rows, int64_t n, int32_t k, float* values, int32_t* ids, void* scratch,
                cudaStream_t s);
// y = rms_norm(x) * (w + w_offset) per row; with delta, x += delta first (x written back).
// With xq, y is also written quantized for the integer matvec (quantize_q8x's layout).
void rms_norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
              float* y, cudaStream_t s, uint8_t* xq = nullptr);
void add(float* x, const float* y, int64_t n, cudaStream_t s);
void add_bias(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t s);
void scale(float* x, float c, int64_t n, cudaStream_t s);
void softcap(float* x, float c, int64_t n, cudaStream_t s);
void glu(const float* gate, const float* up, float* out, int64_t n, bool silu, cudaStream_t s);
void rope(float* x, int64_t n_heads, const int32_t* pos, int64_t n_tokens, int32_t head_dim, float base,
          float freq_scale, const float* freq_factors, bool neox, cudaStream_t s);
void kv_write(const DeviceKV& kv, const float* k, const float* v, const DevicePlacement& tp, cudaStream_t s);
// rope(q), rope(k), kv_write(k, v) in one kernel (head_dim and KV heads from kv).
void rope_kv_write(float* q, int64_t n_head, float* k, const float* v, const DeviceKV& kv, const DevicePlacement& tp,
                   float base, float freq_scale, const float* freq_factors, bool neox, cudaStream_t s);

// kernels_attention.cu: causal attention over the paged KV (window 0 = unlimited), online softmax.
// attention_splits: into how many runs to split each query's keys (max_keys: the most keys a
// query of the batch sees); with n_split > 1, partial holds
// n_tokens * n_head * n_split * (head_dim + 2) floats.
int32_t attention_splits(int64_t n_tokens, int32_t n_head, int32_t max_keys);
#ifdef __CUDACC__
// The keys a block of a split attention launch takes: the token's keys are first..pos (first from
// the window), cut into tiles of `tile` keys; with gridDim.z = S > 1 block z takes the z-th of S
// runs of whole tiles, lo..hi (empty when lo > hi).
__device__ __forceinline__ void split_keys(int32_t pos, int32_t window, int32_t tile, int32_t& lo, int32_t& hi) {
  const int32_t first = window > 0 ? max(0, pos - window + 1) : 0;
  const int32_t n_tiles = (pos - first) / tile + 1, per = (n_tiles + int32_t(gridDim.z) - 1) / int32_t(gridDim.z);
  lo = first + int32_t(blockIdx.z) * per * tile;
  hi = min(pos, lo + per * tile - 1);
}
#endif

// list: the batch tokens to take (n_list of them), or null for all.
void attention(const DeviceKV& kv, int32_t n_head, float scale, int32_t window, const float* q,
               const DevicePlacement& tp, const int32_t* list, int64_t n_list, float* out, int32_t n_split,
               float* partial, cudaStream_t s);

// Combines n_split partial results per (token, head) (the layout attention() writes).
void attention_merge(const float* partial, const int32_t* list, int64_t n_tokens, int32_t n_head, int32_t head_dim,
                     int32_t n_split, float* out, cudaStream_t s);

// kernels_decode_attention.cu: the same attention for decode tokens, one block per (KV head,
// token, split) serving the KV head's query heads together (F16 cache, head_dim 64/128/256,
// 1/2/4/8 query heads per KV head). partial as for attention().
// With 1 < n_split, decode_attention_folds(): the last split block of each (token, KV head)
// merges the splits itself; arrivals: kDecodeArrivals zeroed int32 counters of device memory (left
// zeroed), for that.
// With xq, out is also written as the integer matvec's 8-bit activations (rows of
// q8x_bytes(n_head * head_dim), by batch token).
inline constexpr int64_t kDecodeArrivals = 1024;
bool decode_attention_supported(const DeviceKV& kv, int32_t n_head);
int32_t decode_attention_splits(int64_t n_tokens, int32_t n_kv_heads, int32_t max_keys);
// Whether a launch of n_split splits merges them in its last block (else a merge kernel follows,
// and xq must be null).
bool decode_attention_folds(int32_t n_split);
void decode_attention(const DeviceKV& kv, int32_t n_head, float scale, int32_t window, const float* q,
                      const DevicePlacement& tp, const int32_t* list, int64_t n_list, float* out, int32_t n_split,
                      float* partial, int32_t* arrivals, uint8_t* xq, cudaStream_t s);

// kernels_flash_attention.cu: prefill attention on tensor cores (F16 cache, head_dim 64 or 128),
// same semantics. tiles: n_tiles pairs (first batch token, count <= flash_tile_rows()) of
// consecutive positions of one sequence.
bool flash_attention_supported(const DeviceKV& kv);
int32_t flash_tile_rows();
void flash_attention(const DeviceKV& kv, int32_t n_head, float scale, int32_t window, const float* q,
                     const DevicePlacement& tp, const int32_t* tiles, int32_t n_tiles, float* out, cudaStream_t s);

}  // namespace squeeze::cuda
