#pragma once
// Runs one sequence through a model over its own paged KV cache: the building block of the
// single-user commands (run, perplexity, logits). Long inputs are evaluated in chunks of at most
// max_batch tokens; every chunk is one Batch through Model::forward.
#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "kv/block_table.h"
#include "kv/kv_cache.h"
#include "model/model.h"

namespace squeeze {

class SequenceRunner {
 public:
  // n_ctx: the most positions the sequence may reach (the KV pool is sized for it).
  // max_batch: tokens per forward pass (0: the backend's preferred_batch_tokens()).
  SequenceRunner(Model& model, Backend& backend, int32_t n_ctx, GGMLType kv_type, int32_t max_batch = 0);
  ~SequenceRunner();

  // Appends tokens at the next positions and returns the logits of tokens[logits_from..n-1]
  // ([n - logits_from][n_vocab]); logits_from = n - 1 gives just the last token's. Throws Error
  // past n_ctx or for an id outside the vocabulary.
  // With best (logits_from = n - 1 only), the last token's best logits come back there instead
  // when the backend can give them (Model::forward); logits is then left empty.
  void eval(std::span<const int32_t> tokens, int64_t logits_from, std::vector<float>& logits,
            BestLogits* best = nullptr);

  // Forgets the sequence (frees its KV blocks).
  void reset();

  int32_t n_past() const { return n_past_; }
  int32_t n_ctx() const { return n_ctx_; }
  int32_t max_batch() const { return max_batch_; }
  const KVCache& kv() const { return kv_; }

 private:
  Model& model_;
  Backend& backend_;
  int32_t n_ctx_, max_batch_;
  KVCache kv_;
  BlockTable table_;
  Batch batch_;
  std::vector<float> chunk_logits_;
  int32_t n_past_ = 0;
};

}  // namespace squeeze
