// Sampler tests. Every random test uses a fixed seed, so the statistical checks are
// deterministic: they either always pass or always fail for a given implementation.
#include "engine/sampler.h"

#include "util/error.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace squeeze {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

SamplingParams plain(float temperature, uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

// Draws n tokens from the same logits (copied each time: sample() scribbles on them).
std::vector<int> histogram(const SamplingParams& params, const std::vector<float>& logits, int n) {
  Sampler s(params);
  std::vector<int> counts(logits.size(), 0);
  std::vector<float> scratch;
  for (int i = 0; i < n; ++i) {
    scratch = logits;
    const int32_t t = s.sample(scratch, {});
    EXPECT_GE(t, 0);
    EXPECT_LT(t, static_cast<int32_t>(logits.size()));
    if (t >= 0 && t < static_cast<int32_t>(logits.size())) ++counts[static_cast<size_t>(t)];
  }
  return counts;
}

// Softmax of logits / temperature restricted to `keep` (renormalized), in double.
std::vector<double> expected_probs(const std::vector<float>& logits, float temperature,
                                   const std::vector<bool>& keep) {
  double mx = -1e300;
  for (size_t i = 0; i < logits.size(); ++i)
    if (keep[i]) mx = std::max(mx, static_cast<double>(logits[i]));
  std::vector<double> p(logits.size(), 0.0);
  double z = 0.0;
  for (size_t i = 0; i < logits.size(); ++i)
    if (keep[i]) z += p[i] = std::exp((logits[i] - mx) / temperature);
  for (double& v : p) v /= z;
  return p;
}

// Checks that only kept tokens appear and that counts fit the expected distribution.
// Chi-square threshold is very generous (≈ p < 1e-9 for these dfs); with fixed seeds this can
// not flake, yet still catches real bias given the sample sizes used.
void expect_matches(const std::vector<int>& counts, const std::vector<double>& probs, int n) {
  double chi2 = 0.0;
  int df = -1;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the allowed set";
      continue;
    }
    const double e = probs[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++df;
  }
  if (df > 0) {
    const double limit = df + 12.0 * std::sqrt(2.0 * df) + 20.0;
    EXPECT_LT(chi2, limit) << "df=" << df;
  }
}

std::vector<float> logits_from_probs(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

TEST(Sampler, ArgmaxTiesGoToLowestId) {
  const std::vector<float> l = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  EXPECT_EQ(argmax(l), 1);
  const std::vector<float> all_equal(7, 0.25f);
  EXPECT_EQ(argmax(all_equal), 0);
  const std::vector<float> with_nan = {kNaN, 1.0f, kNaN, 2.0f};
  EXPECT_EQ(argmax(with_nan), 3);
  const std::vector<float> neg_inf = {-kInf, -kInf, -kInf};
  EXPECT_EQ(argmax(neg_inf), 0);
}

TEST(Sampler, GreedyIsArgmax) {
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (float t : {0.0f, -1.0f}) {
    SamplingParams p;  // default top-k/top-p/min-p must not matter when greedy
    p.temperature = t;
    Sampler s(p);
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<float> l(1000);
      for (float& v : l) v = nd(gen);
      l[500] = l[123] = 100.0f;  // a tie: lowest id wins
      EXPECT_EQ(s.sample(l, {}), 123);
    }
  }
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedsDiffer) {
  std::vector<float> base(200);
  for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<float>(std::sin(i * 0.37)) * 2.0f;
  auto run = [&](uint64_t seed) {
    SamplingParams p;  // defaults: top-k 40, top-p .95, min-p .05
    p.seed = seed;
    p.temperature = 1.5f;
    Sampler s(p);
    EXPECT_EQ(s.seed(), seed);
    std::vector<int32_t> out;
    std::vector<float> scratch;
    for (int i = 0; i < 64; ++i) {
      scratch = base;
      out.push_back(s.sample(scratch, out));
    }
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
  EXPECT_NE(run(0), run(1));
}

TEST(Sampler, RandomSeedIsReportedAndReproduces) {
  Sampler a(plain(1.0f, 0xFFFFFFFFu));
  Sampler b(plain(1.0f, 0xFFFFFFFFu));
  EXPECT_NE(a.seed(), b.seed());  // 2^-64 chance of a false failure
  // Re-running with the reported seed reproduces the sequence.
  Sampler c(plain(1.0f, a.seed()));
  const std::vector<float> base(50, 0.0f);
  std::vector<float> l1, l2;
  for (int i = 0; i < 32; ++i) {
    l1 = base;
    l2 = base;
    EXPECT_EQ(a.sample(l1, {}), c.sample(l2, {}));
  }
}

TEST(Sampler, TopK1EqualsGreedy) {
  std::mt19937 gen(99);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  SamplingParams p;
  p.top_k = 1;
  p.temperature = 5.0f;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  Sampler s(p);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> l(4096);
    for (float& v : l) v = std::round(nd(gen) * 4.0f) / 4.0f;  // coarse values: plenty of ties
    const int32_t expected = argmax(l);
    EXPECT_EQ(s.sample(l, {}), expected);
  }
}

TEST(Sampler, TemperatureOnlyMatchesSoftmax) {
  const std::vector<float> l = {1.0f, 0.0f, -1.0f, 2.0f, 0.5f};
  for (float t : {0.5f, 1.0f, 2.0f}) {
    const int n = 100000;
    const auto counts = histogram(plain(t, 17), l, n);
    expect_matches(counts, expected_probs(l, t, std::vector<bool>(l.size(), true)), n);
  }
}

TEST(Sampler, TopKKeepsTheKBest) {
  const std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.5f, 1.9f, 0.0f, 1.0f, -3.0f};
  auto p = plain(1.0f, 5);
  p.top_k = 3;
  const int n = 100000;
  const auto counts = histogram(p, l, n);
  std::vector<bool> keep(l.size(), false);
  keep[1] = keep[4] = keep[3] = true;
  expect_matches(counts, expected_probs(l, 1.0f, keep), n);
}

TEST(Sampler, TopPKeepsSmallestNucleus) {
  // probs .4 .3 .2 .1 (shuffled ids): p=.65 -> {.4,.3}; p=.75 -> {.4,.3,.2}; p=.3 -> {.4}.
  const auto l = logits_from_probs({0.2, 0.4, 0.1, 0.3});
  struct Case { float top_p; std::vector<bool> keep; };
  const Case cases[] = {{0.65f, {false, true, false, true}},
                        {0.75f, {true, true, false, true}},
                        {0.3f, {false, true, false, false}},
                        {0.0f, {false, true, false, false}}};
  for (const auto& c : cases) {
    auto p = plain(1.0f, 11);
    p.top_p = c.top_p;
    const int n = 60000;
    expect_matches(histogram(p, l, n), expected_probs(l, 1.0f, c.keep), n);
  }
}

// The specification, computed the slow obvious way in double: full sort, top-k, top-p on the
// top-k distribution, then min-p relative to its max.
std::vector<bool> reference_keep(const std::vector<float>& logits, float temperature, int top_k,
                                 float top_p, float min_p) {
  std::vector<size_t> order(logits.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return logits[a] > logits[b]; });
  if (top_k > 0 && static_cast<size_t>(top_k) < order.size()) order.resize(static_cast<size_t>(top_k));
  std::vector<double> w;
  double z = 0.0;
  for (size_t id : order) {
    w.push_back(std::exp((logits[id] - logits[order[0]]) / temperature));
    z += w.back();
  }
  size_t n = order.size();
  if (top_p < 1.0f) {
    double cum = 0.0;
    for (size_t r = 0; r < order.size(); ++r) {
      cum += w[r] / z;
      if (cum >= top_p) {
        n = r + 1;
        break;
      }
    }
  }
  std::vector<bool> keep(logits.size(), false);
  for (size_t r = 0; r < n; ++r)
    if (w[r] >= min_p) keep[order[r]] = true;  // w[0] == 1 is the max probability
  return keep;
}

TEST(Sampler, LargeShuffledVocabMatchesReference) {
  // A slowly decaying distribution so the kept sets are hundreds of tokens, spanning many
  // vector blocks and histogram buckets, with ids shuffled so order has to be recovered, and a
  // vocabulary that is not a multiple of the vector width so the scalar tails run too.
  const size_t vocab = 3003;
  std::vector<float> l(vocab);
  std::vector<size_t> perm(vocab);
  std::iota(perm.begin(), perm.end(), size_t{0});
  std::shuffle(perm.begin(), perm.end(), std::mt19937(3));
  for (size_t r = 0; r < vocab; ++r) l[perm[r]] = -0.002f * static_cast<float>(r);

  struct Case { float temperature; int top_k; float top_p; float min_p; size_t min_kept; };
  const Case cases[] = {
      {1.0f, 0, 0.6f, 0.0f, 300},      // top-p alone over the whole vocabulary (~458 kept)
      {1.0f, 2500, 0.6f, 0.0f, 300},   // same through the top-k heap path
      {1.0f, 0, 0.9f, 0.5f, 300},      // min-p tighter than top-p (~347 kept)
      {0.5f, 0, 0.3f, 0.2f, 60},       // top-p tighter than min-p (~89 kept)
      {1.0f, 1000, 0.99f, 0.0f, 900},  // top-p on the top-k distribution (~969 kept)
      {1.0f, 0, 1.0f, 0.3f, 300},      // min-p alone (~602 kept)
      {1.0f, 2000, 1.0f, 0.3f, 300},   // min-p alone through the top-k path
  };
  uint64_t seed = 100;
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.temperature << " k=" << c.top_k
                                    << " p=" << c.top_p << " min_p=" << c.min_p);
    const auto keep = reference_keep(l, c.temperature, c.top_k, c.top_p, c.min_p);
    ASSERT_GE(static_cast<size_t>(std::count(keep.begin(), keep.end(), true)), c.min_kept);
    auto p = plain(c.temperature, seed++);
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    const int n = 30000;  // >= 30 expected draws per kept token: fine for chi-square
    expect_matches(histogram(p, l, n), expected_probs(l, c.temperature, keep), n);
  }
}

TEST(Sampler, MinPKeepsTokensAboveFractionOfMax) {
  // probs .5 .3 .1 .06 .04: min_p .15 -> threshold .075 -> {.5,.3,.1}.
  const auto l = logits_from_probs({0.06, 0.5, 0.04, 0.1, 0.3});
  auto p = plain(1.0f, 8);
  p.min_p = 0.15f;
  const int n = 80000;
  expect_matches(histogram(p, l, n), expected_probs(l, 1.0f, {false, true, false, true, true}), n);

  // min_p above 1 still keeps the top token.
  p.min_p = 2.0f;
  expect_matches(histogram(p, l, 1000), expected_probs(l, 1.0f, {false, true, false, false, false}), 1000);
}

TEST(Sampler, TopPThenMinPKeepsTheTighterCut) {
  // probs .4 .3 .15 .1 .05
  const auto l = logits_from_probs({0.4, 0.3, 0.15, 0.1, 0.05});
  const int n = 80000;
  {  // top-p (.8 -> 3 tokens: cum .4 .7 .85) tighter than min-p (.1 -> threshold .04 keeps 5)
    auto p = plain(1.0f, 31);
    p.top_p = 0.8f;
    p.min_p = 0.1f;
    expect_matches(histogram(p, l, n), expected_probs(l, 1.0f, {true, true, true, false, false}), n);
  }
  {  // min-p (.5 -> threshold .2 keeps 2) tighter than top-p (.95 keeps 5)
    auto p = plain(1.0f, 32);
    p.top_p = 0.95f;
    p.min_p = 0.5f;
    expect_matches(histogram(p, l, n), expected_probs(l, 1.0f, {true, true, false, false, false}), n);
  }
  {  // all four filters together, with temperature: T=2 flattens to
     // weights [.632 .548 .387 .316 .224 .082(the -5)]; top-k 5 drops id 5, top-p .7 keeps 3
     // (cum .30 .56 .74 of the top-5 mass), min-p .3 (weight >= .19) keeps all three.
    auto l2 = l;
    l2.push_back(-5.0f);
    auto p = plain(2.0f, 33);
    p.top_k = 5;
    p.top_p = 0.7f;
    p.min_p = 0.3f;
    expect_matches(histogram(p, l2, n), expected_probs(l2, 2.0f, {true, true, true, false, false, false}), n);
  }
}

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  auto p = plain(0.0f);  // greedy: penalties applied, logits left in place for inspection
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 0.5f, 0.0f};
  const std::vector<int32_t> hist = {0, 1, 1, 3, 3, 3};
  s.sample(l, hist);
  // Once per distinct token, however often it occurs.
  EXPECT_FLOAT_EQ(l[0], 1.0f);
  EXPECT_FLOAT_EQ(l[1], -4.0f);
  EXPECT_FLOAT_EQ(l[2], 1.0f);
  EXPECT_FLOAT_EQ(l[3], 0.25f);
  EXPECT_FLOAT_EQ(l[4], 0.0f);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  auto p = plain(0.0f);
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p);
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 0.5f};
  s.sample(l, std::vector<int32_t>{0, 1, 1, 3, 3, 3});
  EXPECT_FLOAT_EQ(l[0], 2.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(l[1], -2.0f - 0.5f - 0.5f);
  EXPECT_FLOAT_EQ(l[2], 1.0f);
  EXPECT_FLOAT_EQ(l[3], 0.5f - 0.5f - 0.75f);
}

TEST(Sampler, PenaltiesCombineAndRespectWindow) {
  auto p = plain(0.0f);
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 1.0f;
  const std::vector<int32_t> hist = {0, 0, 2, 1, 1};
  {
    p.penalty_last_n = 2;  // sees only {1, 1}
    Sampler s(p);
    std::vector<float> l = {4.0f, 4.0f, 4.0f};
    s.sample(l, hist);
    EXPECT_FLOAT_EQ(l[0], 4.0f);
    EXPECT_FLOAT_EQ(l[1], 4.0f / 2.0f - 2.0f);  // repetition first, then frequency
    EXPECT_FLOAT_EQ(l[2], 4.0f);
  }
  {
    p.penalty_last_n = -1;  // whole history
    Sampler s(p);
    std::vector<float> l = {4.0f, 4.0f, 4.0f};
    s.sample(l, hist);
    EXPECT_FLOAT_EQ(l[0], 0.0f);
    EXPECT_FLOAT_EQ(l[1], 0.0f);
    EXPECT_FLOAT_EQ(l[2], 1.0f);
  }
  {
    p.penalty_last_n = 0;  // disabled
    Sampler s(p);
    std::vector<float> l = {4.0f, 4.0f, 4.0f};
    s.sample(l, hist);
    EXPECT_FLOAT_EQ(l[0], 4.0f);
    EXPECT_FLOAT_EQ(l[1], 4.0f);
  }
  {
    p.penalty_last_n = 100;  // larger than history; out-of-range ids ignored
    Sampler s(p);
    std::vector<float> l = {4.0f, 4.0f, 4.0f};
    s.sample(l, std::vector<int32_t>{-1, 7, 2});
    EXPECT_FLOAT_EQ(l[0], 4.0f);
    EXPECT_FLOAT_EQ(l[2], 1.0f);
  }
}

TEST(Sampler, PenaltyChangesTheChoice) {
  auto p = plain(0.0f);
  p.repetition_penalty = 1.5f;
  Sampler s(p);
  std::vector<float> l = {3.0f, 2.5f};
  EXPECT_EQ(s.sample(l, std::vector<int32_t>{0}), 1);
}

TEST(Sampler, OnlyOneFiniteLogit) {
  std::vector<float> base(1000, -kInf);
  base[777] = -5.0f;
  std::vector<SamplingParams> variants;
  variants.push_back(plain(0.0f));
  variants.push_back(plain(1.0f));
  variants.push_back(SamplingParams{});  // defaults
  auto p = plain(1.0f);
  p.top_p = 0.5f;
  variants.push_back(p);
  p.min_p = 0.9f;
  p.top_k = 10;
  variants.push_back(p);
  for (const auto& v : variants) {
    Sampler s(v);
    std::vector<float> l;
    for (int i = 0; i < 20; ++i) {
      l = base;
      EXPECT_EQ(s.sample(l, {}), 777);
    }
  }
}

TEST(Sampler, DegenerateLogitsNeverProduceGarbage) {
  SamplingParams p;  // defaults
  p.seed = 5;
  Sampler s(p);
  {  // everything -inf: no distribution, but still a valid id
    std::vector<float> l(10, -kInf);
    const int32_t t = s.sample(l, {});
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 10);
  }
  {  // NaNs are never drawn
    for (int i = 0; i < 200; ++i) {
      std::vector<float> l = {kNaN, 0.0f, kNaN, 0.0f, kNaN};
      const int32_t t = s.sample(l, {});
      EXPECT_TRUE(t == 1 || t == 3) << t;
    }
  }
  {  // +inf wins outright
    std::vector<float> l = {1.0f, kInf, 2.0f, kInf};
    EXPECT_EQ(s.sample(l, {}), 1);
  }
  {  // tiny temperature must not overflow into NaN: behaves as argmax
    auto q = plain(1e-30f);
    Sampler tiny(q);
    for (int i = 0; i < 20; ++i) {
      std::vector<float> l = {1.0f, 1.5f, 1.49f, -3.0f};
      EXPECT_EQ(tiny.sample(l, {}), 1);
    }
  }
  {  // huge logits
    auto q = plain(1.0f, 3);
    Sampler big(q);
    for (int i = 0; i < 20; ++i) {
      std::vector<float> l = {3e38f, -3e38f, 2.9e38f};
      EXPECT_EQ(big.sample(l, {}), 0);
    }
  }
}

TEST(Sampler, VocabOfOne) {
  for (auto p : {plain(0.0f), plain(1.0f), SamplingParams{}}) {
    p.repetition_penalty = 1.3f;
    p.presence_penalty = 0.7f;
    Sampler s(p);
    for (int i = 0; i < 5; ++i) {
      std::vector<float> l = {0.3f};
      EXPECT_EQ(s.sample(l, std::vector<int32_t>{0, 0}), 0);
    }
  }
}

TEST(Sampler, TopKLargerThanVocab) {
  const std::vector<float> l = {0.0f, 1.0f, 2.0f};
  auto p = plain(1.0f, 9);
  p.top_k = 100;
  const int n = 50000;
  expect_matches(histogram(p, l, n), expected_probs(l, 1.0f, {true, true, true}), n);
}

TEST(Sampler, FullSizeVocabulary) {
  // Smoke test on a Gemma-sized vocabulary, with and without top-k, reusing one sampler.
  const size_t vocab = 262144;
  std::vector<float> base(vocab);
  std::mt19937 gen(12);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (float& v : base) v = nd(gen);
  SamplingParams with_k;
  with_k.seed = 1;
  auto no_k = with_k;
  no_k.top_k = 0;
  no_k.min_p = 0.0f;
  no_k.top_p = 0.9f;
  for (const auto& p : {with_k, no_k}) {
    Sampler s(p);
    std::vector<float> l;
    std::vector<int32_t> hist;
    for (int i = 0; i < 20; ++i) {
      l = base;
      const int32_t t = s.sample(l, hist);
      ASSERT_GE(t, 0);
      ASSERT_LT(t, static_cast<int32_t>(vocab));
      hist.push_back(t);
    }
  }
}

// The k best of a row as Backend::top_k_rows gives them, computed the plain way: every finite or
// +inf logit, sorted larger first with ties to the lower id, padded with (-inf, -1).
void best_of(const std::vector<float>& l, size_t k, std::vector<float>& values, std::vector<int32_t>& ids) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < l.size(); ++i)
    if (l[i] > -kInf) order.push_back(static_cast<int32_t>(i));
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
  values.assign(k, -kInf);
  ids.assign(k, -1);
  for (size_t i = 0; i < k && i < order.size(); ++i) {
    ids[i] = order[i];
    values[i] = l[size_t(order[i])];
  }
}

TEST(Sampler, BestNeededSaysWhenTheWholeRowIsNeeded) {
  SamplingParams p;  // defaults: T 0.8, top-k 40
  EXPECT_EQ(Sampler(p).best_needed(1000), 40);
  EXPECT_EQ(Sampler(p).best_needed(40), 0);  // top-k of the whole vocabulary: sample() uses the row
  p.top_k = 0;
  EXPECT_EQ(Sampler(p).best_needed(1000), 0);  // top-p over the whole vocabulary
  p.top_k = 7;
  p.temperature = 0.0f;
  EXPECT_EQ(Sampler(p).best_needed(1000), 1);  // greedy
  p.temperature = 1e-45f;
  EXPECT_EQ(Sampler(p).best_needed(1000), 1);  // 1/T is infinite: an argmax
  p.temperature = 0.8f;
  p.repetition_penalty = 1.1f;
  EXPECT_EQ(Sampler(p).best_needed(1000), 0);  // penalties edit logits the device never sent
  p.repetition_penalty = 1.0f;
  p.presence_penalty = 0.5f;
  EXPECT_EQ(Sampler(p).best_needed(1000), 0);
}

TEST(Sampler, SampleBestDrawsWhatSampleDraws) {
  // Same seed, same draws: sample() on the whole row and sample_best() on its k best (with more
  // than k given, as in a batch whose largest k is another row's), over rows with ties, -inf,
  // NaN, +inf, fewer finite logits than k, and every filter.
  std::mt19937 gen(77);
  std::normal_distribution<float> nd(0.0f, 1.5f);
  struct Case { float temperature; int top_k; float top_p; float min_p; };
  const Case cases[] = {{0.8f, 40, 0.95f, 0.05f}, {1.0f, 5, 1.0f, 0.0f}, {1.3f, 100, 0.5f, 0.0f},
                        {0.7f, 1, 1.0f, 0.0f},    {2.0f, 64, 1.0f, 0.2f}, {0.0f, 40, 0.9f, 0.1f},
                        {1e-45f, 10, 0.9f, 0.0f}, {1.0f, 1000, 0.99f, 0.01f}};
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.temperature << " k=" << c.top_k << " p=" << c.top_p
                                    << " min_p=" << c.min_p);
    SamplingParams p;
    p.temperature = c.temperature;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.seed = 4242;
    Sampler whole(p), best(p);
    const size_t k = static_cast<size_t>(best.best_needed(2000));
    ASSERT_GE(k, 1u);
    for (int row = 0; row < 200; ++row) {
      // A top-k at or above the vocabulary size is no top-k: sample() then works on the whole row,
      // and callers do not ask for best logits (Sampler::best_needed).
      const size_t vocab = row % 7 == 6 && k < 30 ? 30 : 2000;
      std::vector<float> l(vocab);
      for (float& v : l) v = std::round(nd(gen) * 8.0f) / 8.0f;  // coarse: many exact ties
      if (row % 5 == 1) l[size_t(row) % vocab] = kNaN;
      if (row % 5 == 2) std::fill(l.begin() + long(vocab / 2), l.end(), -kInf);
      if (row % 23 == 3) l[17] = kInf, l[5] = kInf;
      if (row % 31 == 4) std::fill(l.begin(), l.end(), -kInf);
      if (row % 13 == 5) std::fill(l.begin() + 3, l.end(), kNaN);  // fewer finite logits than k
      std::vector<float> values;
      std::vector<int32_t> ids;
      best_of(l, k + 3, values, ids);
      std::vector<float> scratch = l;
      const int32_t a = whole.sample(scratch, {});
      const int32_t b = best.sample_best(values, ids);
      ASSERT_EQ(a, b) << "row " << row;
    }
  }
}

TEST(Sampler, SampleBestRefusesTooFewEntries) {
  SamplingParams p;
  p.top_k = 8;
  Sampler s(p);
  std::vector<float> v(4, 1.0f);
  std::vector<int32_t> ids = {0, 1, 2, 3};
  EXPECT_THROW(s.sample_best(v, ids), Error);
  p.top_k = 0;
  EXPECT_THROW(Sampler(p).sample_best(v, ids), Error);
}

}  // namespace
}  // namespace squeeze
