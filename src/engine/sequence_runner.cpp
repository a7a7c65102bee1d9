#include "engine/sequence_runner.h"

#include <algorithm>

#include "util/error.h"

namespace squeeze {

namespace {
constexpr int32_t kBlockSize = 16;
}

SequenceRunner::SequenceRunner(Model& model, Backend& backend, int32_t n_ctx, GGMLType kv_type, int32_t max_batch)
    : model_(model),
      backend_(backend),
      n_ctx_(n_ctx),
      max_batch_(max_batch > 0 ? max_batch : backend.preferred_batch_tokens()),
      kv_(model.kv_geometry((n_ctx + kBlockSize - 1) / kBlockSize, kv_type, kBlockSize), backend.memory()) {
  if (n_ctx <= 0) throw Error("context size must be positive");
}

SequenceRunner::~SequenceRunner() { table_.release_all(kv_.pool()); }

void SequenceRunner::reset() {
  table_.release_all(kv_.pool());
  n_past_ = 0;
}

void SequenceRunner::eval(std::span<const int32_t> tokens, int64_t logits_from, std::vector<float>& logits,
                          BestLogits* best) {
  const int64_t n = int64_t(tokens.size());
  const int64_t n_vocab = model_.hparams().n_vocab;
  if (n == 0) throw Error("nothing to evaluate");
  if (n_past_ + n > n_ctx_)
    throw Error(fmt("%lld tokens do not fit in the context: %d already used of %d", (long long)n, n_past_, n_ctx_));
  for (int32_t t : tokens)
    if (t < 0 || t >= n_vocab) throw Error(fmt("token id %d is outside the vocabulary (0..%lld)", t, (long long)n_vocab - 1));
  if (!table_.reserve(kv_.pool(), n_past_ + n, kBlockSize)) throw Error("KV cache exhausted");

  logits_from = std::clamp<int64_t>(logits_from, 0, n - 1);
  if (best && logits_from != n - 1) throw Error("best logits are only for the last token");
  logits.resize(size_t(n - logits_from) * size_t(n_vocab));
  for (int64_t start = 0; start < n; start += max_batch_) {
    const int64_t end = std::min(n, start + max_batch_);
    batch_.clear();
    for (int64_t i = start; i < end; ++i)
      batch_.add(tokens[size_t(i)], n_past_ + int32_t(i), table_, i >= logits_from);
    const bool last = end == n;
    // All in one pass: its logit rows are exactly the caller's, written straight into its vector.
    if (start == 0 && last) {
      model_.forward(backend_, batch_, kv_, logits, best);
      if (best && !best->ids.empty()) logits.clear();
      break;
    }
    model_.forward(backend_, batch_, kv_, chunk_logits_, last ? best : nullptr);
    if (last && best && !best->ids.empty()) {
      logits.clear();
      break;
    }
    const size_t off = size_t(std::max<int64_t>(0, start - logits_from)) * size_t(n_vocab);
    std::copy(chunk_logits_.begin(), chunk_logits_.end(), logits.begin() + off);
  }
  n_past_ += int32_t(n);
}

}  // namespace squeeze
