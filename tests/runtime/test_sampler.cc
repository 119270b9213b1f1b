// Sampler: greedy, seeded reproducibility, the filters (top-k, top-p, min-p), repetition
// penalty, and the frequencies of plain temperature-1 sampling.
#include "herd/runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "herd/ops/gemm.h"

namespace herd {
namespace {

std::vector<float> log_probs(std::initializer_list<double> p) {
  std::vector<float> l;
  for (double x : p) l.push_back(float(std::log(x)));
  return l;
}

std::vector<float> pseudo_random_logits(int64_t n, uint64_t seed) {
  Xoshiro256 rng(seed);
  std::vector<float> l(static_cast<size_t>(n));
  for (float& x : l) x = float(rng.uniform() * 8.0 - 4.0);
  return l;
}

std::vector<int32_t> draw_many(const SamplingParams& p, const std::vector<float>& logits, int n) {
  Sampler s(p);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.sample(logits.data(), int64_t(logits.size()), {}));
  return out;
}

// Golden values from an independent (Python) transcription of splitmix64 + xoshiro256**: the
// generator is specified bit for bit, so every platform must produce these.
TEST(Xoshiro256, GoldenValues) {
  Xoshiro256 rng(12345);
  EXPECT_EQ(rng.next(), 0xbe6a36374160d49bull);
  EXPECT_EQ(rng.next(), 0x214aaa0637a688c6ull);
  EXPECT_EQ(rng.next(), 0xf69d16de9954d388ull);
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(Sampler, GreedyPicksArgmaxFirstOnTies) {
  Sampler s(SamplingParams{});
  const std::vector<float> l = {0.1f, 3.0f, -2.0f, 3.0f, 1.0f};
  EXPECT_EQ(s.sample(l.data(), 5, {}), 1);
  const std::vector<float> r = pseudo_random_logits(5000, 7);
  int64_t best = 0;
  for (int64_t i = 1; i < 5000; ++i)
    if (r[size_t(i)] > r[size_t(best)]) best = i;
  EXPECT_EQ(s.sample(r.data(), 5000, {}), best);
}

// Plain greedy decoding searches the logits directly; a zero logit bias takes the general path
// (the cleaned copy the filters read, where NaN became -inf). Both must pick the same id on every
// shape: NaN ranking last, -inf, ties (first index), the maximum in the tail that does not fill a
// 16-lane block, vocabularies shorter than one block, and nothing above -inf (id 0).
TEST(Sampler, GreedyFastPathMatchesCandidateList) {
  SamplingParams general;
  general.logit_bias = {{0, 0.0f}};
  Sampler fast(SamplingParams{}), slow(general);
  const float nan = std::nanf(""), inf = INFINITY;
  std::vector<std::vector<float>> cases = {
      {nan, 1.0f, 2.0f},      {nan, nan, nan},    {-inf, -inf},
      {nan, -inf, -inf, nan}, {2.0f, 2.0f, 1.0f}, {1.0f},
      {-1.0f, nan, -0.5f},    {inf, 1.0f, inf},   {0.0f, -0.0f, -1.0f}};
  for (int64_t n : {15, 16, 17, 33, 1000, 32768, 202048}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      std::vector<float> l = pseudo_random_logits(n, seed * 131 + uint64_t(n));
      if (seed == 2) l[size_t(n - 1)] = 9.0f;  // the maximum in the last (partial) block
      if (seed == 3) {                         // ties across blocks, NaN before them
        l[size_t(n / 3)] = nan;
        l[size_t(n / 2)] = l[size_t(n - 1)] = 8.0f;
      }
      cases.push_back(l);
    }
  }
  for (const std::vector<float>& l : cases) {
    const int64_t n = int64_t(l.size());
    const int32_t want = slow.sample(l.data(), n, {});
    EXPECT_EQ(fast.sample(l.data(), n, {}), want) << "vocab " << n;
    // Penalties that do not apply (nothing recent or generated) keep the fast path.
    SamplingParams rp;
    rp.repetition_penalty = 1.3f;
    rp.presence_penalty = 0.5f;
    EXPECT_EQ(Sampler(rp).sample(l.data(), n, {}, {}), want) << "vocab " << n;
  }
  // A penalty that applies leaves the fast path: the penalised top token loses to the next.
  SamplingParams rp;
  rp.repetition_penalty = 4.0f;
  const std::vector<float> l = {1.0f, 3.0f, 2.0f};
  const int32_t recent[] = {1};
  EXPECT_EQ(Sampler(rp).sample(l.data(), 3, recent), 2);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedsDiffer) {
  const std::vector<float> l = pseudo_random_logits(1000, 8);
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  const auto a = draw_many(p, l, 200), b = draw_many(p, l, 200);
  EXPECT_EQ(a, b);
  p.seed = 43;
  EXPECT_NE(a, draw_many(p, l, 200));
}

TEST(Sampler, TopK1AndTinyTopPAreGreedy) {
  const std::vector<float> l = pseudo_random_logits(3000, 9);
  const int32_t greedy = Sampler(SamplingParams{}).sample(l.data(), 3000, {});
  SamplingParams k1;
  k1.temperature = 1.5f;
  k1.top_k = 1;
  k1.seed = 1;
  for (int32_t t : draw_many(k1, l, 50)) EXPECT_EQ(t, greedy);
  SamplingParams tiny_p;
  tiny_p.temperature = 1.5f;
  tiny_p.top_p = 1e-6f;
  tiny_p.seed = 2;
  for (int32_t t : draw_many(tiny_p, l, 50)) EXPECT_EQ(t, greedy);
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
  const std::vector<float> l = log_probs({0.05, 0.4, 0.1, 0.3, 0.15});
  SamplingParams k2;
  k2.temperature = 1.0f;
  k2.top_k = 2;
  k2.seed = 3;
  for (int32_t t : draw_many(k2, l, 500)) EXPECT_TRUE(t == 1 || t == 3) << t;
  // Sorted: 0.4, 0.3, 0.15, ... -> 0.4 + 0.3 = 0.7 reaches top_p 0.7; 0.75 needs the third.
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.69f;
  p.seed = 4;
  for (int32_t t : draw_many(p, l, 500)) EXPECT_TRUE(t == 1 || t == 3) << t;
  p.top_p = 0.75f;
  bool saw_third = false;
  for (int32_t t : draw_many(p, l, 2000)) {
    EXPECT_TRUE(t == 1 || t == 3 || t == 4) << t;
    saw_third |= t == 4;
  }
  EXPECT_TRUE(saw_third);
}

// Top-p over a large vocabulary goes through selection rounds instead of a sort: the tokens it
// can draw must be exactly the sorted definition's nucleus (the best tokens, ties by lower id,
// whose mass first reaches top_p), here computed by a full sort. Logits on a coarse grid make
// many ties, so the cut falls inside a run of equal logits and the id order decides it.
TEST(Sampler, TopPOnLargeVocabularyKeepsExactlyTheSortedNucleus) {
  for (float top_p : {0.3f, 0.9f}) {
    const int64_t V = 50000;
    std::vector<float> l = pseudo_random_logits(V, 77);
    for (float& x : l) x = std::round(x * 4) / 4;  // 33 levels
    std::vector<int32_t> order(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) order[size_t(i)] = int32_t(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return l[size_t(a)] > l[size_t(b)] || (l[size_t(a)] == l[size_t(b)] && a < b);
    });
    const float mx = l[size_t(order[0])];
    double total = 0, cum = 0;
    for (float x : l) total += std::exp(double(x) - mx);
    std::vector<bool> in(static_cast<size_t>(V), false);
    size_t cut = 0;
    while (cum < double(top_p) * total) {
      in[size_t(order[cut])] = true;
      cum += std::exp(double(l[size_t(order[cut++])]) - mx);
    }
    ASSERT_GT(cut, 100u);                                         // the selection rounds really ran
    ASSERT_EQ(l[size_t(order[cut - 1])], l[size_t(order[cut])]);  // the cut splits a tie
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_p = top_p;
    p.seed = 11;
    std::vector<int32_t> drawn = draw_many(p, l, 1500);
    for (int32_t t : drawn) ASSERT_TRUE(in[size_t(t)]) << "token " << t << " outside the nucleus";
    // And the draws spread over the nucleus (not stuck on its best few).
    std::vector<int32_t> distinct = drawn;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    EXPECT_GT(distinct.size(), std::min<size_t>(cut / 8, 300));
  }
}

TEST(Sampler, MinPFiltersRelativeToMax) {
  const std::vector<float> l = log_probs({0.5, 0.3, 0.15, 0.05});
  SamplingParams p;
  p.temperature = 1.0f;
  p.min_p = 0.2f;  // keeps p >= 0.1: tokens 0, 1, 2
  p.seed = 5;
  int counts[4] = {};
  for (int32_t t : draw_many(p, l, 3000)) ++counts[t];
  EXPECT_EQ(counts[3], 0);
  EXPECT_GT(counts[2], 0);
  p.min_p = 0.7f;  // 0.3 / 0.5 = 0.6 < 0.7: only the max survives
  for (int32_t t : draw_many(p, l, 200)) EXPECT_EQ(t, 0);
}

// Plain temperature-1 sampling reproduces the distribution: each count within 5 sigma of the
// binomial expectation (the seed is fixed, so this is deterministic, not flaky).
TEST(Sampler, FrequenciesMatchDistribution) {
  const double probs[] = {0.2, 0.3, 0.5};
  const std::vector<float> l = log_probs({0.2, 0.3, 0.5});
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 6;
  const int n = 20000;
  int counts[3] = {};
  for (int32_t t : draw_many(p, l, n)) ++counts[t];
  for (int i = 0; i < 3; ++i) {
    const double mean = n * probs[i], sigma = std::sqrt(n * probs[i] * (1 - probs[i]));
    EXPECT_NEAR(counts[i], mean, 5 * sigma) << "token " << i;
  }
  // Temperature 0.5 squares the odds: 0.04 : 0.09 : 0.25.
  p.temperature = 0.5f;
  int c2[3] = {};
  for (int32_t t : draw_many(p, l, n)) ++c2[t];
  const double q[] = {0.04 / 0.38, 0.09 / 0.38, 0.25 / 0.38};
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(c2[i], n * q[i], 5 * std::sqrt(n * q[i] * (1 - q[i]))) << "token " << i;
}

TEST(Sampler, RepetitionPenaltyChangesArgmax) {
  SamplingParams p;
  p.repetition_penalty = 1.5f;
  Sampler s(p);
  // Positive logit divided: 2.0 / 1.5 = 1.33 < 1.8.
  const std::vector<float> l = {2.0f, 1.8f, -1.0f, 0.5f};
  const std::vector<int32_t> recent = {0, 0, 2, -1, 99};  // repeats and out-of-range ids are fine
  EXPECT_EQ(Sampler(SamplingParams{}).sample(l.data(), 4, recent), 0);
  EXPECT_EQ(s.sample(l.data(), 4, recent), 1);
  // Negative logit multiplied: -1.0 * 1.5 = -1.5 < -1.2.
  const std::vector<float> neg = {-1.0f, -1.2f};
  const std::vector<int32_t> r0 = {0};
  EXPECT_EQ(s.sample(neg.data(), 2, r0), 1);
  EXPECT_EQ(s.sample(neg.data(), 2, {}), 0);
  // Applied once per distinct token: many repeats of token 0 do not compound.
  const std::vector<float> close = {1.5f, 1.0f};
  const std::vector<int32_t> many(10, 0);
  EXPECT_EQ(s.sample(close.data(), 2, many), 0);  // 1.5 / 1.5 = 1.0 ties, first wins
}

// OpenAI's additive penalties count only generated tokens: logit -= presence·[c > 0] +
// frequency·c. Worked on three logits where the argmax moves as the counts grow.
TEST(Sampler, PresenceAndFrequencyPenaltiesCountGeneratedTokens) {
  const std::vector<float> l = {3.0f, 2.5f, 1.0f};
  const std::vector<int32_t> prompt = {0, 0, 0, 0};  // the prompt never counts
  SamplingParams pres;
  pres.presence_penalty = 0.6f;  // 3.0 - 0.6 = 2.4 < 2.5
  Sampler sp(pres);
  EXPECT_EQ(sp.sample(l.data(), 3, prompt, {}), 0);
  const std::vector<int32_t> once = {0}, thrice = {0, 0, 0};
  EXPECT_EQ(sp.sample(l.data(), 3, prompt, once), 1);
  EXPECT_EQ(sp.sample(l.data(), 3, prompt, thrice), 1);  // presence does not grow with count
  SamplingParams freq;
  freq.frequency_penalty = 0.2f;  // 3.0 - 0.2c: 2.8, 2.6, 2.4 against 2.5
  Sampler sf(freq);
  const std::vector<int32_t> twice = {0, 7, 0};  // out-of-range ids are ignored
  EXPECT_EQ(sf.sample(l.data(), 3, {}, once), 0);
  EXPECT_EQ(sf.sample(l.data(), 3, {}, twice), 0);
  EXPECT_EQ(sf.sample(l.data(), 3, {}, thrice), 1);
  // Negative penalties encourage repeats.
  SamplingParams enc;
  enc.frequency_penalty = -1.0f;
  const std::vector<int32_t> one_two = {2}, four_twos = {2, 2, 2, 2};
  EXPECT_EQ(Sampler(enc).sample(l.data(), 3, {}, one_two), 0);    // 1.0 + 1 = 2.0 < 3.0
  EXPECT_EQ(Sampler(enc).sample(l.data(), 3, {}, four_twos), 2);  // 1.0 + 4 = 5.0 > 3.0
}

TEST(Sampler, LogitBiasIsAddedFirst) {
  const std::vector<float> l = {1.0f, 0.5f, 0.0f};
  SamplingParams p;
  p.logit_bias = {{2, 1.5f}, {9, 100.0f}};  // 0 + 1.5 = 1.5 > 1.0; id 9 is outside: ignored
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {}), 2);
  p.logit_bias = {{0, -100.0f}};
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {}), 1);
  // With sampling, a -100 bias removes a token in practice.
  p.temperature = 1.0f;
  p.seed = 5;
  Sampler s(p);
  for (int i = 0; i < 200; ++i) EXPECT_NE(s.sample(l.data(), 3, {}), 0);
}

// The filter chain of sampler.h transcribed plainly: every id sorted by (logit desc, id asc),
// NaN as -inf; top-k; top-p over the softmax of what is left (untempered); min-p; then
// softmax(logit / T). All in double. Returns (id, probability) in id order.
std::vector<std::pair<int32_t, double>> sorted_reference(const std::vector<float>& logits,
                                                         const SamplingParams& p) {
  const int64_t V = int64_t(logits.size());
  std::vector<double> l(logits.size());
  for (size_t i = 0; i < l.size(); ++i) l[i] = std::isnan(logits[i]) ? -INFINITY : logits[i];
  std::vector<int32_t> order(l.size());
  for (int64_t i = 0; i < V; ++i) order[size_t(i)] = int32_t(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return l[size_t(a)] > l[size_t(b)] || (l[size_t(a)] == l[size_t(b)] && a < b);
  });
  const double mx = l[size_t(order[0])];
  int64_t n = p.top_k > 0 && p.top_k < V ? p.top_k : V;
  if (p.top_p < 1.0f) {
    double total = 0, cum = 0;
    for (int64_t i = 0; i < n; ++i) total += std::exp(l[size_t(order[size_t(i)])] - mx);
    for (int64_t i = 0; i < n; ++i)
      if ((cum += std::exp(l[size_t(order[size_t(i)])] - mx)) >= double(p.top_p) * total) {
        n = i + 1;
        break;
      }
  }
  if (p.min_p > 0.0f) {
    const double floor = mx + std::log(double(p.min_p));
    int64_t m = 0;
    while (m < n && l[size_t(order[size_t(m)])] >= floor) ++m;
    n = std::max<int64_t>(m, 1);
  }
  std::vector<std::pair<int32_t, double>> out;
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double w = std::exp((l[size_t(order[size_t(i)])] - mx) / double(p.temperature));
    if (w > 0) out.emplace_back(order[size_t(i)], w), total += w;
  }
  for (auto& [id, q] : out) q /= total;
  std::sort(out.begin(), out.end());
  return out;
}

enum class Shape { kFlat, kZipf, kGrid };

// Flat: uniform in [-8, 8] (a random-weight model's); Zipf: p ∝ rank^-1.5 over shuffled ids (a
// trained model's); grid: 33 levels, so cuts fall inside runs of ties. A few NaN and -inf.
std::vector<float> shaped_logits(int64_t V, Shape shape, uint64_t seed) {
  Xoshiro256 rng(seed);
  std::vector<float> l(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) {
    const double u = rng.uniform();
    l[size_t(i)] = shape == Shape::kZipf   ? float(-1.5 * std::log(double(i + 1)))
                   : shape == Shape::kGrid ? float(std::round(u * 32.0) / 4.0 - 4.0)
                                           : float(u * 16.0 - 8.0);
  }
  if (shape == Shape::kZipf)
    for (int64_t i = V - 1; i > 0; --i)
      std::swap(l[size_t(i)], l[size_t(rng.next() % uint64_t(i + 1))]);
  l[size_t(V / 7)] = std::nanf("");
  l[size_t(V / 5)] = -INFINITY;
  return l;
}

std::vector<SamplingParams> chains() {
  std::vector<SamplingParams> out;
  auto add = [&](float t, int k, float top_p, float min_p) {
    SamplingParams p;
    p.temperature = t, p.top_k = k, p.top_p = top_p, p.min_p = min_p, p.seed = out.size() + 1;
    out.push_back(p);
  };
  add(1.0f, 0, 1.0f, 0.0f);     // plain temperature over the whole vocabulary
  add(0.6f, 0, 0.9f, 0.0f);     // Llama 4's generation_config.json
  add(0.8f, 40, 0.95f, 0.05f);  // llama.cpp's defaults
  add(1.5f, 0, 1.0f, 0.1f);     // min-p alone
  add(0.7f, 0, 0.5f, 0.02f);    // top-p then min-p
  add(1.0f, 1000, 1.0f, 0.0f);  // a large top-k
  add(1.0f, 0, 0.999f, 0.0f);   // a nucleus of most of a flat vocabulary
  return out;
}

// What the sampler draws from equals the sorted transcription: the same ids, each probability
// within 1e-5 relative (the weights are float exps within 2 ulp; sums are in double).
TEST(Sampler, DistributionMatchesSortedReference) {
  for (int64_t V : {1000, 50000, 202048})
    for (Shape shape : {Shape::kFlat, Shape::kZipf, Shape::kGrid})
      for (const SamplingParams& p : chains()) {
        const std::vector<float> l = shaped_logits(V, shape, uint64_t(V) + uint64_t(shape));
        const auto want = sorted_reference(l, p);
        auto got = Sampler(p).distribution(l.data(), V, {});
        std::sort(got.begin(), got.end());
        const std::string what = "V " + std::to_string(V) + " shape " + std::to_string(int(shape)) +
                                 " chain " + std::to_string(p.seed);
        ASSERT_EQ(got.size(), want.size()) << what;
        double sum = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(got[i].first, want[i].first) << what;
          ASSERT_NEAR(got[i].second, want[i].second, 1e-5 * want[i].second + 1e-15) << what;
          sum += got[i].second;
        }
        EXPECT_NEAR(sum, 1.0, 1e-9) << what;
      }
}

// Seeded draws are the same tokens on every ISA the machine has (the weights and their sums
// have the same bits everywhere).
TEST(Sampler, SameDrawsOnEveryIsa) {
  for (Shape shape : {Shape::kFlat, Shape::kZipf}) {
    const std::vector<float> l = shaped_logits(50000, shape, 21);
    for (const SamplingParams& p : chains()) {
      force_isa(Isa::kScalar);
      const std::vector<int32_t> want = draw_many(p, l, 40);
      for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
        if (isa > detected_isa()) continue;
        force_isa(isa);
        EXPECT_EQ(draw_many(p, l, 40), want) << isa_name(isa) << " chain " << p.seed;
      }
    }
  }
  force_isa(detected_isa());
}

// The draw follows distribution(): 100,000 draws over 5,000 ids (40 blocks of 128), grouped by
// id range and by id mod 16 (the lanes the draw walks within a block), each within a chi-square
// bound of 6 sigma; and never an id of probability 0. Seeded, so deterministic.
TEST(Sampler, DrawsFollowTheDistribution) {
  const int64_t V = 5000;
  std::vector<float> l = pseudo_random_logits(V, 99);
  for (float& x : l) x *= 0.5f;
  for (int64_t i = 0; i < V; i += 97) l[size_t(i)] = -INFINITY;
  for (const SamplingParams& p : {chains()[0], chains()[4], chains()[6]}) {
    Sampler s(p);
    const auto dist = s.distribution(l.data(), V, {});
    std::map<int32_t, double> prob(dist.begin(), dist.end());
    const int n = 40000;
    std::vector<double> by_range(50), by_lane(16), want_range(50), want_lane(16);
    for (const auto& [id, q] : dist) {
      want_range[size_t(id / 100)] += q * n;
      want_lane[size_t(id % 16)] += q * n;
    }
    for (int i = 0; i < n; ++i) {
      const int32_t t = s.sample(l.data(), V, {});
      ASSERT_GT(prob[t], 0.0) << "drew id " << t << " of probability 0";
      by_range[size_t(t / 100)] += 1;
      by_lane[size_t(t % 16)] += 1;
    }
    auto chi2 = [](const std::vector<double>& got, const std::vector<double>& want) {
      double c = 0;
      int dof = -1;
      for (size_t i = 0; i < got.size(); ++i)
        if (want[i] > 0) c += (got[i] - want[i]) * (got[i] - want[i]) / want[i], ++dof;
      return c - dof - 6 * std::sqrt(2.0 * dof);  // > 0: beyond 6 sigma
    };
    EXPECT_LT(chi2(by_range, want_range), 0) << "chain " << p.seed;
    EXPECT_LT(chi2(by_lane, want_lane), 0) << "chain " << p.seed;
  }
}

}  // namespace
}  // namespace herd
