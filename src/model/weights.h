#pragma once
// The model's weights bound by role. Matrices stay where the file mapping put them (any weight
// type); the small vectors (norm weights, biases) are converted to float32 once at load time.
#include <memory>
#include <vector>

#include "format/tensor_ref.h"
#include "model/model_file.h"

namespace squeeze {

struct LayerWeights {
  const float* attn_norm = nullptr;
  const TensorRef* wq = nullptr;
  const TensorRef* wk = nullptr;
  const TensorRef* wv = nullptr;
  const TensorRef* wo = nullptr;
  const float* bq = nullptr;  // biases: Qwen2 (nullptr when absent)
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* q_norm = nullptr;  // per-head RMSNorm weights (head_dim), Qwen3 and Gemma 3
  const float* k_norm = nullptr;
  const float* post_attn_norm = nullptr;  // Gemma 3
  const float* ffn_norm = nullptr;
  const TensorRef* ffn_gate = nullptr;
  const TensorRef* ffn_up = nullptr;
  const TensorRef* ffn_down = nullptr;
  const float* post_ffn_norm = nullptr;  // Gemma 3
};

struct ModelWeights {
  const TensorRef* tok_embd = nullptr;
  const float* output_norm = nullptr;
  const TensorRef* output = nullptr;  // tok_embd when the embeddings are tied
  std::vector<LayerWeights> layers;
  std::vector<std::unique_ptr<std::vector<float>>> owned;  // the converted vectors
};

// Finds every tensor the architecture needs, checks its shape and type, and fills in the
// hyperparameters that only the tensors tell (vocabulary size, tied embeddings, llama3 RoPE
// factors). Throws Error naming a missing or malformed tensor.
ModelWeights bind_weights(ModelFile& file);

}  // namespace squeeze
