#pragma once
// One generation stream inside the engine: its tokens (prompt, then generated), how many of them
// have K/V in the cache, its block table and its sampler. A request with n > 1 samples has n
// sequences.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/logprobs.h"
#include "engine/sampler.h"
#include "kv/block_table.h"
#include "kv/prefix_cache.h"

namespace squeeze {

// awaiting_fork: a parallel sample (n > 1) that starts as a copy of its parent once the parent's
// prompt is computed.
enum class SeqState { waiting, running, finished, awaiting_fork };
enum class FinishReason { none, stop, length, cancelled };

struct Sequence {
  Sequence(int64_t id, std::vector<int32_t> prompt, const SamplingParams& sp, int32_t max_new_tokens)
      : id(id), tokens(std::move(prompt)), n_prompt(int32_t(tokens.size())), max_new_tokens(max_new_tokens),
        sampler(sp) {}

  int64_t id;
  std::vector<int32_t> tokens;
  int32_t n_prompt;
  int32_t max_new_tokens;
  Sampler sampler;
  bool ignore_eos = false;
  // Log-probabilities (engine/logprobs.h): -1 records none; k >= 0 records, for every generated
  // token, its log-probability and the k most likely alternatives (logprobs[i] belongs to
  // generated token i).
  int32_t n_logprobs = -1;
  std::vector<StepLogprobs> logprobs;

  SeqState state = SeqState::waiting;
  FinishReason finish = FinishReason::none;
  int32_t n_cached = 0;         // leading tokens whose K/V is in table
  BlockTable table;
  int32_t n_preempted = 0;      // times it was pushed out to make room
  // While preempted with a swap space: the slots holding the K/V of its n_cached tokens, one per
  // block, in order (n_cached is kept); empty otherwise (a preempted sequence recomputes).
  std::vector<int32_t> swap_slots;
  // Chain hash of the full blocks already given to the prefix cache, and how many there are.
  uint64_t chain_hash = PrefixCache::kRootHash;
  int32_t n_hashed_blocks = 0;

  // Parallel samples of this sequence's prompt, forked from it once the prompt is computed.
  std::vector<Sequence*> fork_children;

  int32_t n_generated() const { return int32_t(tokens.size()) - n_prompt; }
  // Tokens still to run through the model before the next token can be sampled.
  int32_t n_pending() const { return int32_t(tokens.size()) - n_cached; }
};

}  // namespace squeeze
