#pragma once
// Iteration-level (continuous) batching. Every step the scheduler decides which sequences run and
// how many of their pending tokens each contributes, under a per-step token budget:
//   1. running sequences first, in arrival order (decode steps cost one token; a prompt being
//      prefilled in chunks continues with its next chunk);
//   2. then waiting sequences in arrival order, as long as budget and KV blocks last; a new
//      sequence first takes the longest matching prefix from the prefix cache.
// When a running sequence needs a block and none is left, the most recently admitted running
// sequence is preempted: it goes back to the front of the queue and its blocks are released (full
// ones stay in the prefix cache). With a swap space that has room, its K/V is copied there first
// and copied back into fresh blocks when it runs again; otherwise its tokens are recomputed.
// Requests never fail because others came.
#include <cstdint>
#include <deque>
#include <vector>

#include "engine/sequence.h"
#include "kv/kv_cache.h"
#include "kv/prefix_cache.h"
#include "kv/swap_space.h"

namespace squeeze {

struct ScheduledChunk {
  Sequence* seq;
  int32_t n_tokens;  // tokens [seq->n_cached, seq->n_cached + n_tokens) run this step
};

class Scheduler {
 public:
  // max_step_tokens: the token budget of one step; max_seqs: the most sequences running at once.
  Scheduler(PrefixCache& cache, KVCache& kv, int32_t max_step_tokens, int32_t max_seqs, SwapSpace* swap = nullptr);

  void add(Sequence* seq);  // to the back of the waiting queue
  // A sequence forked from a running one (it holds blocks already): straight to running.
  void add_running(Sequence* seq);
  // The work of the next step, empty when there is none. Allocates the blocks it needs.
  std::vector<ScheduledChunk> schedule();
  // Takes a finished or cancelled sequence out (waiting or running) and releases its blocks.
  void remove(Sequence* seq);

  size_t n_waiting() const { return waiting_.size(); }
  size_t n_running() const { return running_.size(); }
  uint64_t n_preemptions() const { return n_preemptions_; }
  uint64_t n_swapped_out() const { return n_swapped_out_; }  // preemptions that kept the K/V
  uint64_t n_swapped_in() const { return n_swapped_in_; }

 private:
  // Blocks for n_cached + n_tokens positions, the ones about to be written made private
  // (copy-on-write) where another sequence shares them.
  bool reserve(Sequence& seq, int32_t n_tokens);
  void preempt(Sequence& seq);
  // A swapped-out sequence's K/V back in fresh blocks, with blocks for n more tokens; false (and
  // nothing taken) when the pool cannot give them.
  bool swap_in(Sequence& seq, int32_t n);

  PrefixCache& cache_;
  KVCache& kv_;
  int32_t block_size_, max_step_tokens_, max_seqs_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // in admission order
  SwapSpace* swap_;
  uint64_t n_preemptions_ = 0, n_swapped_out_ = 0, n_swapped_in_ = 0;
};

}  // namespace squeeze
