#include "herd/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace herd {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

Xoshiro256::Xoshiro256(uint64_t seed) {
  for (uint64_t& s : s_) s = splitmix64(seed);  // never all zero (splitmix64 is a bijection)
}

uint64_t Xoshiro256::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Xoshiro256::uniform() {
  return double(next() >> 11) * 0x1.0p-53;
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

void Sampler::apply_penalty(const float* logits, int64_t vocab, std::span<const int32_t> recent,
                            std::span<const int32_t> generated) {
  // NaN would break the ordering below; it can never be a sensible choice, so it ranks last.
  cand_.resize(size_t(vocab));
  for (int64_t i = 0; i < vocab; ++i)
    cand_[size_t(i)] = {std::isnan(logits[i]) ? -INFINITY : logits[i], int32_t(i)};
  for (const auto& [id, bias] : params_.logit_bias)
    if (id >= 0 && id < vocab) cand_[size_t(id)].logit += bias;
  const float rp = params_.repetition_penalty;
  if (rp != 1.0f && !recent.empty()) {
    // CTRL-style penalty as in HF RepetitionPenaltyLogitsProcessor and llama.cpp's
    // penalty_repeat: once per distinct previous token, positive logits are divided by the
    // penalty and negative ones multiplied, so both become less likely.
    penalised_.assign(recent.begin(), recent.end());
    std::sort(penalised_.begin(), penalised_.end());
    penalised_.erase(std::unique(penalised_.begin(), penalised_.end()), penalised_.end());
    for (int32_t id : penalised_) {
      if (id < 0 || id >= vocab) continue;
      float& l = cand_[size_t(id)].logit;
      l = l > 0 ? l / rp : l * rp;
    }
  }
  const float pp = params_.presence_penalty, fp = params_.frequency_penalty;
  if ((pp != 0.0f || fp != 0.0f) && !generated.empty()) {
    penalised_.assign(generated.begin(), generated.end());
    std::sort(penalised_.begin(), penalised_.end());
    for (size_t i = 0; i < penalised_.size();) {
      size_t j = i;
      while (j < penalised_.size() && penalised_[j] == penalised_[i]) ++j;
      const int32_t id = penalised_[i];
      if (id >= 0 && id < vocab) cand_[size_t(id)].logit -= pp + fp * float(j - i);
      i = j;
    }
  }
}

namespace {
// Total order: higher logit first, lower id first among equal logits.
bool better(const auto& a, const auto& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}
}  // namespace

int64_t Sampler::keep_top_k(int64_t n, int64_t k) {
  if (k <= 0 || k >= n) {
    std::sort(cand_.begin(), cand_.begin() + n, [](auto& a, auto& b) { return better(a, b); });
    return n;
  }
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.begin() + n,
                    [](auto& a, auto& b) { return better(a, b); });
  return k;
}

int64_t Sampler::keep_top_p(int64_t n) {
  // Nucleus: the smallest prefix of the sorted candidates whose probability reaches top_p
  // (softmax of the candidates still kept, untempered); at least one token survives.
  const double top = cand_[0].logit;
  double total = 0;
  prob_.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i)
    total += prob_[size_t(i)] = std::exp(cand_[size_t(i)].logit - top);
  const double target = double(params_.top_p) * total;
  double cum = 0;
  for (int64_t i = 0; i < n; ++i) {
    cum += prob_[size_t(i)];
    if (cum >= target) return i + 1;
  }
  return n;
}

int64_t Sampler::keep_nucleus(int64_t n) {
  // The nucleus of keep_top_p — the best candidates (in `better` order) whose probability mass
  // first reaches top_p — found without sorting the vocabulary: a sort is O(V log V) per token
  // and sequence (20% of a 16-stream server step at V = 32k; Llama 4's V is 202k). Instead the
  // mass is binned by distance below the best logit (kPerNat bins per nat; everything past
  // kBins / kPerNat nats in the last bin). Bins are ordered like `better`, so the cut lies in
  // the first bin where the running mass reaches top_p: every candidate of an earlier bin is
  // kept, and only that bin's candidates are sorted and scanned as keep_top_p does. Two linear
  // passes. The kept prefix is left in vocabulary order, then the boundary bin's sorted head:
  // an order that depends only on the logits, so draws stay deterministic (any fixed order
  // samples the same distribution).
  constexpr int kPerNat = 64, kBins = 64 * 32;
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, cand_[size_t(i)].logit);
  if (mx == -INFINITY) return n;  // nothing has mass: draw() falls back to the first
  auto bin = [mx](float logit) {
    const float d = (mx - logit) * float(kPerNat);
    return d < float(kBins) ? int(d) : kBins;
  };
  bin_mass_.assign(kBins + 1, 0.0);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    Candidate& c = cand_[size_t(i)];
    c.w = std::exp(c.logit - mx);  // float exp: this loop covers the whole vocabulary
    bin_mass_[size_t(bin(c.logit))] += c.w;
    total += c.w;
  }
  const double target = double(params_.top_p) * total;
  double acc = 0;
  int cut = kBins;
  for (int b = 0; b <= kBins; ++b) {
    if (acc + bin_mass_[size_t(b)] >= target) {
      cut = b;
      break;
    }
    acc += bin_mass_[size_t(b)];
  }
  boundary_.clear();
  int64_t m = 0;  // compaction in place: position m <= i is free once cand_[i] is read
  for (int64_t i = 0; i < n; ++i) {
    const Candidate c = cand_[size_t(i)];
    const int b = bin(c.logit);
    if (b < cut)
      cand_[size_t(m++)] = c;
    else if (b == cut)
      boundary_.push_back(c);
  }
  std::sort(boundary_.begin(), boundary_.end(),
            [](const Candidate& x, const Candidate& y) { return better(x, y); });
  for (const Candidate& c : boundary_) {
    cand_[size_t(m++)] = c;
    acc += c.w;
    if (acc >= target) break;
  }
  return std::max<int64_t>(m, 1);
}

int64_t Sampler::keep_min_p(int64_t n) {
  // p_i >= min_p * p_max  <=>  logit_i >= max_logit + ln(min_p) (llama.cpp's formulation).
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, cand_[size_t(i)].logit);
  const double floor_logit = double(mx) + std::log(double(params_.min_p));
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i)
    if (double(cand_[size_t(i)].logit) >= floor_logit) cand_[size_t(m++)] = cand_[size_t(i)];
  return std::max<int64_t>(m, 1);  // the max always passes; guards against NaN min_p
}

int32_t Sampler::draw(int64_t n) {
  // softmax(logit / T): exp in float (the nucleus can be most of the vocabulary), sums in
  // double; then inverse-CDF with one 53-bit uniform.
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, cand_[size_t(i)].logit);
  if (mx == -INFINITY) return cand_[0].id;
  const double inv_t = 1.0 / double(params_.temperature);
  prob_.resize(size_t(n));
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    total += prob_[size_t(i)] = std::exp(float((cand_[size_t(i)].logit - mx) * inv_t));
  const double u = rng_.uniform() * total;
  double cum = 0;
  for (int64_t i = 0; i < n; ++i) {
    cum += prob_[size_t(i)];
    if (u < cum) return cand_[size_t(i)].id;
  }
  for (int64_t i = n - 1; i > 0; --i)  // rounding put u past the end: last non-zero
    if (prob_[size_t(i)] > 0) return cand_[size_t(i)].id;
  return cand_[0].id;
}

namespace {

// The first index of the largest logit, NaN ranking last (as apply_penalty's candidates);
// index 0 when no logit is above -inf. Two passes: a lane-wise max the compiler vectorizes, then
// the first index holding it. Used for plain greedy decoding, where building the candidate list
// of a 202k vocabulary cost more than the search.
int32_t argmax_first(const float* logits, int64_t vocab) {
  constexpr int kLanes = 16;
  float lane[kLanes];
  std::fill_n(lane, kLanes, -INFINITY);
  int64_t i = 0;
  for (; i + kLanes <= vocab; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float v = logits[i + j];
      lane[j] = v > lane[j] ? v : lane[j];  // false for NaN: it never becomes the max
    }
  float best = -INFINITY;
  for (; i < vocab; ++i) best = logits[i] > best ? logits[i] : best;
  for (float v : lane) best = v > best ? v : best;
  if (best == -INFINITY) return 0;
  for (int64_t k = 0; k < vocab; ++k)
    if (logits[k] == best) return int32_t(k);
  return 0;  // not reached: best is one of the logits
}

}  // namespace

int32_t Sampler::sample(const float* logits, int64_t vocab, std::span<const int32_t> recent,
                        std::span<const int32_t> generated) {
  if (vocab <= 0) return -1;
  const bool greedy = !(params_.temperature > 0.0f);
  const bool penalties = (params_.repetition_penalty != 1.0f && !recent.empty()) ||
                         ((params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) &&
                          !generated.empty());
  if (greedy && !penalties && params_.logit_bias.empty()) return argmax_first(logits, vocab);
  apply_penalty(logits, vocab, recent, generated);
  if (!(params_.temperature > 0.0f)) {  // greedy, first index on ties
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (cand_[size_t(i)].logit > cand_[size_t(best)].logit) best = i;
    return int32_t(best);
  }
  int64_t n = vocab;
  const bool use_top_p = params_.top_p < 1.0f;
  const bool top_k = params_.top_k > 0 && params_.top_k < n;
  if (top_k) n = keep_top_k(n, params_.top_k);  // a sorted prefix of k
  if (use_top_p) n = top_k ? keep_top_p(n) : keep_nucleus(n);
  if (params_.min_p > 0.0f) n = keep_min_p(n);
  return draw(n);
}

}  // namespace herd
