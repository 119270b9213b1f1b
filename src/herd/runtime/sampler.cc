#include "herd/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "herd/ops/logit_scan.h"

namespace herd {

namespace {

// Buffers only grow: a resize up value-initializes (a memset of the vocabulary per token when
// sizes alternate), and every user passes its own count.
template <class V>
void grow(V& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
}

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

float Sampler::apply_penalty(const float* logits, int64_t vocab, std::span<const int32_t> recent,
                             std::span<const int32_t> generated) {
  // NaN would break the ordering below; it can never be a sensible choice, so it ranks last.
  grow(x_, vocab);
  float* x = x_.data();
  const float clean_mx = clean_max(logits, vocab, x);
  bool changed = false;
  for (const auto& [id, bias] : params_.logit_bias)
    if (id >= 0 && id < vocab) x[id] += bias, changed = true;
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
      float& l = x[id];
      l = l > 0 ? l / rp : l * rp;
      changed = true;
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
      if (id >= 0 && id < vocab) x[id] -= pp + fp * float(j - i), changed = true;
      i = j;
    }
  }
  return changed ? clean_max(x, vocab, nullptr) : clean_mx;
}

namespace {

// Total order: higher logit first, lower id first among equal logits.
bool better(const auto& a, const auto& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// The first index of the largest logit, NaN ranking last (as apply_penalty's candidates);
// index 0 when no logit is above -inf. Used for plain greedy decoding, where building anything
// per vocabulary entry cost more than the search.
int32_t argmax_first(const float* logits, int64_t vocab) {
  const float best = clean_max(logits, vocab, nullptr);
  return best == -INFINITY ? 0 : int32_t(first_index_of(logits, vocab, best));
}

}  // namespace

int64_t Sampler::select_top_k(int64_t vocab, int64_t k) {
  // The best k of the vocabulary in one pass: a buffer of up to 2k candidates that only takes
  // logits above the k-th best seen so far (thr), trimmed back to k with nth_element when full.
  // Candidates come in id order, so a later logit equal to thr is worse than the k-th (higher
  // id) and is rightly skipped. After the first few hundred entries almost nothing passes thr.
  const float* x = row_;
  const size_t cap = size_t(std::max<int64_t>(2 * k, k + 256));
  cand_.clear();
  cand_.reserve(cap);
  auto trim = [&] {
    std::nth_element(cand_.begin(), cand_.begin() + (k - 1), cand_.end(),
                     [](const Candidate& a, const Candidate& b) { return better(a, b); });
    cand_.resize(size_t(k));
    return cand_[size_t(k - 1)].logit;
  };
  int64_t i = 0;
  for (; i < k; ++i) cand_.push_back({x[i], int32_t(i), 0.0f});
  float thr = trim();
  // Chunks of the rest: the indices above thr (x > thr <=> x >= the next float up; x_ holds no
  // NaN), found at vector width.
  constexpr int64_t kChunk = 1024;
  grow(kept_, kChunk + 16);
  for (; i < vocab; i += kChunk) {
    const int64_t len = std::min(kChunk, vocab - i);
    const int64_t m = indices_at_least(x + i, len, std::nextafter(thr, INFINITY), kept_.data());
    for (int64_t j = 0; j < m; ++j) {
      const int64_t id = i + kept_[size_t(j)];
      if (x[id] <= thr) continue;  // thr rose within this chunk
      cand_.push_back({x[id], int32_t(id), 0.0f});
      if (cand_.size() == cap) thr = trim();
    }
  }
  if (cand_.size() > size_t(k)) trim();
  std::sort(cand_.begin(), cand_.end(),
            [](const Candidate& a, const Candidate& b) { return better(a, b); });
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

int64_t Sampler::keep_nucleus(int64_t vocab, float mx) {
  // The nucleus of keep_top_p — the best candidates (in `better` order) whose probability mass
  // first reaches top_p — without sorting the vocabulary (O(V log V) per token and sequence;
  // Llama 4's V is 202k).
  // 1. Prune: find a floor such that the candidates within it of the best logit already hold
  //    top_p of the mass; the cut lies among them, and nothing below can be in the nucleus. One
  //    pass measures the mass within four floors (1.5 to 10 nats) and takes the tightest that
  //    qualifies; the weight tau = (1 − top_p) · total / (2V) always qualifies as a floor
  //    (every weight below it together holds less than half the mass outside the nucleus). A
  //    peaked distribution keeps a few hundred candidates of Llama 4's 202k.
  // 2. Few left: sort them and scan. Many left (a flat distribution): bin their mass by
  //    distance below the best logit (kPerNat bins per nat; everything past kBins / kPerNat
  //    nats in the last bin). Bins are ordered like `better`, so the cut lies in the first bin
  //    where the running mass reaches top_p: every candidate of an earlier bin is kept, and only
  //    that bin's candidates are sorted and scanned.
  // The kept prefix is left in vocabulary order (then the boundary bin's sorted head): an order
  // that depends only on the logits, so draws stay deterministic.
  const float* x = row_;
  const int64_t nb = (vocab + kExpBlock - 1) / kExpBlock;
  grow(block_, nb);
  // The weights' total, and the mass within 1.5, 3, 6 and 10 nats of the best, in one pass that
  // stores nothing per entry.
  static constexpr float kFloors[kExpMaxFloors] = {-1.5f, -3.0f, -6.0f, -10.0f};
  float mass[kExpMaxFloors];
  exp_sums(x, vocab, mx, 1.0f, nullptr, {block_.data(), kExpMaxFloors, kFloors, mass});
  double total = 0;
  for (int64_t b = 0; b < nb; ++b) total += block_[size_t(b)];
  const double target = double(params_.top_p) * total;
  // (At most 0, so the best logit always survives, whatever top_p was given.)
  float floor =
      std::min(0.0f, float(std::log(0.5 * (1.0 - double(params_.top_p)) * total / double(vocab))));
  // The masses' float sums are within this relative error (logit_scan.h), counted twice.
  const double slack = 2 * (double(vocab) / 16 + 16) * 0x1p-24;
  for (int j = 0; j < kExpMaxFloors; ++j)
    if (double(mass[j]) * (1 - slack) >= target) {
      floor = std::max(floor, kFloors[j]);
      break;
    }
  // Candidates with x − mx >= floor, found on the logits: the margin makes them a superset of
  // what the masses counted (x − mx was rounded there), which only adds a few candidates.
  grow(kept_, vocab + 16);
  const int64_t n =
      indices_at_least(x, vocab, mx + floor - 1e-3f * (1.0f + std::fabs(mx)), kept_.data());
  // Their weights, recomputed from their logits: exp_sums is elementwise, so the same bits.
  grow(vals_, n);
  grow(w_, n);
  for (int64_t j = 0; j < n; ++j) vals_[size_t(j)] = x[kept_[size_t(j)]];
  exp_sums(vals_.data(), n, mx, 1.0f, w_.data());
  grow(cand_, n);
  for (int64_t j = 0; j < n; ++j)
    cand_[size_t(j)] = {vals_[size_t(j)], kept_[size_t(j)], w_[size_t(j)]};
  auto by_better = [](const Candidate& a, const Candidate& b) { return better(a, b); };
  double acc = 0;
  constexpr int64_t kSortMax = 256;  // above it, binning is cheaper than the sort
  if (n <= kSortMax) {
    std::sort(cand_.begin(), cand_.begin() + n, by_better);
    for (int64_t i = 0; i < n; ++i)
      if ((acc += cand_[size_t(i)].w) >= target) return i + 1;
    return std::max<int64_t>(n, 1);
  }
  constexpr int kPerNat = 64, kBins = 64 * 32;
  auto bin = [mx](float logit) {
    const float d = (mx - logit) * float(kPerNat);
    return d < float(kBins) ? int(d) : kBins;
  };
  bin_mass_.assign(kBins + 1, 0.0);
  for (int64_t i = 0; i < n; ++i)
    bin_mass_[size_t(bin(cand_[size_t(i)].logit))] += cand_[size_t(i)].w;
  int cut = kBins;
  for (int b = 0; b <= kBins; ++b) {
    if (acc + bin_mass_[size_t(b)] >= target) {
      cut = b;
      break;
    }
    acc += bin_mass_[size_t(b)];
  }
  // Branch-free compaction (candidates fall in the three classes unpredictably): every
  // candidate is written to both places, and only its class's count advances. In place for the
  // kept ones: position m <= i is free once cand_[i] is read.
  grow(boundary_, n);
  int64_t m = 0, q = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Candidate c = cand_[size_t(i)];
    const int b = bin(c.logit);
    cand_[size_t(m)] = c;
    boundary_[size_t(q)] = c;
    m += b < cut;
    q += b == cut;
  }
  std::sort(boundary_.begin(), boundary_.begin() + q, by_better);
  for (int64_t i = 0; i < q; ++i) {
    const Candidate& c = boundary_[size_t(i)];
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

int64_t Sampler::keep_above(int64_t vocab, double floor_logit) {
  // double(x) >= floor  <=>  x >= the least float not below floor.
  float f = float(floor_logit);
  if (double(f) < floor_logit) f = std::nextafter(f, INFINITY);
  const float* x = row_;
  grow(kept_, vocab + 16);
  int64_t n = indices_at_least(x, vocab, f, kept_.data());
  if (n == 0) {  // NaN or > 1 min_p: the max survives
    kept_[0] = argmax_first(x, vocab);
    n = 1;
  }
  grow(cand_, n);
  for (int64_t j = 0; j < n; ++j) cand_[size_t(j)] = {x[kept_[size_t(j)]], kept_[size_t(j)], 0.0f};
  return n;
}

int64_t Sampler::draw(int64_t n) {
  // Inverse CDF over the weights of src_[0, n) with one 53-bit uniform, in the order exp_sums
  // sums: blocks in turn, within a block its kExpLanes lanes in turn, within a lane its entries
  // in turn. Only the chosen block's weights are computed again (exp_sums is elementwise: the
  // same bits), and each level rescans from 0 what exp_sums summed from 0, so the running sums
  // match the block sums bit for bit; only the residual u − (sums before) is rounded. If
  // rounding puts it past the end of the chosen part, the part's last non-zero weight is taken.
  const int64_t nb = (n + kExpBlock - 1) / kExpBlock;
  double total = 0;
  for (int64_t b = 0; b < nb; ++b) total += block_[size_t(b)];
  const double u = rng_.uniform() * total;
  double cum = 0;
  int64_t b = 0;
  while (b + 1 < nb && !(u < cum + block_[size_t(b)])) cum += block_[size_t(b++)];
  const int64_t lo = b * kExpBlock, len = std::min(n - lo, kExpBlock);
  float w[kExpBlock];
  exp_sums(src_ + lo, len, mx_, inv_t_, w);
  auto last_nonzero = [&](int64_t first, int64_t stride) {
    int64_t pick = -1;
    for (int64_t i = first; i < len; i += stride)
      if (w[i] > 0) pick = i;
    return pick;
  };
  double r = u - cum, acc = 0;
  for (int64_t j = 0; j < kExpLanes && j < len; ++j) {
    double lane = 0;
    for (int64_t i = j; i < len; i += kExpLanes) lane += w[i];
    if (r < acc + lane) {
      const double r2 = r - acc;
      double a = 0;
      for (int64_t i = j; i < len; i += kExpLanes)
        if (r2 < (a += w[i])) return lo + i;
      if (const int64_t p = last_nonzero(j, kExpLanes); p >= 0) return lo + p;
      break;
    }
    acc += lane;
  }
  if (const int64_t p = last_nonzero(0, 1); p >= 0) return lo + p;
  // A block of zero weight (u rounded past the end): the last block with weight.
  while (b > 0 && block_[size_t(--b)] == 0) {
  }
  const int64_t blo = b * kExpBlock, blen = std::min(n - blo, kExpBlock);
  exp_sums(src_ + blo, blen, mx_, inv_t_, w);
  for (int64_t i = blen - 1; i > 0; --i)
    if (w[i] > 0) return blo + i;
  return blo;
}

int64_t Sampler::weigh(const float* logits, int64_t vocab, std::span<const int32_t> recent,
                       std::span<const int32_t> generated, int32_t* pick) {
  const bool greedy = !(params_.temperature > 0.0f);
  const bool penalties = (params_.repetition_penalty != 1.0f && !recent.empty()) ||
                         ((params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) &&
                          !generated.empty());
  if (greedy && !penalties && params_.logit_bias.empty()) {
    *pick = argmax_first(logits, vocab);
    return 0;
  }
  const bool top_k = params_.top_k > 0 && params_.top_k < vocab;
  // The filters read the logits in place unless something changes them, or top-k (whose
  // ordering must not meet NaN) runs; the other passes give NaN no weight (exp_sums maps it
  // to 0) and never select it.
  float mx;
  if (penalties || !params_.logit_bias.empty() || top_k) {
    mx = apply_penalty(logits, vocab, recent, generated);
    row_ = x_.data();
  } else {
    mx = clean_max(logits, vocab, nullptr);
    row_ = logits;
  }
  const float* x = row_;
  if (greedy || mx == -INFINITY || mx == INFINITY) {
    // Greedy (first index on ties); nothing above -inf (the first id); or +inf logits, which
    // take all the mass (the first of them).
    *pick = argmax_first(x, vocab);
    return 0;
  }
  const float inv_t = float(1.0 / double(params_.temperature));
  const bool top_p = params_.top_p < 1.0f;
  const bool min_p = params_.min_p > 0.0f;
  dense_ = !top_k && !top_p && !min_p;
  int64_t n = vocab;
  mx_ = mx;
  inv_t_ = inv_t;
  if (dense_) {  // plain temperature: the draw reads the logits themselves
    src_ = x;
    grow(block_, (vocab + kExpBlock - 1) / kExpBlock);
    exp_sums(x, vocab, mx, inv_t, nullptr, {block_.data()});
    return vocab;
  }
  if (top_k) {
    n = select_top_k(vocab, params_.top_k);  // a sorted prefix of k
    if (top_p) n = keep_top_p(n);
    if (min_p) n = keep_min_p(n);
  } else if (top_p) {
    n = keep_nucleus(vocab, mx);
    if (min_p) n = keep_min_p(n);
  } else {
    n = keep_above(vocab, double(mx) + std::log(double(params_.min_p)));
  }
  // softmax(logit / T) over the kept candidates: their logits gathered for the draw.
  grow(vals_, n);
  grow(block_, (n + kExpBlock - 1) / kExpBlock);
  for (int64_t i = 0; i < n; ++i) vals_[size_t(i)] = cand_[size_t(i)].logit;
  src_ = vals_.data();
  exp_sums(src_, n, mx, inv_t, nullptr, {block_.data()});
  return n;
}

int32_t Sampler::sample(const float* logits, int64_t vocab, std::span<const int32_t> recent,
                        std::span<const int32_t> generated) {
  if (vocab <= 0) return -1;
  int32_t pick = 0;
  const int64_t n = weigh(logits, vocab, recent, generated, &pick);
  return n == 0 ? pick : id_at(draw(n));
}

std::vector<std::pair<int32_t, double>> Sampler::distribution(const float* logits, int64_t vocab,
                                                              std::span<const int32_t> recent,
                                                              std::span<const int32_t> generated) {
  std::vector<std::pair<int32_t, double>> out;
  if (vocab <= 0) return out;
  int32_t pick = 0;
  const int64_t n = weigh(logits, vocab, recent, generated, &pick);
  if (n == 0) return {{pick, 1.0}};
  double total = 0;
  for (int64_t b = 0; b < (n + kExpBlock - 1) / kExpBlock; ++b) total += block_[size_t(b)];
  grow(w_, n);
  exp_sums(src_, n, mx_, inv_t_, w_.data());
  for (int64_t i = 0; i < n; ++i)
    if (w_[size_t(i)] > 0) out.emplace_back(id_at(i), double(w_[size_t(i)]) / total);
  return out;
}

}  // namespace herd
