#pragma once
// The operations the forward pass needs, over activations that live in the backend's memory.
// The forward pass (model/forward.cpp) is written once against this interface; the CPU backend
// implements it with threads and SIMD kernels, a CUDA backend implements it with kernels.
#include <cstdint>

#include "format/tensor_ref.h"
#include "kv/kv_cache.h"
#include "util/device_memory.h"

namespace squeeze {

// Where each token of a ragged batch sits (host memory: a backend with memory of its own copies
// what it needs): its absolute position and its sequence's block table.
struct TokenPlacement {
  const int32_t* pos;             // [n_tokens]
  const int32_t* const* blocks;   // [n_tokens]: the block ids of the token's sequence
  int64_t n_tokens;
};

struct RopeParams {
  int32_t head_dim;
  float base;
  float freq_scale;          // linear scaling: 1 / factor
  const float* freq_factors; // llama3 divisors (head_dim / 2) or nullptr
  bool neox;                 // pairs (i, i + d/2) instead of (2i, 2i + 1)
};

struct AttentionParams {
  int32_t layer;
  int32_t n_head;
  int32_t n_head_kv;
  int32_t head_dim;
  float scale;           // multiplies q.k
  int32_t window;        // 0: full causal attention; w: keys with pos_q - pos_k < w
  // llama.cpp applies `scale` to Q before attention for this architecture (Gemma 3) rather than
  // to the scores. Mathematically the same; Numerics::llamacpp follows it to round the same way.
  bool scale_q = false;
  // Every query gets the same arithmetic whatever else is in the batch (how many tokens, which
  // sequences): what a serving engine needs so that a request's output does not depend on the
  // others. Numerics::llamacpp otherwise switches arithmetic with the batch size, as llama.cpp.
  bool batch_invariant = false;
};

enum class GluKind { silu, gelu_tanh };

class Backend {
 public:
  virtual ~Backend() = default;

  // The memory that activations and the KV cache must live in for this backend's operations.
  // Weights, norm weights, biases and the batch description (ids, positions, block tables) stay
  // in host memory; a backend with memory of its own copies them (weights once, the batch once
  // per begin_batch).
  virtual DeviceMemory& memory() = 0;
  // Called before the operations of each forward pass: host arrays seen by the previous batch
  // (token ids, positions, block tables, row lists) may have changed.
  virtual void begin_batch() {}
  // Called after the operations of each transformer layer: a backend that queues its work may
  // start what it has, so the device runs while the rest of the pass is being described.
  virtual void layer_end(int32_t /*layer*/) {}
  // Tokens per forward pass when a long prompt is split (SequenceRunner's default): where larger
  // products stop paying. llama.cpp's ubatch (512) on the CPU; a GPU fills its SMs with more.
  virtual int32_t preferred_batch_tokens() const { return 512; }

  // y[t][o] = sum_k W[o][k] * x[t][k] for n_tokens rows of x (W is ne = {k, o}, any weight type).
  virtual void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y) = 0;
  // out[t] = row ids[t] of an embedding table (any weight type), as floats.
  virtual void get_rows(const TensorRef& table, const int32_t* ids, int64_t n, float* out) = 0;
  // dst[i] = src[rows[i]] for n rows of width floats (rows in host memory).
  virtual void gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst) = 0;
  // y[r] = x[r] / rms(x[r]) * (w + w_offset), rows of n; y may alias x.
  virtual void rms_norm(const float* x, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
                        float* y) = 0;
  // The residual add fused with the norm after it: x[r] += delta[r], then y[r] = rms_norm(x[r]),
  // rows of n; y may alias delta (each row is read before it is written).
  virtual void add_rms_norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n,
                            float eps, float* y) = 0;
  // x += y over n floats.
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // x += bias, broadcast over rows of n.
  virtual void add_bias(float* x, const float* bias, int64_t rows, int64_t n) = 0;
  virtual void scale(float* x, float s, int64_t n) = 0;
  // Rotates each head of x ([n_tokens][n_heads * head_dim]) by its token's position.
  virtual void rope(float* x, int64_t n_heads, const TokenPlacement& tp, const RopeParams& rp) = 0;
  // out = act(gate) * up over n floats.
  virtual void glu(const float* gate, const float* up, float* out, int64_t n, GluKind kind) = 0;
  // c * tanh(x / c) over n floats.
  virtual void softcap(float* x, float c, int64_t n) = 0;

  // Stores the batch's K and V rows ([n_tokens][n_head_kv * head_dim]) at their positions.
  virtual void kv_write(KVCache& kv, int32_t layer, const float* k, const float* v, const TokenPlacement& tp) = 0;
  // The index of each row's largest value (the lowest index on ties; NaN never chosen; a row of
  // -inf / NaN only gives 0), written to host memory: greedy sampling without copying the rows
  // (the logits) off the device. x: rows of n floats in memory(). Returns false when the backend
  // has no such operation (the caller then reads the rows itself).
  virtual bool argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out_host) {
    (void)x, (void)rows, (void)n, (void)out_host;
    return false;
  }
  // Each row's k best values and their indices, in the sampler's order: larger value first, ties
  // to the lower index; -inf and NaN never taken; a row with fewer than k others pads with
  // (-inf, -1). Written to host memory ([rows][k] each): top-k sampling without copying the
  // rows off the device. Returns false when the backend has no such operation or k is beyond it
  // (the caller then reads the rows itself).
  virtual bool top_k_rows(const float* x, int64_t rows, int64_t n, int32_t k, float* values_host,
                          int32_t* ids_host) {
    (void)x, (void)rows, (void)n, (void)k, (void)values_host, (void)ids_host;
    return false;
  }
  // rope(q), rope(k), then kv_write(k, v): one call, so that a backend may do it in one pass.
  virtual void rope_kv_write(KVCache& kv, int32_t layer, float* q, int64_t n_head, float* k, int64_t n_head_kv,
                             const float* v, const TokenPlacement& tp, const RopeParams& rp) {
    rope(q, n_head, tp, rp);
    rope(k, n_head_kv, tp, rp);
    kv_write(kv, layer, k, v, tp);
  }
  // Causal (optionally windowed) attention of each token's query heads over its sequence's cached
  // keys 0..pos, computed tile by tile with an online softmax. q: [n_tokens][n_head * head_dim].
  virtual void attention(const KVCache& kv, const AttentionParams& ap, const float* q, const TokenPlacement& tp,
                         float* out) = 0;
};

}  // namespace squeeze
