#pragma once
// Turns one row of logits into the next token. Logits processors run in a fixed order —
// repetition/presence/frequency penalties, temperature, top-k, top-p, min-p — then a draw from a
// per-request RNG seeded by SamplingParams::seed, so a seed reproduces the same tokens.
// temperature <= 0 is greedy (argmax, ties to the lowest id), bit-reproducible.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace squeeze {

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;          // <= 0: disabled
  float top_p = 0.95f;         // >= 1: disabled
  float min_p = 0.05f;         // <= 0: disabled
  float repetition_penalty = 1.0f;  // 1: disabled (llama.cpp / CTRL style: divide positive logits)
  float presence_penalty = 0.0f;    // OpenAI style: subtract once per token present
  float frequency_penalty = 0.0f;   // OpenAI style: subtract count * penalty
  int32_t penalty_last_n = 64;      // how many recent tokens the penalties look at; -1: all
  uint64_t seed = 0xFFFFFFFFu;      // 0xFFFFFFFF: pick a random seed
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // history: the tokens so far (prompt and generated) the penalties look at. Penalties apply in
  // greedy mode too (as in llama.cpp / vLLM / HF); with default params they are off.
  // logits is modified in place (it is scratch for the processors). Returns -1 for empty logits;
  // a row with no finite logit returns argmax's answer (0) rather than drawing.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

  const SamplingParams& params() const { return params_; }
  // Plain greedy: the argmax of the raw logits (no temperature, no penalties), which the engine
  // may take from the device without reading the logits.
  bool plain_greedy() const {
    return !(params_.temperature > 0.0f) && params_.repetition_penalty == 1.0f && params_.presence_penalty == 0.0f &&
           params_.frequency_penalty == 0.0f;
  }
  uint64_t seed() const { return seed_; }  // the seed actually used

  // How many of a row's best logits (larger first, ties to the lower id) suffice to draw exactly
  // what sample() draws from the whole row of n_vocab: 1 when it is an argmax, top_k for top-k
  // sampling without penalties, 0 when the whole row is needed.
  int32_t best_needed(int64_t n_vocab) const;
  // sample() from a row's best logits alone: values and ids as Backend::top_k_rows gives them
  // (best first, padded with id -1), at least best_needed() of them (the rest are ignored); an
  // Error when these parameters need the whole row.
  int32_t sample_best(std::span<const float> values, std::span<const int32_t> ids);

 private:
  SamplingParams params_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused across calls: no per-token allocation
  std::vector<int32_t> window_;  // sorted copy of the penalty window, reused across calls
  std::vector<double> mass_hist_;  // top-p prefilter histogram over weight buckets, reused

  void apply_penalties(std::span<float> logits, std::span<const int32_t> history);
  void select_top_k(std::span<const float> logits, size_t k);
  void apply_top_p(double total);
  float nucleus_floor(std::span<const float> weights, double target);
  int32_t draw();
  int32_t draw_from_best();
  bool has_penalties() const;
  bool is_argmax() const;
};

// Argmax with ties going to the lowest index.
int32_t argmax(std::span<const float> logits);

}  // namespace squeeze
