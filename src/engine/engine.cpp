#include "engine/engine.h"

#include <algorithm>
#include <span>

#include "kv/copy_on_write.h"
#include "util/error.h"

namespace squeeze {

Engine::Engine(Model& model, Backend& backend, const Tokenizer* tokenizer, const EngineConfig& cfg)
    : model_(model), backend_(backend), tokenizer_(tokenizer), cfg_(cfg),
      kv_(model.kv_geometry(cfg.n_blocks, cfg.kv_type, cfg.block_size), backend.memory()),
      cache_(kv_.pool(), cfg.block_size),
      swap_(cfg.swap_bytes > 0 ? std::make_unique<SwapSpace>(kv_, cfg.swap_bytes) : nullptr),
      scheduler_(cache_, kv_, cfg.max_step_tokens, cfg.max_seqs, swap_.get()) {}

int64_t Engine::add(std::vector<int32_t> prompt, const SamplingParams& sp, int32_t max_new_tokens, bool ignore_eos,
                    int32_t n_logprobs) {
  return add_samples(std::move(prompt), sp, max_new_tokens, 1, ignore_eos, n_logprobs).front();
}

std::vector<int64_t> Engine::add_samples(std::vector<int32_t> prompt, const SamplingParams& sp, int32_t max_new_tokens,
                                         int32_t n, bool ignore_eos, int32_t n_logprobs) {
  if (n < 1) throw Error("the number of samples must be at least 1");
  if (n_logprobs < -1 || n_logprobs > kMaxTopLogprobs)
    throw Error(fmt("the number of top logprobs must be between 0 and %d", kMaxTopLogprobs));
  const int64_t n_vocab = model_.hparams().n_vocab;
  if (prompt.empty()) throw Error("empty prompt");
  for (int32_t t : prompt)
    if (t < 0 || t >= n_vocab) throw Error(fmt("token id %d is outside the vocabulary (0..%lld)", t, (long long)n_vocab - 1));
  if (max_new_tokens < 0) throw Error("max_new_tokens must not be negative");
  const int64_t total = int64_t(prompt.size()) + max_new_tokens;
  if (total > cfg_.n_ctx)
    throw Error(fmt("prompt (%zu tokens) + max tokens (%d) exceed the context of %d", prompt.size(), max_new_tokens,
                    cfg_.n_ctx));
  if (total > int64_t(cfg_.n_blocks) * cfg_.block_size)
    throw Error(fmt("prompt (%zu tokens) + max tokens (%d) exceed the KV cache (%lld tokens)", prompt.size(),
                    max_new_tokens, (long long)cfg_.n_blocks * cfg_.block_size));
  std::vector<int64_t> ids;
  Sequence* parent = nullptr;
  for (int32_t i = 0; i < n; ++i) {
    SamplingParams spi = sp;
    if (sp.seed != 0xFFFFFFFFu) spi.seed = sp.seed + uint64_t(i);
    const int64_t id = next_id_++;
    auto seq = std::make_unique<Sequence>(id, i == 0 ? std::move(prompt) : parent->tokens, spi, max_new_tokens);
    seq->ignore_eos = ignore_eos;
    seq->n_logprobs = n_logprobs;
    Sequence* raw = seq.get();
    seqs_.emplace(id, std::move(seq));
    ids.push_back(id);
    if (max_new_tokens == 0) {
      raw->state = SeqState::finished;
      raw->finish = FinishReason::length;
    } else if (i == 0) {
      parent = raw;
      scheduler_.add(raw);
    } else {
      raw->state = SeqState::awaiting_fork;
      parent->fork_children.push_back(raw);
    }
  }
  return ids;
}

void Engine::finish(Sequence& s, FinishReason why) {
  s.finish = why;
  scheduler_.remove(&s);
  // Samples still waiting for this prompt start on their own (recomputing it).
  for (Sequence* child : s.fork_children) scheduler_.add(child);
  s.fork_children.clear();
}

void Engine::sample_next(Sequence& s, std::span<float> logits) {
  int32_t tok;
  if (s.n_logprobs >= 0) {
    // Logprobs are of the raw logits (engine/logprobs.h), and the sampler's processors edit the
    // row in place: it draws from a copy. Only sequences that asked pay for the copy and the
    // pass over the vocabulary.
    sample_scratch_.assign(logits.begin(), logits.end());
    tok = s.sampler.sample(sample_scratch_, s.tokens);
    s.logprobs.push_back(compute_logprobs(logits, tok, s.n_logprobs));
  } else {
    tok = s.sampler.sample(logits, s.tokens);
  }
  accept_token(s, tok);
}

void Engine::accept_token(Sequence& s, int32_t tok) {
  s.tokens.push_back(tok);
  if (!s.ignore_eos && tokenizer_ && tokenizer_->is_eog(tok)) finish(s, FinishReason::stop);
  else if (s.n_generated() >= s.max_new_tokens) finish(s, FinishReason::length);
}

void Engine::fork_children(Sequence& parent, std::span<const float> logits) {
  std::vector<Sequence*> kids;
  kids.swap(parent.fork_children);
  for (Sequence* c : kids) {
    c->tokens.assign(parent.tokens.begin(), parent.tokens.begin() + parent.n_cached);
    c->table = fork_blocks(parent.table, kv_.pool());
    c->n_cached = parent.n_cached;
    c->chain_hash = parent.chain_hash;
    c->n_hashed_blocks = parent.n_hashed_blocks;
    scheduler_.add_running(c);
    row_copy_.assign(logits.begin(), logits.end());
    sample_next(*c, row_copy_);
  }
}

void Engine::cancel(int64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end() || it->second->state == SeqState::finished) return;
  Sequence& s = *it->second;
  if (s.state == SeqState::awaiting_fork) {
    // Not started: just leave the parent's fork list.
    for (auto& [pid, p] : seqs_) {
      auto& kids = p->fork_children;
      kids.erase(std::remove(kids.begin(), kids.end(), &s), kids.end());
    }
    s.state = SeqState::finished;
    s.finish = FinishReason::cancelled;
    return;
  }
  finish(s, FinishReason::cancelled);
}

void Engine::release(int64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  if (it->second->state != SeqState::finished) finish(*it->second, FinishReason::cancelled);
  seqs_.erase(it);
}

void Engine::cache_full_blocks(Sequence& s) {
  const int32_t bs = cfg_.block_size;
  for (; (s.n_hashed_blocks + 1) * bs <= s.n_cached; ++s.n_hashed_blocks) {
    const auto block_tokens =
        std::span<const int32_t>(s.tokens).subspan(size_t(s.n_hashed_blocks) * size_t(bs), size_t(bs));
    s.chain_hash = PrefixCache::chain_hash(s.chain_hash, block_tokens);
    cache_.insert(s.chain_hash, s.table.blocks[size_t(s.n_hashed_blocks)]);
  }
}

bool Engine::step() {
  const std::vector<ScheduledChunk> plan = scheduler_.schedule();
  if (plan.empty()) return false;

  batch_.clear();
  batch_.batch_invariant = true;
  std::vector<Sequence*> sampling;  // in logit-row order
  for (const ScheduledChunk& c : plan) {
    Sequence& s = *c.seq;
    const int32_t end = s.n_cached + c.n_tokens;
    const bool wants_logits = end == int32_t(s.tokens.size());
    for (int32_t p = s.n_cached; p < end; ++p) batch_.add(s.tokens[size_t(p)], p, s.table, wants_logits && p == end - 1);
    if (wants_logits) sampling.push_back(&s);
  }
  // When every row's sampler can draw from the row's best logits alone (no logprobs, no samples
  // to fork), only those come back from the device, not the logits: the argmax when every row is
  // greedy, else the k best for the largest k asked.
  const int64_t n_vocab = model_.hparams().n_vocab;
  best_.k = sampling.empty() ? 0 : 1;
  best_.argmax_only = true;
  for (const Sequence* s : sampling) {
    const int32_t need = s->n_logprobs < 0 && s->fork_children.empty() ? s->sampler.best_needed(n_vocab) : 0;
    if (need == 0) {
      best_.k = 0;
      break;
    }
    best_.k = std::max(best_.k, need);
    best_.argmax_only = best_.argmax_only && s->sampler.plain_greedy();
  }
  best_.argmax_only = best_.argmax_only && best_.k == 1;
  model_.forward(backend_, batch_, kv_, logits_, best_.k > 0 ? &best_ : nullptr);

  for (const ScheduledChunk& c : plan) {
    c.seq->n_cached += c.n_tokens;
    cache_full_blocks(*c.seq);
  }
  if (best_.k > 0 && best_.ids.size() == sampling.size() * size_t(best_.k)) {
    const size_t k = size_t(best_.k);
    for (size_t i = 0; i < sampling.size(); ++i) {
      const auto ids = std::span<const int32_t>(best_.ids).subspan(i * k, k);
      const int32_t tok = best_.argmax_only
                              ? ids[0]
                              : sampling[i]->sampler.sample_best(std::span<const float>(best_.values).subspan(i * k, k), ids);
      accept_token(*sampling[i], tok);
    }
    return true;
  }
  for (size_t i = 0; i < sampling.size(); ++i) {
    Sequence& s = *sampling[i];
    std::span<float> row(logits_.data() + i * size_t(n_vocab), size_t(n_vocab));
    // Parallel samples branch off before the parent's sampler edits the row in place.
    if (!s.fork_children.empty()) fork_children(s, row);
    sample_next(s, row);
  }
  return true;
}

Engine::KvUsage Engine::kv_usage() const {
  const int32_t bs = cfg_.block_size;
  // Per block, the most slots any holder has written; -1 until a holder is seen. The scratch
  // array is kept between calls (this runs every step for /metrics).
  fill_scratch_.assign(size_t(cfg_.n_blocks), -1);
  KvUsage u;
  for (const auto& [id, s] : seqs_) {
    if (s->state != SeqState::running) continue;
    for (size_t b = 0; b < s->table.blocks.size(); ++b) {
      const int32_t f = std::clamp(s->n_cached - int32_t(b) * bs, 0, bs);
      int32_t& slot = fill_scratch_[size_t(s->table.blocks[b])];
      if (slot < 0) {
        u.slots_allocated += bs;
        slot = 0;
      }
      if (f > slot) {
        u.slots_filled += f - slot;
        slot = f;
      }
    }
  }
  return u;
}

}  // namespace squeeze
