#include "engine/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/vec4.h"

namespace squeeze {

double log_sum_exp(std::span<const float> logits) {
  using namespace vec4;
  const float mx = max_value(logits);  // NaN ignored
  if (mx == -std::numeric_limits<float>::infinity()) return -std::numeric_limits<double>::infinity();
  if (std::isinf(mx)) return std::numeric_limits<double>::infinity();
  // Every term is exp(v - max) <= 1, so nothing overflows; the largest term is exactly 1, so the
  // sum is >= 1 and its log is well conditioned. Terms in float (the sampler's vectorized exp,
  // ~1 ulp; NaN and -inf give 0), the sum in double so that a vocabulary of small terms does not
  // lose them to rounding.
  const float* p = logits.data();
  const size_t n = logits.size();
  v2d acc_lo = {0.0, 0.0}, acc_hi = acc_lo;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v4f w = exp_nonpositive(load4(p + i) - splat(mx));
    acc_lo += v2d{w[0], w[1]};
    acc_hi += v2d{w[2], w[3]};
  }
  double sum = (acc_lo[0] + acc_lo[1]) + (acc_hi[0] + acc_hi[1]);
  for (; i < n; ++i) sum += exp_nonpositive(p[i] - mx);
  return double(mx) + std::log(sum);
}

std::vector<TokenLogprob> top_logits(std::span<const float> logits, int32_t k) {
  using namespace vec4;
  const size_t want = size_t(std::clamp<int64_t>(k, 0, std::min<int64_t>(kMaxTopLogprobs, int64_t(logits.size()))));
  std::vector<TokenLogprob> top;
  top.reserve(want);
  if (want == 0) return top;
  const float* p = logits.data();
  const size_t n = logits.size();
  auto consider = [&](size_t i) {
    const float v = p[i];
    if (std::isnan(v)) return;
    // Ids arrive in ascending order, so an equal logit already held keeps its place (lower id).
    if (top.size() == want) {
      if (!(v > top.back().logprob)) return;
      top.pop_back();
    }
    auto pos = std::upper_bound(top.begin(), top.end(), v, [](float x, const TokenLogprob& t) { return x > t.logprob; });
    top.insert(pos, TokenLogprob{int32_t(i), v});
  };
  size_t i = 0;
  for (; i < n && top.size() < want; ++i) consider(i);
  // Once the buffer is full, blocks of 16 with nothing above its smallest entry (almost all of
  // them) are skipped with four vector comparisons (NaN compares false).
  for (; i + 16 <= n; i += 16) {
    const v4f t = splat(top.back().logprob);
    const v4i hit = (load4(p + i) > t) | (load4(p + i + 4) > t) | (load4(p + i + 8) > t) | (load4(p + i + 12) > t);
    if (hit[0] | hit[1] | hit[2] | hit[3])
      for (size_t j = i; j < i + 16; ++j) consider(j);
  }
  for (; i < n; ++i) consider(i);
  return top;
}

StepLogprobs compute_logprobs(std::span<const float> logits, int32_t sampled, int32_t top_k) {
  const double lse = log_sum_exp(logits);
  StepLogprobs out;
  out.sampled.token = sampled;
  out.sampled.logprob = sampled >= 0 && size_t(sampled) < logits.size()
                            ? float(double(logits[size_t(sampled)]) - lse)
                            : -std::numeric_limits<float>::infinity();
  out.top = top_logits(logits, top_k);
  for (TokenLogprob& t : out.top) t.logprob = float(double(t.logprob) - lse);  // logit -> log-probability
  return out;
}

}  // namespace squeeze
