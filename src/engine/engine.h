#pragma once
// The serving loop: requests become sequences, the scheduler picks each step's work, one
// Model::forward runs the ragged batch of every scheduled sequence, and each sequence whose
// pending tokens are all in the cache samples its next token. Single-threaded: callers (the
// server's engine thread, tests, tools) call add() and step() and read the sequences back.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"
#include "kv/kv_cache.h"
#include "kv/prefix_cache.h"
#include "kv/swap_space.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace squeeze {

struct EngineConfig {
  int32_t n_blocks = 0;            // KV blocks in the pool
  int32_t block_size = 16;
  GGMLType kv_type = GGMLType::F16;
  int32_t max_step_tokens = 512;   // token budget of one step (chunked prefill)
  int32_t max_seqs = 64;           // sequences running at once
  int32_t n_ctx = 4096;            // the most positions one sequence may reach
  // Host memory for the KV blocks of preempted sequences (kv/swap_space.h); 0: a preempted
  // sequence drops its KV and recomputes it.
  size_t swap_bytes = 0;
};

class Engine {
 public:
  Engine(Model& model, Backend& backend, const Tokenizer* tokenizer, const EngineConfig& cfg);

  // Queues a sequence; returns its id. Throws Error when the prompt is empty, has ids outside
  // the vocabulary, or prompt + max_new_tokens exceeds the context or the whole KV pool.
  // n_logprobs >= 0 records each generated token's log-probability and that many alternatives
  // (Sequence::logprobs; 0..kMaxTopLogprobs); -1, the default, costs nothing.
  int64_t add(std::vector<int32_t> prompt, const SamplingParams& sp, int32_t max_new_tokens, bool ignore_eos = false,
              int32_t n_logprobs = -1);
  // n parallel samples of one prompt (ids in sample order). The prompt is computed once: the
  // other samples fork from the first when its prompt is done and share its KV blocks, copying a
  // block only when they write into it. Sample i draws with seed sp.seed + i when a seed is set.
  std::vector<int64_t> add_samples(std::vector<int32_t> prompt, const SamplingParams& sp, int32_t max_new_tokens,
                                   int32_t n, bool ignore_eos = false, int32_t n_logprobs = -1);
  // Cancels a sequence: its blocks are freed at once.
  void cancel(int64_t id);
  // One scheduling step and forward pass. Returns false when there was nothing to do.
  bool step();
  bool idle() const { return scheduler_.n_waiting() == 0 && scheduler_.n_running() == 0; }

  // A sequence (finished ones stay until release()).
  const Sequence& sequence(int64_t id) const { return *seqs_.at(id); }
  void release(int64_t id);

  // KV slots held by running sequences (each shared block once) and how many of them hold a
  // token: allocated minus filled is the memory paging wastes (at most a block per sequence).
  struct KvUsage {
    int64_t slots_allocated = 0, slots_filled = 0;
  };
  KvUsage kv_usage() const;

  const PrefixCache& prefix_cache() const { return cache_; }
  const Scheduler& scheduler() const { return scheduler_; }
  const KVCache& kv() const { return kv_; }
  const SwapSpace* swap_space() const { return swap_.get(); }  // null without one

 private:
  void finish(Sequence& s, FinishReason why);
  void cache_full_blocks(Sequence& s);
  void sample_next(Sequence& s, std::span<float> logits);
  // Appends a sampled token and finishes the sequence at a stop token or its length limit.
  void accept_token(Sequence& s, int32_t tok);
  void fork_children(Sequence& parent, std::span<const float> logits);

  Model& model_;
  Backend& backend_;
  const Tokenizer* tokenizer_;
  EngineConfig cfg_;
  KVCache kv_;
  PrefixCache cache_;
  std::unique_ptr<SwapSpace> swap_;
  Scheduler scheduler_;
  std::unordered_map<int64_t, std::unique_ptr<Sequence>> seqs_;
  mutable std::vector<int32_t> fill_scratch_;  // kv_usage(): per block, slots written
  int64_t next_id_ = 1;
  Batch batch_;
  std::vector<float> logits_, row_copy_;
  BestLogits best_;  // the rows' best logits when the device picked them (Sampler::best_needed)
  std::vector<float> sample_scratch_;  // the sampler's copy of a row whose raw logprobs are kept
};

}  // namespace squeeze
