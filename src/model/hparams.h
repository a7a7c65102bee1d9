#pragma once
// Hyperparameters of a decoder-only transformer, and the flags that select each architecture's
// variant of the one forward pass (see forward.cpp). Filled from GGUF metadata or from a Hugging
// Face config.json; both paths end in the same struct so the forward pass never asks where a
// model came from.
#include <cstdint>
#include <string>
#include <vector>

namespace squeeze {

class GGUFFile;

enum class Arch { llama, qwen2, qwen3, gemma3 };
const char* arch_name(Arch a);

enum class Activation { silu, gelu_tanh };

struct HParams {
  Arch arch = Arch::llama;
  std::string name;  // general.name or the HF model type

  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_ff = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_ctx_train = 0;
  float rms_eps = 1e-5f;

  // RoPE. Global layers use rope_base with rope_freq_scale (linear scaling: 1 / factor) and the
  // optional per-frequency divisors rope_freq_factors (llama3 scaling); sliding-window layers of
  // Gemma 3 use rope_base_swa unscaled.
  float rope_base = 10000.0f;
  float rope_base_swa = 10000.0f;
  float rope_freq_scale = 1.0f;
  std::vector<float> rope_freq_factors;  // head_dim / 2 entries, or empty
  bool rope_neox = true;                 // pairs (i, i + d/2); false: pairs (2i, 2i + 1)

  // Attention.
  float attn_scale = 0.0f;              // multiplies q.k; 1/sqrt(head_dim) unless the model says
  int32_t sliding_window = 0;           // 0: none
  std::vector<uint8_t> layer_uses_swa;  // per layer: 1 if the window applies

  // Variant flags.
  bool qkv_bias = false;      // Qwen2
  bool qk_norm = false;       // Qwen3, Gemma 3: RMSNorm per head on q and k before RoPE
  bool post_norms = false;    // Gemma 3: norms on the attention and FFN outputs
  bool embed_scale = false;   // Gemma 3: embeddings times sqrt(n_embd)
  Activation act = Activation::silu;
  float norm_weight_offset = 0.0f;  // 1 for Hugging Face Gemma weights (stored as w, used as 1 + w)
  float final_logit_softcap = 0.0f; // 0: none
  bool tied_embeddings = false;

  bool is_swa(int32_t layer) const { return sliding_window > 0 && layer_uses_swa[size_t(layer)]; }

  // Checks internal consistency (positive sizes, heads dividing, ...); throws Error.
  void validate() const;
};

// From GGUF metadata ({arch}.* keys). Throws Error naming a missing key or unknown architecture.
HParams hparams_from_gguf(const GGUFFile& f);
// From a Hugging Face config.json text. Throws Error naming a missing field or unknown model type.
HParams hparams_from_hf_config(const std::string& config_json);

// Gemma 3's layer pattern: every period-th layer (1-based) is global, the rest slide.
std::vector<uint8_t> swa_pattern(int32_t n_layer, int32_t period);

// llama3 RoPE scaling: the per-frequency divisors llama.cpp stores as rope_freqs.weight.
std::vector<float> llama3_rope_factors(int32_t head_dim, float base, float factor, float low_freq_factor,
                                       float high_freq_factor, float original_ctx);

}  // namespace squeeze
