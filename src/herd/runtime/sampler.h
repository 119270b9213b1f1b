// Token sampling from logits (DESIGN.md runtime/). Filters are applied in llama.cpp's default
// order (logit bias, then the penalties first): repetition penalty -> top-k -> top-p -> min-p ->
// temperature -> draw. Because the probability filters run before temperature, they see the
// untempered distribution (as in llama.cpp's common sampler chain). temperature <= 0 means greedy:
// argmax of the penalised logits (first index on ties) — the filters never remove the top token, so
// they are skipped.
//
// Reproducible: the random numbers come from xoshiro256** seeded by splitmix64 (no
// std::*_distribution, whose output differs between standard libraries), candidates are ordered
// by (logit desc, id asc), the softmax weights are exp_sums' (ops/logit_scan.h: the same bits
// on every ISA) and probabilities are summed in double in a fixed order.
//
// Fast at Llama 4's 202k vocabulary: no step sorts or builds a record for the whole vocabulary.
// Top-k keeps a small buffer above a rising threshold, top-p prunes what cannot reach the
// nucleus before it orders anything, and the draw finds its block by block sums.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace herd {

struct SamplingParams {
  float temperature = 0.0f;         // 0 = greedy
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off; keeps the smallest prefix with mass >= top_p
  float min_p = 0.0f;               // 0 = off; keeps p >= min_p * p_max
  float repetition_penalty = 1.0f;  // 1 = off; HF / llama.cpp style (see Sampler::sample)
  // OpenAI's additive penalties over the tokens generated so far (vLLM's semantics: the prompt
  // does not count): logit -= presence·[count > 0] + frequency·count. 0 = off.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // Added to the raw logits of these ids before anything else (OpenAI's logit_bias, -100..100).
  std::vector<std::pair<int32_t, float>> logit_bias;
  uint64_t seed = 0;
};

// Portable 64-bit generator: xoshiro256** (Blackman & Vigna), state filled by splitmix64.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1) with 53 random bits

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks one token id from logits[vocab]. recent_tokens: the tokens the repetition penalty
  // applies to (each distinct id once; ids outside [0, vocab) are ignored). Buffers are kept
  // between calls, so after the first call no heap allocation happens for the same vocab size.
  // generated: the tokens this sequence generated so far (presence / frequency penalties).
  int32_t sample(const float* logits, int64_t vocab, std::span<const int32_t> recent_tokens,
                 std::span<const int32_t> generated = {});

  // The distribution the next sample() call draws from (same arguments): the ids that survive
  // the filters with their probabilities, summing to 1; one id with 1.0 when the choice is
  // deterministic (greedy). Consumes no random number. For tests and diagnostics.
  std::vector<std::pair<int32_t, double>> distribution(const float* logits, int64_t vocab,
                                                       std::span<const int32_t> recent_tokens,
                                                       std::span<const int32_t> generated = {});

  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    float logit;
    int32_t id;
    float w;  // exp(logit − max) while keep_nucleus runs
  };
  // Runs the filters. Returns n > 0 when a draw follows (over src_[0, n): of id i when dense_,
  // else of cand_[i].id), or 0 with the one possible id in *pick.
  int64_t weigh(const float* logits, int64_t vocab, std::span<const int32_t> recent,
                std::span<const int32_t> generated, int32_t* pick);
  // Fills x_ and returns its maximum.
  float apply_penalty(const float* logits, int64_t vocab, std::span<const int32_t> recent,
                      std::span<const int32_t> generated);
  int64_t select_top_k(int64_t vocab, int64_t k);  // the best k of row_, sorted
  int64_t keep_top_p(int64_t n);                   // requires sorted candidates
  int64_t keep_nucleus(int64_t vocab, float mx);   // top-p over row_, unsorted
  int64_t keep_min_p(int64_t n);
  int64_t keep_above(int64_t vocab, double floor_logit);  // min-p over row_
  int64_t draw(int64_t n);                                // index into src_
  int32_t id_at(int64_t i) const { return dense_ ? int32_t(i) : cand_[size_t(i)].id; }

  SamplingParams params_;
  Xoshiro256 rng_;
  std::vector<float> x_;        // the logits after NaN -> -inf, the bias and the penalties
  const float* row_ = nullptr;  // what the filters read: x_ or the caller's logits
  std::vector<float> w_;        // keep_nucleus' untempered weights; distribution()'s
  std::vector<float> vals_;     // gathered logits of candidates
  std::vector<double> block_;   // the draw's block sums (ops/logit_scan.h)
  const float* src_ = nullptr;  // the draw's logits: row_ when dense_, else vals_
  float mx_ = 0, inv_t_ = 1;    // the draw's weights are e^((src_[i] − mx_) · inv_t_)
  bool dense_ = false;
  std::vector<Candidate> cand_;
  std::vector<int32_t> kept_;       // keep_nucleus: indices above the pruning threshold
  std::vector<int32_t> penalised_;  // sorted distinct ids of recent tokens
  std::vector<double> prob_;
  std::vector<double> bin_mass_;     // keep_nucleus
  std::vector<Candidate> boundary_;  // keep_nucleus: the bin holding the cut
};

}  // namespace herd
