#pragma once
// Log-probabilities of one step's next-token distribution, for the OpenAI `logprobs` options:
// the sampled token's log-probability and the most likely alternatives.
//
// They are the log-softmax of the model's raw logits for that step: before penalties,
// temperature, top-k, top-p and min-p (vLLM's default "raw logprobs" too). So they describe the
// model, not the sampling settings: the same prompt gives the same logprobs at any temperature,
// and a token the sampler's filters made impossible still has its model log-probability.
#include <cstdint>
#include <span>
#include <vector>

namespace squeeze {

constexpr int32_t kMaxTopLogprobs = 20;  // OpenAI's limit for logprobs / top_logprobs

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

struct StepLogprobs {
  TokenLogprob sampled;           // the token the sampler drew
  std::vector<TokenLogprob> top;  // the most likely tokens, descending (ties: lower id first)
};

// log(sum(exp(logits))), with the maximum subtracted first and the sum in double, so that large
// logits do not overflow and tiny ones still count. NaN entries are ignored (as -inf); -inf when
// no entry is finite.
double log_sum_exp(std::span<const float> logits);

// The k (0..kMaxTopLogprobs, clipped to the vocabulary) largest logits, descending, ties to the
// lower id; one pass over the row with a small sorted buffer (no allocation beyond k entries).
std::vector<TokenLogprob> top_logits(std::span<const float> logits, int32_t k);

// logits: the raw row of the step (unchanged). sampled: the drawn token. top_k: how many
// alternatives to list (0..kMaxTopLogprobs).
StepLogprobs compute_logprobs(std::span<const float> logits, int32_t sampled, int32_t top_k);

}  // namespace squeeze
