#include "engine/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/vec4.h"
#include "util/error.h"

namespace squeeze {

namespace {

using namespace vec4;

using Candidate = std::pair<float, int32_t>;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Total order used everywhere candidates are ranked: higher value first, ties to the lower id.
// A strict total order (ids are unique) makes every selection deterministic, so a seed
// reproduces the same tokens regardless of how a partition happens to shuffle elements.
// Bitwise rather than short-circuit operators: it feeds a branch-free partition.
inline bool better(const Candidate& a, const Candidate& b) {
  return (a.first > b.first) | ((a.first == b.first) & (a.second < b.second));
}

// A uniform double in [0, 1) from 53 random bits, done by hand rather than with
// std::uniform_real_distribution so the stream is identical across standard libraries.
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) return -1;
  // Two passes — a vectorized max, then the first index holding it — beat one scalar pass with
  // a data-dependent branch, and the second pass usually stops early. Ties go to the lowest id
  // by construction; NaN is never chosen; an all -inf/NaN row yields 0.
  const float m = max_value(logits);
  if (!(m > -kInf)) return 0;
  const float* p = logits.data();
  const v4f vm = splat(m);
  size_t i = 0;
  for (; i + 16 <= logits.size(); i += 16) {  // vectorized search for the block holding m
    const v4i hit = (load4(p + i) == vm) | (load4(p + i + 4) == vm) | (load4(p + i + 8) == vm) |
                    (load4(p + i + 12) == vm);
    if (hit[0] | hit[1] | hit[2] | hit[3]) break;
  }
  while (p[i] != m) ++i;  // m is present, so this stops within the block (or the tail)
  return static_cast<int32_t>(i);
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  if (params_.seed == 0xFFFFFFFFu) {
    // random_device yields 32 bits per call; combine two so the whole 64-bit seed space is used.
    std::random_device rd;
    seed_ = (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
  } else {
    seed_ = params_.seed;
  }
  rng_.seed(seed_);
  window_.reserve(params_.penalty_last_n > 0 ? static_cast<size_t>(params_.penalty_last_n) : 0);
}

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> history) {
  const bool rep = params_.repetition_penalty != 1.0f;
  const bool pres = params_.presence_penalty != 0.0f;
  const bool freq = params_.frequency_penalty != 0.0f;
  if (!(rep || pres || freq) || params_.penalty_last_n == 0 || history.empty()) return;

  size_t n = history.size();
  if (params_.penalty_last_n > 0) n = std::min(n, static_cast<size_t>(params_.penalty_last_n));
  const auto recent = history.last(n);

  // Count occurrences by sorting a copy of the window and walking runs: O(n log n) on a window
  // of ~64 tokens, instead of a vocab-sized count table that would need clearing every call.
  // With penalty_last_n = -1 the window grows by one token per call; grow geometrically so that
  // is amortized instead of an exact-size reallocation every call.
  if (window_.capacity() < n) window_.reserve(std::max(n, 2 * window_.capacity()));
  window_.assign(recent.begin(), recent.end());
  std::sort(window_.begin(), window_.end());

  const auto vocab = static_cast<int64_t>(logits.size());
  for (size_t i = 0; i < window_.size();) {
    const int32_t tok = window_[i];
    size_t j = i;
    while (j < window_.size() && window_[j] == tok) ++j;
    const auto count = static_cast<float>(j - i);
    i = j;
    if (tok < 0 || tok >= vocab) continue;  // stray ids (e.g. from another vocab) are ignored

    float& l = logits[static_cast<size_t>(tok)];
    if (rep) {
      // llama.cpp / CTRL: push the logit toward "less likely" regardless of its sign, once per
      // distinct token (not per occurrence).
      l = l > 0.0f ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    }
    l -= params_.frequency_penalty * count + params_.presence_penalty;
  }
}

void Sampler::select_top_k(std::span<const float> logits, size_t k) {
  // One pass with a size-k heap whose front is the worst kept candidate. Whole blocks whose
  // (vectorized) maximum cannot beat the front are skipped, so on a 262k vocabulary almost all
  // of the work is a SIMD max. -inf and NaN are never inserted: they carry zero probability.
  candidates_.clear();
  candidates_.reserve(k);
  const auto worse_first = [](const Candidate& a, const Candidate& b) { return better(a, b); };
  const auto consider = [&](size_t i) {
    const float l = logits[i];
    if (candidates_.size() < k) {
      if (!(l > -kInf)) return;
      candidates_.emplace_back(l, static_cast<int32_t>(i));
      std::push_heap(candidates_.begin(), candidates_.end(), worse_first);
    } else if (l > candidates_.front().first) {
      // Strictly greater only: ids arrive in increasing order, so an equal logit has a higher
      // id and loses the tie.
      std::pop_heap(candidates_.begin(), candidates_.end(), worse_first);
      candidates_.back() = {l, static_cast<int32_t>(i)};
      std::push_heap(candidates_.begin(), candidates_.end(), worse_first);
    }
  };
  size_t i = 0;
  const float* p = logits.data();
  for (; i + 16 <= logits.size(); i += 16) {
    if (candidates_.size() == k) {
      const v4f m = vmax(vmax(load4(p + i), load4(p + i + 4)), vmax(load4(p + i + 8), load4(p + i + 12)));
      if (!(hmax(m) > candidates_.front().first)) continue;
    }
    for (size_t j = i; j < i + 16; ++j) consider(j);
  }
  for (; i < logits.size(); ++i) consider(i);
}

void Sampler::apply_top_p(double total) {
  // Keep the smallest prefix, in descending probability, whose mass reaches top_p of `total`
  // (the normalizer before min-p). Rather than sorting, find the cut with a quickselect guided by
  // mass: partition around a pivot, and descend into whichever side holds the crossing point.
  // Expected O(n) even when the nucleus is most of a 262k vocabulary, where sorting is ~10 ms.
  // The kept set comes out unordered, which the draw does not care about.
  //
  // Invariants: [0, lo) is better than everything after it and has mass `above` < target;
  // [hi, n) is worse than [lo, hi), and c[hi] is the best of [hi, n).
  const double target = static_cast<double>(params_.top_p) * total;
  const size_t n = candidates_.size();
  auto& c = candidates_;
  size_t lo = 0, hi = n;
  double above = 0.0;
  while (lo < hi) {
    // Median of three by the total order: guards against the id-ordered input being sorted.
    size_t a = lo, b = lo + (hi - lo) / 2, d = hi - 1;
    if (better(c[b], c[a])) std::swap(a, b);
    if (better(c[d], c[b])) std::swap(b, d);
    if (better(c[b], c[a])) std::swap(a, b);
    std::swap(c[b], c[hi - 1]);
    const Candidate pivot = c[hi - 1];
    // Branch-free Lomuto partition, summing the better side's mass on the way: which side an
    // element goes to is a coin flip to the branch predictor, and mispredictions would otherwise
    // dominate on a large nucleus. [lo, p) collects the elements better than the pivot.
    size_t p = lo;
    double mass = 0.0;
    for (size_t i = lo; i < hi - 1; ++i) {
      const Candidate x = c[i];
      const bool is_better = better(x, pivot);
      c[i] = c[p];
      c[p] = x;
      p += is_better;
      mass += is_better ? static_cast<double>(x.first) : 0.0;
    }
    std::swap(c[p], c[hi - 1]);  // pivot into its final rank: [lo,p) better, (p,hi) worse
    if (above + mass >= target) {
      hi = p;  // the crossing is strictly inside the better part
      continue;
    }
    above += mass + pivot.first;
    if (above >= target) {
      c.resize(p + 1);  // the pivot is the token that crosses the target; shrinking never reallocates
      return;
    }
    lo = p + 1;
  }
  // Ran out without crossing: either target <= 0 or rounding between differently ordered sums.
  // c[lo] is then the best remaining token, so including it gives the smallest valid set; if
  // nothing remains, the whole (min-p filtered) set is below the target and is kept.
  c.resize(std::min(lo + 1, n));
}

float Sampler::nucleus_floor(std::span<const float> weights, double target) {
  // A cheap prefilter for top-p over the whole vocabulary, so that only a small superset of the
  // nucleus is gathered into candidates_ (gathering and selecting over 262k pairs costs
  // milliseconds). The bit pattern of a positive float is monotonic in its value, so its high
  // bits are an order-preserving bucket index: >> 18 leaves 5 mantissa bits, i.e. 32 buckets
  // per octave (~2% wide), and weights in (0, 1] need at most 0x3F800000 >> 18 = 4064 buckets.
  // One pass accumulates mass per bucket; walking buckets from the top finds the one where the
  // mass crosses the target. Every token in or above it is a superset of the nucleus, and every
  // token below is worse than all of them, so apply_top_p on that superset (against the full
  // total) gives the same set as on the whole vocabulary. (Only if the two differently ordered
  // sums disagree in the last bits right at the cut can it keep the whole crossing bucket.)
  constexpr int kShift = 18;
  constexpr size_t kBuckets = (0x3F800000u >> kShift) + 1;
  mass_hist_.assign(kBuckets, 0.0);  // sized once; later calls only clear (32 KiB)
  for (float w : weights) {
    if (!(w > 0.0f)) continue;  // zero weight: never part of the nucleus
    mass_hist_[std::bit_cast<uint32_t>(w) >> kShift] += w;
  }
  double cum = 0.0;
  size_t b = kBuckets;
  while (b > 0) {
    cum += mass_hist_[--b];
    if (cum >= target) break;
  }
  // Lowest weight that lands in bucket b; bucket 0 means "everything positive".
  return b == 0 ? std::numeric_limits<float>::denorm_min() : std::bit_cast<float>(static_cast<uint32_t>(b) << kShift);
}

int32_t Sampler::draw() {
  double total = 0.0;
  for (const auto& c : candidates_) total += c.first;
  const double u = uniform01(rng_) * total;
  double cum = 0.0;
  int32_t last_positive = candidates_.front().second;
  for (const auto& c : candidates_) {
    if (c.first <= 0.0f) continue;  // underflowed weights must never be drawn
    cum += c.first;
    last_positive = c.second;
    if (u < cum) return c.second;
  }
  return last_positive;  // rounding left u at the very end of the mass
}

int32_t Sampler::draw_from_best() {
  // candidates_: the top-k in the total order, -inf and NaN left out. argmax's answers where
  // sample() on the whole row gives argmax: no candidate at all (every logit -inf or NaN) is 0,
  // and a +inf logit (inf - inf would make the softmax NaN; it has all the mass anyway) is the
  // first +inf.
  if (candidates_.empty()) return 0;
  const float max_logit = candidates_.front().first;
  if (std::isinf(max_logit)) return candidates_.front().second;
  const float inv_t = 1.0f / params_.temperature;
  double total = 0.0;
  for (auto& c : candidates_) {
    c.first = exp_nonpositive((c.first - max_logit) * inv_t);
    total += c.first;
  }
  const float min_w = params_.min_p > 0.0f ? std::min(params_.min_p, 1.0f) : 0.0f;
  if (min_w > 0.0f) std::erase_if(candidates_, [min_w](const Candidate& c) { return c.first < min_w; });
  if (params_.top_p < 1.0f) apply_top_p(total);
  return draw();
}

bool Sampler::has_penalties() const {
  return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
}

bool Sampler::is_argmax() const {
  // As in sample(): a temperature of 0 (or a denormal one, whose 1/T is infinite) is greedy.
  return !(params_.temperature > 0.0f) || std::isinf(1.0f / params_.temperature);
}

int32_t Sampler::best_needed(int64_t n_vocab) const {
  if (has_penalties()) return 0;
  if (is_argmax()) return 1;
  // A top-k at or above the vocabulary size is no top-k: sample() then works on the whole row.
  return params_.top_k > 0 && params_.top_k < n_vocab ? params_.top_k : 0;
}

int32_t Sampler::sample_best(std::span<const float> values, std::span<const int32_t> ids) {
  if (has_penalties() || (!is_argmax() && params_.top_k <= 0))
    throw Error("sampler: these sampling parameters need the whole logits row");
  const size_t need = is_argmax() ? 1 : static_cast<size_t>(params_.top_k);
  if (values.size() < need || ids.size() < need)
    throw Error(fmt("sampler: %zu best logits given, %zu needed", std::min(values.size(), ids.size()), need));
  if (is_argmax()) return ids[0] < 0 ? 0 : ids[0];  // 0 for a row without a finite logit
  candidates_.clear();
  for (size_t i = 0; i < need && ids[i] >= 0; ++i) candidates_.emplace_back(values[i], ids[i]);
  return draw_from_best();
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  if (logits.empty()) return -1;
  apply_penalties(logits, history);
  // Greedy still sees the penalties (as in llama.cpp, vLLM and HF): with the defaults they are
  // disabled, so plain greedy remains a bit-exact argmax.
  if (!(params_.temperature > 0.0f)) return argmax(logits);
  // A denormal temperature makes 1/T infinite and 0 * inf = NaN below; it is greedy in effect.
  const float inv_t = 1.0f / params_.temperature;
  if (std::isinf(inv_t)) return argmax(logits);

  // Softmax weights with the temperature folded in: exp((l - max) / T). Subtracting the max
  // before scaling keeps every exponent <= 0, so a tiny temperature cannot overflow; the top
  // token's weight is exactly 1, which min-p uses as "max prob" without normalizing.
  // min-p is applied before top-p although the specified order is top-p then min-p: both keep
  // a prefix of the descending-probability order, min-p's threshold is relative to the max
  // (unchanged by top-p's renormalization), so either order keeps the shorter prefix —
  // provided top-p measures mass against the pre-min-p total, which apply_top_p is given.
  // Filtering first shrinks what top-p has to select from.
  const float min_w = params_.min_p > 0.0f ? std::min(params_.min_p, 1.0f) : 0.0f;
  double total = 0.0;
  const size_t vocab = logits.size();
  const size_t k = params_.top_k > 0 ? static_cast<size_t>(params_.top_k) : vocab;

  if (k < vocab) {
    select_top_k(logits, k);
    // The draw walks the candidates in order, so the order is fixed: the total order, which is
    // also the order a backend's top_k_rows gives (sample_best).
    std::sort(candidates_.begin(), candidates_.end(), better);
    return draw_from_best();
  } else {
    // No top-k: work on the whole vocabulary, turning the logits (scratch by contract) into
    // weights in place with vectorized loops, and only then gathering survivors.
    const float max_logit = max_value(logits);
    if (!(max_logit > -kInf) || std::isinf(max_logit)) return argmax(logits);
    float* p = logits.data();
    // Sums in double (262k float terms would lose digits): the total, and the mass at or above
    // min-p, which tells below whether top-p can cut tighter than min-p at all.
    v2d acc_lo = {0.0, 0.0}, acc_hi = acc_lo, min_lo = acc_lo, min_hi = acc_lo;
    double min_mass = 0.0;
    size_t i = 0;
    for (; i + 4 <= vocab; i += 4) {
      const v4f w = exp_nonpositive((load4(p + i) - splat(max_logit)) * splat(inv_t));
      store4(p + i, w);
      const v4f wm = select(w >= splat(min_w), w, splat(0.0f));
      acc_lo += v2d{w[0], w[1]};
      acc_hi += v2d{w[2], w[3]};
      min_lo += v2d{wm[0], wm[1]};
      min_hi += v2d{wm[2], wm[3]};
    }
    total = (acc_lo[0] + acc_lo[1]) + (acc_hi[0] + acc_hi[1]);
    min_mass = (min_lo[0] + min_lo[1]) + (min_hi[0] + min_hi[1]);
    for (; i < vocab; ++i) {
      p[i] = exp_nonpositive((p[i] - max_logit) * inv_t);
      total += p[i];
      if (p[i] >= min_w) min_mass += p[i];
    }

    if (!(params_.top_p < 1.0f) && min_w == 0.0f) {
      // Nothing left to filter: draw straight from the weights, without gathering candidates.
      const double u = uniform01(rng_) * total;
      double cum = 0.0;
      int32_t last_positive = 0;
      for (size_t t = 0; t < vocab; ++t) {
        if (!(p[t] > 0.0f)) continue;
        cum += p[t];
        last_positive = static_cast<int32_t>(t);
        if (u < cum) return last_positive;
      }
      return last_positive;  // rounding left u at the very end of the mass
    }

    // Gather only tokens that can survive: at least min-p (the top token has weight exactly 1,
    // so min_w <= 1 always keeps it), inside the top-p superset, and never zero weight.
    float floor_w = std::max(min_w, std::numeric_limits<float>::denorm_min());
    const double target = static_cast<double>(params_.top_p) * total;
    // If the min-p survivors do not even reach the top-p mass, min-p is the tighter cut and the
    // histogram pass is skipped; apply_top_p below then keeps them all.
    if (params_.top_p < 1.0f && min_mass >= target)
      floor_w = std::max(floor_w, nucleus_floor(logits, target));
    candidates_.clear();
    candidates_.reserve(vocab);  // allocates on the first call only
    size_t t = 0;
    for (; t + 16 <= vocab; t += 16) {
      // Survivors are usually sparse: skip whole blocks on one vector test.
      const v4f m = vmax(vmax(load4(p + t), load4(p + t + 4)), vmax(load4(p + t + 8), load4(p + t + 12)));
      if (!(hmax(m) >= floor_w)) continue;
      for (size_t j = t; j < t + 16; ++j)
        if (p[j] >= floor_w) candidates_.emplace_back(p[j], static_cast<int32_t>(j));
    }
    for (; t < vocab; ++t)
      if (p[t] >= floor_w) candidates_.emplace_back(p[t], static_cast<int32_t>(t));
  }

  if (params_.top_p < 1.0f) apply_top_p(total);
  return draw();
}

}  // namespace squeeze
