// The Llama 4 text decoder: one forward pass over a batch of tokens from one or more sequences
// (prefill, decode and continuous batching are one path). Reads like modeling_llama4.py
// (Llama4TextModel.forward): embed → [norm → attention → residual → norm → MoE/MLP → residual]×L
// → norm → lm_head. Precision f32: every activation in f32 from the stored weights.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "herd/base/status.h"
#include "herd/base/thread_pool.h"
#include "herd/model/expert_exchange.h"
#include "herd/model/kv_interface.h"
#include "herd/model/weights.h"
#include "herd/ops/activation.h"
#include "herd/ops/attention_fast.h"
#include "herd/ops/gemm.h"

namespace herd {

struct BatchToken {
  int32_t token = 0;
  int64_t pos = 0;      // absolute position in its sequence
  int seq = 0;          // index into the caches span passed to forward()
  bool logits = false;  // produce a logits row for this token
  // When set, hidden_size floats used as this position's input instead of the token's embedding
  // (early-fusion vision: image patches). `token` still names the position (e.g. <|patch|>).
  const float* embedding = nullptr;
};

// Observes named intermediates ("attn_norm", "attn_out", "ffn_out", "l_out", ...) by layer, so
// a mismatch against a reference can be found tensor by tensor. MoE layers also report
// "expert": one column holding each token's chosen expert index (as float).
using TraceFn = std::function<void(std::string_view name, int layer, const float* data,
                                   int64_t rows, int64_t cols)>;

// kF32: every activation in f32 from the stored weights (the reference conformance is measured
// on). kAuto: the run-format weights (LoadedModel::run) with the SIMD kernels of ops/gemm.h;
// falls back to kF32 when the model has no run weights.
enum class Precision { kF32, kAuto };

class TextDecoder {
 public:
  TextDecoder(const LoadedModel& model, ThreadPool& pool, Precision precision = Precision::kF32);
  Precision precision() const { return fast_ ? Precision::kAuto : Precision::kF32; }

  // Runs the batch; writes one vocab-size row per token with logits=true, in batch order.
  Status forward(std::span<const BatchToken> batch, std::span<KvCache* const> caches, float* logits,
                 const TraceFn& trace = nullptr);

  // Expert parallelism: this rank computes the routed experts it holds (model.experts) and the
  // exchange brings the others' rows. Without one, a model holding a share of the experts
  // refuses to run.
  void set_expert_exchange(ExpertExchange* x) { exchange_ = x; }

  const Llama4TextConfig& config() const { return cfg_; }
  int64_t vocab_size() const { return cfg_.vocab_size; }
  ThreadPool& pool() const { return pool_; }

 private:
  void attention(int layer, std::span<const BatchToken> batch, std::span<KvCache* const> caches);
  void attention_fast(int layer, const AttentionShape& shape, std::span<const BatchToken> batch,
                      std::span<KvCache* const> caches);
  void moe(int layer, int64_t n);
  void dense_mlp(int layer, int64_t n);
  void resize(int64_t n);
  void per_token(int64_t n, const std::function<void(int64_t)>& fn);
  void norm(const float* x, const float* gain, float* out, int64_t n, float eps) const;
  // y = x · Wᵀ for W in nn.Linear layout, through the fast kernels or the f32 reference.
  void linear(const float* x, int64_t n, int64_t x_stride, const WeightRef& w, float* y,
              int64_t y_stride);
  // Fast path: x prepared for the kernels that read w.
  void prepare(const float* x, int64_t n, int64_t x_stride, const WeightRef& w, PreparedActs& acts);
  void moe_reference(int layer, int64_t e, int64_t b, int64_t m);
  void moe_fast(int layer, int64_t n);
  // Exchange of the routed rows (grouped by expert, H floats each) when experts are split.
  Status exchange_start(int layer, float* rows);
  Status exchange_wait();

  const LoadedModel& model_;
  const Llama4TextConfig& cfg_;
  ThreadPool& pool_;
  bool fast_ = false;
  const TextWeights* w_ = nullptr;  // model_.text (f32 reference) or model_.run (fast)
  PreparedActs acts_;
  std::vector<float> inv_freq_;
  std::vector<float> rope_cs_;  // [n, head_dim]: each token's cos / sin pairs (ops/rope.h)
  // Activations, reused across calls (grown, never shrunk): llama2.c's RunState.
  std::vector<float> h_, xn_, q_, k_, v_, attn_, ffn_out_, gate_, up_, router_, xe_, ye_;
  std::vector<std::vector<float>> scratch_;  // per thread: attention_scratch_floats (reference)
  struct AttItem {
    int64_t t0, t1, g;  // batch tokens [t0, t1) of one sequence, kv head g
    int64_t seg = -1;   // >= 0: only segment segs_[seg], kv heads [g, g1) in one pass, head
    int64_t part = 0;   // g + i's partial to parts_[part + i * part_stride..]
    int64_t part_stride = 0, g1 = 0;
  };
  struct AttFold {  // a split item's partials folded in segment order
    int64_t t0, t1, g, seg0, n_seg, part0, part_floats;
  };
  std::vector<AttItem> att_items_;
  std::vector<AttFold> att_folds_;
  std::vector<KvSegment> segs_, seg_found_;
  AlignedBuffer<float> parts_;
  std::vector<int64_t> q_pos_;
  std::vector<AttentionScratch> att_scratch_;  // per thread (fast path)
  std::vector<float> eg_, eh_;                 // experts' gate|up outputs and hidden, grouped
  std::vector<PreparedActs> expert_acts_;      // per expert (one section runs them all)
  std::vector<GemmJob> jobs_;
  struct Prep {  // one prepare() of a parallel section
    const float* x;
    int64_t n;
    WeightRef w;
    PreparedActs* acts;
  };
  std::vector<Prep> preps_;
  std::vector<RouterChoice> choice_;
  std::vector<int64_t> rows_;          // tokens grouped by expert (see moe())
  std::vector<int64_t> first_, fill_;  // expert e's rows: rows_[first_[e] .. first_[e+1])
  std::vector<float> expert_ids_, weights_of_rows_;  // for the "expert" trace
  const TraceFn* trace_ = nullptr;                   // set during forward()
  ExpertExchange* exchange_ = nullptr;
  int64_t e_first_ = 0, e_count_ = 0;  // the routed experts held here (model.experts)
  std::vector<float> yr_;              // reference path: routed rows, grouped by expert
  std::vector<int64_t> rank_rows_;     // exchange offsets (floats) per rank
  Status moe_status_;                  // an exchange failure, returned by forward()
};

}  // namespace herd
