#pragma once
// A loaded model: its file, hyperparameters and bound weights, and the forward pass over a Batch.
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "model/model_file.h"
#include "model/weights.h"
#include "util/device_memory.h"

namespace squeeze {

// What the sampler needs of each logits row when it need not read the whole row: its k best
// entries (Backend::top_k_rows), or with argmax_only its argmax alone (Backend::argmax_rows).
struct BestLogits {
  int32_t k = 0;
  bool argmax_only = false;     // k == 1 and only the index wanted (every row plain greedy)
  std::vector<float> values;    // [rows][k], not filled when argmax_only
  std::vector<int32_t> ids;     // [rows][k]; empty when the backend could not (logits filled)
};

class Model {
 public:
  // Opens path (GGUF file or Hugging Face folder) and binds the weights; throws Error.
  static std::unique_ptr<Model> load(const std::string& path);

  const HParams& hparams() const { return file_->hparams(); }
  const ModelFile& file() const { return *file_; }
  const ModelWeights& weights() const { return weights_; }

  // Geometry of a KV cache for this model holding n_blocks blocks.
  KVGeometry kv_geometry(int32_t n_blocks, GGMLType type, int32_t block_size = 16) const;

  // Runs the batch on be: writes its tokens' K/V into kv (their block tables must cover their
  // positions; kv lives in be.memory()) and returns logits [batch.logit_rows.size()][n_vocab]
  // in logits (host memory).
  // With best (the sampler needs only each row's best logits) and a backend that can, the logits
  // stay on the device and best receives them instead; otherwise best's arrays are left empty and
  // logits are filled.
  void forward(Backend& be, const Batch& batch, KVCache& kv, std::vector<float>& logits,
               BestLogits* best = nullptr);

 private:
  std::unique_ptr<ModelFile> file_;
  ModelWeights weights_;
  // Activation buffers in the backend's memory, grown to the largest batch seen and reused.
  DeviceBuffer<float> x_, xn_, q_, k_, v_, attn_, ffa_, ffb_, sel_, logits_;
};

}  // namespace squeeze
