#include "engine/scheduler.h"

#include <algorithm>

#include "kv/copy_on_write.h"
#include "util/error.h"

namespace squeeze {

Scheduler::Scheduler(PrefixCache& cache, KVCache& kv, int32_t max_step_tokens, int32_t max_seqs, SwapSpace* swap)
    : cache_(cache), kv_(kv), block_size_(kv.geometry().block_size), max_step_tokens_(std::max(1, max_step_tokens)),
      max_seqs_(std::max(1, max_seqs)), swap_(swap) {}

void Scheduler::add(Sequence* seq) {
  seq->state = SeqState::waiting;
  waiting_.push_back(seq);
}

void Scheduler::add_running(Sequence* seq) {
  seq->state = SeqState::running;
  running_.push_back(seq);
}

bool Scheduler::reserve(Sequence& seq, int32_t n_tokens) {
  const size_t need = size_t((int64_t(seq.n_cached) + n_tokens + block_size_ - 1) / block_size_);
  if (need > seq.table.blocks.size()) {
    if (size_t(cache_.n_available()) < need - seq.table.blocks.size()) return false;
    while (seq.table.blocks.size() < need) seq.table.blocks.push_back(cache_.allocate());
  }
  for (size_t b = size_t(seq.n_cached / block_size_); b < need; ++b)
    if (!make_writable(seq.table, int64_t(b), cache_, kv_)) return false;
  return true;
}

void Scheduler::preempt(Sequence& seq) {
  // The blocks that hold its n_cached tokens (the table may also hold blocks reserved for tokens
  // not yet computed; their contents do not matter).
  const size_t used = size_t((int64_t(seq.n_cached) + block_size_ - 1) / block_size_);
  if (swap_ && used > 0 && used <= seq.table.blocks.size() && size_t(swap_->n_free()) >= used) {
    for (size_t b = 0; b < used; ++b) seq.swap_slots.push_back(swap_->store(seq.table.blocks[b]));
    cache_.release(seq.table);  // n_cached and the hashing state stay: the K/V comes back
    ++n_swapped_out_;
  } else {
    cache_.release(seq.table);
    seq.n_cached = 0;
    seq.chain_hash = PrefixCache::kRootHash;
    seq.n_hashed_blocks = 0;
  }
  ++seq.n_preempted;
  ++n_preemptions_;
  seq.state = SeqState::waiting;
  running_.erase(std::find(running_.begin(), running_.end(), &seq));
  waiting_.push_front(&seq);
}

std::vector<ScheduledChunk> Scheduler::schedule() {
  std::vector<ScheduledChunk> plan;
  int32_t budget = max_step_tokens_;

  // 1. Running sequences, oldest first. A sequence that cannot get a block preempts the newest
  //    running one (possibly itself) until it fits.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence& s = *running_[i];
    const int32_t n = std::min(s.n_pending(), budget);
    if (n <= 0) {
      ++i;
      continue;
    }
    bool fits = reserve(s, n);
    while (!fits && running_.back() != &s) {
      Sequence* victim = running_.back();
      // A victim already in this step's plan gives its tokens back to the budget.
      for (auto it = plan.begin(); it != plan.end(); ++it)
        if (it->seq == victim) {
          budget += it->n_tokens;
          plan.erase(it);
          break;
        }
      preempt(*victim);
      fits = reserve(s, n);
    }
    if (!fits) {
      preempt(s);  // the newest itself: nothing else to take from
      continue;
    }
    plan.push_back({&s, n});
    budget -= n;
    ++i;
  }

  // 2. Waiting sequences, first come first served; stop at the first that does not fit so that
  //    later (smaller) requests cannot starve an earlier one.
  while (!waiting_.empty() && budget > 0 && int32_t(running_.size()) < max_seqs_) {
    Sequence& s = *waiting_.front();
    const bool swapped = !s.swap_slots.empty();  // its K/V comes back from the swap space
    if (!swapped && s.table.blocks.empty()) {
      s.n_cached = int32_t(cache_.match(s.tokens, s.table));
      s.n_hashed_blocks = s.n_cached / block_size_;
      s.chain_hash = PrefixCache::kRootHash;
      for (int32_t b = 0; b < s.n_hashed_blocks; ++b)
        s.chain_hash = PrefixCache::chain_hash(
            s.chain_hash, std::span<const int32_t>(s.tokens).subspan(size_t(b * block_size_), size_t(block_size_)));
    }
    const int32_t n = std::min(s.n_pending(), budget);
    if (swapped ? !swap_in(s, n) : !reserve(s, n)) {
      // Give the matched prefix back while waiting (it is matched again next time), so waiting
      // requests never hold blocks the running ones need. (swap_in takes nothing when it fails.)
      if (!swapped) {
        cache_.release(s.table);
        s.n_cached = 0;
      }
      if (running_.empty() && plan.empty()) {
        // Nothing else holds blocks that could come back: the request can never fit.
        throw Error(fmt("the KV cache (%d blocks of %d tokens) cannot hold a %d-token sequence",
                        cache_.n_available(), block_size_, int(s.tokens.size())));
      }
      break;
    }
    waiting_.pop_front();
    s.state = SeqState::running;
    running_.push_back(&s);
    plan.push_back({&s, n});
    budget -= n;
  }
  return plan;
}

bool Scheduler::swap_in(Sequence& seq, int32_t n) {
  const size_t need = size_t((int64_t(seq.n_cached) + n + block_size_ - 1) / block_size_);
  if (size_t(cache_.n_available()) < need) return false;
  for (int32_t slot : seq.swap_slots) {
    const int32_t block = cache_.allocate();
    seq.table.blocks.push_back(block);
    swap_->load(slot, block);
  }
  seq.swap_slots.clear();
  ++n_swapped_in_;
  if (!reserve(seq, n)) throw Error("scheduler: blocks counted as available could not be reserved");
  return true;
}

void Scheduler::remove(Sequence* seq) {
  for (int32_t slot : seq->swap_slots) swap_->free(slot);
  seq->swap_slots.clear();
  if (auto it = std::find(running_.begin(), running_.end(), seq); it != running_.end()) running_.erase(it);
  if (auto it = std::find(waiting_.begin(), waiting_.end(), seq); it != waiting_.end()) waiting_.erase(it);
  cache_.release(seq->table);
  seq->state = SeqState::finished;
}

}  // namespace squeeze
