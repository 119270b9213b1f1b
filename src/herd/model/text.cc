#include "herd/model/text.h"

#include <algorithm>
#include <cmath>

#include "herd/base/mapped_file.h"
#include "herd/base/stage_profile.h"
#include "herd/ops/activation.h"
#include "herd/ops/attention.h"
#include "herd/ops/attention_fast.h"
#include "herd/ops/matmul.h"
#include "herd/ops/norm.h"
#include "herd/ops/rope.h"
#include "herd/quant/format_table.h"

namespace herd {

TextDecoder::TextDecoder(const LoadedModel& model, ThreadPool& pool, Precision precision)
    : model_(model), cfg_(model.config.text), pool_(pool) {
  fast_ = precision == Precision::kAuto && model.has_run;
  w_ = fast_ ? &model.run : &model.text;
  inv_freq_ = rope_inv_freq(cfg_.head_dim, cfg_.rope_theta, cfg_.rope_scaling);
  scratch_.resize(size_t(pool.size()));
  e_first_ = model.experts.first;
  e_count_ = model.experts.count < 0 ? cfg_.num_local_experts : model.experts.count;
  // The embedding table is read one row per token, mostly in place from the file's map. The
  // head, where it stays in the map too (bf16 without a repacked format: AVX2 machines), is read
  // whole by every step that wants logits: mapped in now as well, so every process holds what
  // `herd plan` counts, including MPI ranks other than 0, which never compute logits.
  for (const WeightRef* e : {&w_->embed, &w_->lm_head})
    if (e->data) populate_pages(e->data, size_t(e->rows * format_row_bytes(e->dtype, e->cols)));
}

void TextDecoder::resize(int64_t n) {
  const int64_t H = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int64_t F = std::max(2 * I, cfg_.intermediate_size_mlp);  // fused gate+up rows too
  auto grow = [](std::vector<float>& v, int64_t size) {
    if (int64_t(v.size()) < size) v.resize(size_t(size));
  };
  grow(h_, n * H);
  grow(xn_, n * H);
  grow(q_, n * cfg_.q_dim());
  grow(k_, n * cfg_.kv_dim());
  grow(v_, n * cfg_.kv_dim());
  grow(attn_, n * cfg_.q_dim());
  grow(ffn_out_, n * H);
  grow(gate_, n * F);
  grow(up_, n * F);
  grow(router_, n * std::max<int64_t>(cfg_.num_local_experts, 1));
  grow(xe_, n * H);
  grow(ye_, n * H);
  grow(yr_, n * H);
  grow(eg_, n * 2 * I);
  grow(eh_, n * I);
  grow(rope_cs_, n * cfg_.head_dim);
}

void TextDecoder::norm(const float* x, const float* gain, float* out, int64_t n, float eps) const {
  (fast_ ? rms_norm_fast : rms_norm)(x, gain, out, n, eps);
}

// Row-wise work (norms, residuals, RoPE, KV stores): spread over the pool from 8 rows on (a
// prefill, or a decode step of many sequences: at 16 the norms, RoPE and stores took ~0.35 ms
// less a step, BENCHMARKS.md), inline for a decode step's few rows. Each row is computed alone,
// so the split never changes results.
void TextDecoder::per_token(int64_t n, const std::function<void(int64_t)>& fn) {
  constexpr int64_t kMinParallel = 8;
  if (n < kMinParallel) {
    for (int64_t t = 0; t < n; ++t) fn(t);
    return;
  }
  const int64_t grain = std::clamp<int64_t>((n + pool_.size() - 1) / pool_.size(), 1, 16);
  pool_.parallel_for(size_t(n), size_t(grain), [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) fn(int64_t(t));
  });
}

Status TextDecoder::forward(std::span<const BatchToken> batch, std::span<KvCache* const> caches,
                            float* logits, const TraceFn& trace) {
  const int64_t n = int64_t(batch.size()), H = cfg_.hidden_size;
  for (const BatchToken& b : batch) {
    if (b.token < 0 || b.token >= cfg_.vocab_size)
      return make_error("token id {} is outside the vocabulary (size {})", b.token,
                        cfg_.vocab_size);
    if (b.seq < 0 || size_t(b.seq) >= caches.size() || !caches[size_t(b.seq)])
      return make_error("batch token refers to sequence {} which has no KV cache", b.seq);
    if (b.pos < 0) return make_error("negative position {}", b.pos);
  }
  if (n == 0) return Status::ok();
  StageScope whole(Stage::kForward);
  const bool split = e_first_ != 0 || e_count_ != cfg_.num_local_experts;
  if (split && (!exchange_ || exchange_->ranks() < 2))
    return make_error("this model holds routed experts {}..{} of {} only: it runs with --mpi",
                      e_first_, e_first_ + e_count_ - 1, cfg_.num_local_experts);
  resize(n);
  moe_status_ = Status::ok();
  trace_ = &trace;
  const TextWeights& w = *w_;
  const float eps = float(cfg_.rms_norm_eps);
  auto emit = [&](std::string_view name, int layer, const float* d, int64_t cols) {
    if (trace) trace(name, layer, d, n, cols);
  };

  // 1. Embedding lookup; no scaling (spec §3 step 1).
  StageScope embed(Stage::kEmbed);
  per_token(n, [&](int64_t t) {
    const BatchToken& b = batch[size_t(t)];
    if (b.embedding)
      std::copy_n(b.embedding, H, &h_[t * H]);
    else
      dequantize_row(w.embed, b.token, &h_[t * H]);
  });
  emit("embed", -1, h_.data(), H);
  // cos / sin of every token's RoPE angles, once for all the RoPE layers of this step.
  const int64_t hd = cfg_.head_dim;
  per_token(n, [&](int64_t t) {
    rope_cos_sin(batch[size_t(t)].pos, inv_freq_.data(), hd / 2, &rope_cs_[size_t(t * hd)]);
  });
  embed.stop();

  // The residual add and the norm after it run as one pass per row, while the row is in L1: a
  // prefill's activations (tokens × H floats) outgrow the L2, so separate passes went to L3.
  // Each row is computed as the separate passes did, so results are the same bits.
  auto residual_then_norm = [&](const std::vector<float>& gain) {
    StageScope st(Stage::kNorm);
    per_token(n, [&](int64_t t) {
      float* h = &h_[t * H];
      const float* d = &ffn_out_[t * H];
      for (int64_t j = 0; j < H; ++j) h[j] += d[j];
      norm(h, gain.data(), &xn_[t * H], H, eps);
    });
  };
  const int n_layers = int(cfg_.num_hidden_layers);
  if (n_layers > 0) {
    StageScope st(Stage::kNorm);
    per_token(
        n, [&](int64_t t) { norm(&h_[t * H], w.layers[0].attn_norm.data(), &xn_[t * H], H, eps); });
  }
  for (int i = 0; i < n_layers; ++i) {
    const LayerWeights& lw = w.layers[size_t(i)];
    // 2.1-2.8 attention block with pre-norm (xn_ holds it) and residual.
    emit("attn_norm", i, xn_.data(), H);
    attention(i, batch, caches);
    {
      StageScope st(Stage::kWo);
      linear(attn_.data(), n, cfg_.q_dim(), lw.wo, ffn_out_.data(), H);
    }
    emit("attn_out", i, ffn_out_.data(), H);
    // 2.9-2.11 feed-forward block.
    residual_then_norm(lw.ffn_norm);
    emit("ffn_norm", i, xn_.data(), H);
    {
      StageScope st(Stage::kMoe);
      if (cfg_.layer_kind(i).moe)
        moe(i, n);
      else
        dense_mlp(i, n);
    }
    if (!moe_status_) {
      trace_ = nullptr;
      return moe_status_;
    }
    emit("ffn_out", i, ffn_out_.data(), H);
    if (i + 1 < n_layers) {  // the next layer's attention norm with this residual
      residual_then_norm(w.layers[size_t(i + 1)].attn_norm);
    } else {
      StageScope st(Stage::kResidual);
      per_token(n, [&](int64_t t) {
        for (int64_t j = t * H; j < (t + 1) * H; ++j) h_[size_t(j)] += ffn_out_[size_t(j)];
      });
    }
    emit("l_out", i, h_.data(), H);
  }

  // 3. Final norm and lm_head, only for the rows that want logits.
  int64_t m = 0;
  {
    StageScope st(Stage::kNorm);
    for (int64_t t = 0; t < n; ++t)
      if (batch[size_t(t)].logits) norm(&h_[t * H], w.final_norm.data(), &xn_[(m++) * H], H, eps);
  }
  // Ranks other than 0 step the batch for their experts and KV only (logits == nullptr).
  if (m > 0 && logits) {
    StageScope st(Stage::kLmHead);
    linear(xn_.data(), m, H, w.lm_head, logits, cfg_.vocab_size);
  }
  trace_ = nullptr;
  return Status::ok();
}

void TextDecoder::attention(int layer, std::span<const BatchToken> batch,
                            std::span<KvCache* const> caches) {
  const LayerWeights& lw = w_->layers[size_t(layer)];
  const LayerKind& kind = cfg_.layer_kind(layer);
  const int64_t n = int64_t(batch.size()), H = cfg_.hidden_size, hd = cfg_.head_dim;
  const int64_t nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads;
  const int64_t qd = cfg_.q_dim(), kvd = cfg_.kv_dim();
  const float eps = float(cfg_.rms_norm_eps);
  StageScope stage(Stage::kQkv);
  if (fast_) {  // one parallel section for the three projections
    prepare(xn_.data(), n, H, lw.wq, acts_);
    const GemmJob jobs[] = {{&acts_, lw.wq, q_.data(), qd},
                            {&acts_, lw.wk, k_.data(), kvd},
                            {&acts_, lw.wv, v_.data(), kvd}};
    gemm_multi(pool_, jobs, 3);
  } else {
    linear(xn_.data(), n, H, lw.wq, q_.data(), qd);
    linear(xn_.data(), n, H, lw.wk, k_.data(), kvd);
    linear(xn_.data(), n, H, lw.wv, v_.data(), kvd);
  }
  stage.to(Stage::kRopeQkNorm);
  per_token(n, [&](int64_t t) {
    const int64_t pos = batch[size_t(t)].pos;
    float* q = &q_[t * qd];
    float* k = &k_[t * kvd];
    if (kind.rope) {  // RoPE, then the weightless QK-norm (spec §3 steps 3-4)
      const float* cs = &rope_cs_[size_t(t * hd)];
      using Rope = void (*)(float*, int64_t, int64_t, const float*);
      const Rope rope = fast_ ? apply_rope_fast : static_cast<Rope>(apply_rope);
      rope(q, nh, hd, cs);
      rope(k, nkv, hd, cs);
    }
    if (kind.qk_norm) {
      (fast_ ? qk_norm_fast : qk_norm)(q, nh, hd, eps);
      (fast_ ? qk_norm_fast : qk_norm)(k, nkv, hd, eps);
    }
    if (kind.temp_tuning) {  // NoPE layers: scale queries only (spec §3 step 5)
      const float s = attn_temperature(pos, cfg_.floor_scale, cfg_.attn_scale);
      for (int64_t j = 0; j < qd; ++j) q[j] *= s;
    }
  });
  stage.to(Stage::kKvStore);
  // Every token of the batch is stored before any attends (the cache sizes its chunk ring for it).
  // Tokens of a batch have distinct (sequence, position) slots, so they store in parallel.
  per_token(n, [&](int64_t t) {
    const BatchToken& b = batch[size_t(t)];
    caches[size_t(b.seq)]->store(layer, b.pos, &k_[t * kvd], &v_[t * kvd]);
  });
  AttentionShape shape;
  shape.n_heads = nh;
  shape.n_kv_heads = nkv;
  shape.head_dim = hd;
  shape.scale = 1.0f / std::sqrt(float(hd));
  shape.chunk_size = kind.chunked ? cfg_.attention_chunk_size : 0;
  stage.to(Stage::kAttention);
  if (fast_) {
    attention_fast(layer, shape, batch, caches);
    return;
  }
  size_t need = 0;
  for (KvCache* c : caches)
    if (c) need = std::max(need, attention_scratch_floats(c->view(layer)));
  for (auto& sc : scratch_)
    if (sc.size() < need) sc.resize(need);
  // Reference: one work item per (token, query head); heads of a GQA group read one kv head.
  AttentionShape one = shape;
  one.n_heads = one.n_kv_heads = 1;
  const int64_t group = nh / nkv;
  pool_.parallel_for(size_t(n * nh), 1, [&](size_t b, size_t e, int ith) {
    for (size_t item = b; item < e; ++item) {
      const int64_t t = int64_t(item) / nh, h = int64_t(item) % nh;
      const BatchToken& bt = batch[size_t(t)];
      const KvView kv = caches[size_t(bt.seq)]->view(layer);
      herd::attention(one, &q_[t * qd + h * hd], bt.pos, kv, h / group, &attn_[t * qd + h * hd],
                      scratch_[size_t(ith)].data());
    }
  });
}

// Work items: (block of ≤ kBlock consecutive tokens of one sequence, kv head). The queries of a
// block and the heads of a GQA group share each key block (ops/attention_fast.h). A block of a
// few tokens (decode) over a long KV is split further by key segments (flash-decoding): one item
// per segment (and a few kv heads) computes a partial softmax, and a second pass folds them in
// segment order, which gives the same bits as one item doing all segments (so batch invariance is
// kept).
void TextDecoder::attention_fast(int layer, const AttentionShape& shape,
                                 std::span<const BatchToken> batch,
                                 std::span<KvCache* const> caches) {
  constexpr int64_t kBlock = 32, kSplitMaxTokens = 4;
  const int64_t n = int64_t(batch.size()), qd = cfg_.q_dim(), nkv = cfg_.num_key_value_heads;
  const int64_t group = std::max<int64_t>(1, shape.n_heads / nkv);
  att_items_.clear();
  att_folds_.clear();
  segs_.clear();
  int64_t part_total = 0;
  for (int64_t t = 0; t < n;) {
    int64_t e = t + 1;
    while (e < n && e - t < kBlock && batch[size_t(e)].seq == batch[size_t(t)].seq) ++e;
    const int64_t seg0 = int64_t(segs_.size());
    if (e - t <= kSplitMaxTokens) {
      const KvView kv = caches[size_t(batch[size_t(t)].seq)]->view(layer);
      // Short views are not worth scanning (splitting or not gives the same bits either way).
      if (kv.n_rows() > shape.segment && attention_partials_supported(kv)) {
        int64_t min_pos = INT64_MAX, max_pos = INT64_MIN;
        for (int64_t i = t; i < e; ++i) {
          min_pos = std::min(min_pos, attention_min_key(shape, batch[size_t(i)].pos));
          max_pos = std::max(max_pos, batch[size_t(i)].pos);
        }
        kv_segments(kv, shape.segment, min_pos, max_pos, seg_found_);
        if (seg_found_.size() > 1) segs_.insert(segs_.end(), seg_found_.begin(), seg_found_.end());
      }
    }
    const int64_t n_seg = int64_t(segs_.size()) - seg0;
    if (n_seg == 0) {
      for (int64_t g = 0; g < nkv; ++g) att_items_.push_back({t, e, g});
    } else {
      // An item takes one segment for the kv heads the kernel reads best together
      // (attention_heads_per_pass), fewer if there would not be an item per thread. Head g's
      // partials of the n_seg segments lie consecutively. How heads are grouped never changes a
      // bit.
      const int64_t floats = (e - t) * group * (cfg_.head_dim + 2);
      const KvView kv = caches[size_t(batch[size_t(t)].seq)]->view(layer);
      const int64_t splits = std::min<int64_t>(nkv, (int64_t(pool_.size()) + n_seg - 1) / n_seg);
      const int64_t per_item = std::min(attention_heads_per_pass(kv), (nkv + splits - 1) / splits);
      for (int64_t g = 0; g < nkv; ++g)
        att_folds_.push_back({t, e, g, seg0, n_seg, part_total + g * n_seg * floats, floats});
      for (int64_t k = 0; k < n_seg; ++k)
        for (int64_t g = 0; g < nkv; g += per_item)
          att_items_.push_back({t, e, g, seg0 + k, part_total + (g * n_seg + k) * floats,
                                n_seg * floats, std::min(nkv, g + per_item)});
      part_total += nkv * n_seg * floats;
    }
    t = e;
  }
  float* parts = parts_.ensure(size_t(std::max<int64_t>(part_total, 1)));
  q_pos_.resize(size_t(n));
  for (int64_t t = 0; t < n; ++t) q_pos_[size_t(t)] = batch[size_t(t)].pos;
  if (att_scratch_.size() < size_t(pool_.size())) att_scratch_.resize(size_t(pool_.size()));
  auto queries = [&](int64_t t0, int64_t t1) {
    return AttentionQueries{&q_[t0 * qd], qd, &q_pos_[size_t(t0)], t1 - t0, &attn_[t0 * qd], qd};
  };
  // Largest first: a causal prefill's later token blocks attend more keys, and the pool hands
  // items out in order, so the last one taken is then a small one (items are independent).
  const size_t n_items = att_items_.size();
  pool_.parallel_for(n_items, 1, [&](size_t b, size_t e, int ith) {
    for (size_t i = b; i < e; ++i) {
      const AttItem& it = att_items_[n_items - 1 - i];
      const KvView kv = caches[size_t(batch[size_t(it.t0)].seq)]->view(layer);
      const AttentionQueries qs = queries(it.t0, it.t1);
      if (it.seg < 0)
        attention_group_fast(shape, it.g, qs, kv, att_scratch_[size_t(ith)]);
      else
        attention_groups_partial(shape, it.g, it.g1, qs, kv, segs_[size_t(it.seg)], parts + it.part,
                                 it.part_stride, att_scratch_[size_t(ith)]);
    }
  });
  if (att_folds_.empty()) return;
  pool_.parallel_for(att_folds_.size(), 1, [&](size_t b, size_t e, int ith) {
    for (size_t i = b; i < e; ++i) {
      const AttFold& f = att_folds_[i];
      const int64_t rows = (f.t1 - f.t0) * group;
      float* acc = att_scratch_[size_t(ith)].parts.ensure(size_t(f.part_floats));
      attention_fold_init(rows, cfg_.head_dim, acc);
      for (int64_t k = 0; k < f.n_seg; ++k)
        attention_fold(rows, cfg_.head_dim, parts + f.part0 + k * f.part_floats, acc);
      attention_finish(shape, f.g, acc, queries(f.t0, f.t1));
    }
  });
}

// Routed expert (top-1 sigmoid router, weight applied to the expert's INPUT) plus the shared
// expert (spec §3.2). Tokens are grouped by expert: one product per active expert.
void TextDecoder::moe(int layer, int64_t n) {
  const LayerWeights& lw = w_->layers[size_t(layer)];
  const int64_t H = cfg_.hidden_size, E = cfg_.num_local_experts;
  if (fast_) {  // the router is E rows: cheaper on this thread than a parallel section
    prepare(xn_.data(), n, H, lw.router, acts_);
    gemm_serial(acts_, lw.router, router_.data(), E);
  } else {
    linear(xn_.data(), n, H, lw.router, router_.data(), E);
  }
  choice_.resize(size_t(n));
  for (int64_t t = 0; t < n; ++t) choice_[size_t(t)] = router_top1(&router_[t * E], E);
  if (trace_ && *trace_) {
    expert_ids_.resize(size_t(n));
    for (int64_t t = 0; t < n; ++t) expert_ids_[size_t(t)] = float(choice_[size_t(t)].expert);
    (*trace_)("expert", layer, expert_ids_.data(), n, 1);
  }
  // Rows grouped by expert: rows_[first_[e] .. first_[e+1]) are expert e's tokens, and row j of
  // xe_ is token rows_[j]'s input scaled by its router weight.
  first_.assign(size_t(E + 1), 0);
  for (int64_t t = 0; t < n; ++t) ++first_[size_t(choice_[size_t(t)].expert + 1)];
  for (int64_t e = 0; e < E; ++e) first_[size_t(e + 1)] += first_[size_t(e)];
  rows_.resize(size_t(n));
  std::vector<int64_t>& fill = fill_;
  fill.assign(first_.begin(), first_.end() - 1);
  for (int64_t t = 0; t < n; ++t) rows_[size_t(fill[size_t(choice_[size_t(t)].expert)]++)] = t;
  per_token(n, [&](int64_t j) {
    const int64_t t = rows_[size_t(j)];
    const float wgt = choice_[size_t(t)].weight;
    for (int64_t c = 0; c < H; ++c) xe_[j * H + c] = wgt * xn_[t * H + c];
  });
  if (fast_) {
    moe_fast(layer, n);
    return;
  }
  {
    StageScope st(Stage::kMoeProducts);
    for (int64_t e = e_first_; e < e_first_ + e_count_; ++e) {
      const int64_t b = first_[size_t(e)], m = first_[size_t(e + 1)] - b;
      if (m > 0) moe_reference(layer, e, b, m);
    }
  }
  // The other ranks' routed rows arrive while the shared expert runs.
  if (Status st = exchange_start(layer, yr_.data()); !st) {
    moe_status_ = st;
    return;
  }
  // Shared expert on the same normalized input, unweighted; y = shared + routed.
  const int64_t I = cfg_.intermediate_size;
  {
    StageScope st(Stage::kMoeProducts);
    linear(xn_.data(), n, H, lw.shared_gate, gate_.data(), I);
    linear(xn_.data(), n, H, lw.shared_up, up_.data(), I);
    swiglu(gate_.data(), up_.data(), gate_.data(), n * I);
    linear(gate_.data(), n, I, lw.shared_down, ye_.data(), H);
  }
  if (Status st = exchange_wait(); !st) {
    moe_status_ = st;
    return;
  }
  for (int64_t j = 0; j < n; ++j) std::copy_n(&yr_[j * H], H, &ffn_out_[rows_[size_t(j)] * H]);
  for (int64_t j = 0; j < n * H; ++j) ffn_out_[size_t(j)] = ye_[size_t(j)] + ffn_out_[size_t(j)];
}

Status TextDecoder::exchange_start(int layer, float* rows) {
  if (!exchange_) return Status::ok();
  const int R = exchange_->ranks();
  const int64_t E = cfg_.num_local_experts, H = cfg_.hidden_size;
  rank_rows_.resize(size_t(R + 1));
  for (int r = 0; r <= R; ++r) {
    const int64_t e = r < R ? expert_share(E, R, r).first : E;
    rank_rows_[size_t(r)] = first_[size_t(e)] * H;
  }
  return exchange_->start(rows, rank_rows_, layer);
}

Status TextDecoder::exchange_wait() {
  return exchange_ ? exchange_->wait() : Status::ok();
}

// Stored layout: gate_up_proj [H, 2I] and down_proj [I, H] per expert, input-major. Expert e's
// m tokens are rows [b, b+m) of xe_; outputs go to the same rows of yr_.
void TextDecoder::moe_reference(int layer, int64_t e, int64_t b, int64_t m) {
  const LayerWeights& lw = w_->layers[size_t(layer)];
  const int64_t H = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int64_t le = e - e_first_;  // index among those held
  const float* x = &xe_[b * H];
  float* y = &yr_[b * H];
  if (lw.experts_up.data) {  // GGUF: out-major gate [I, H], up [I, H], down [H, I] per expert
    matmul_sequential(pool_, x, m, H, lw.experts_gate_up.row_slice(le * I, I), gate_.data(), I);
    matmul_sequential(pool_, x, m, H, lw.experts_up.row_slice(le * I, I), up_.data(), I);
    swiglu(gate_.data(), up_.data(), gate_.data(), m * I);
    matmul_sequential(pool_, gate_.data(), m, I, lw.experts_down.row_slice(le * H, H), y, H);
  } else {
    const WeightRef gate_up = lw.experts_gate_up.row_slice(le * H, H);  // [H, 2I]
    const WeightRef down = lw.experts_down.row_slice(le * I, I);        // [I, H]
    matmul_in_major(pool_, x, m, H, gate_up, 0, I, gate_.data(), I);
    matmul_in_major(pool_, x, m, H, gate_up, I, I, up_.data(), I);
    swiglu(gate_.data(), up_.data(), gate_.data(), m * I);
    matmul_in_major(pool_, gate_.data(), m, I, down, 0, H, y, H);
  }
}

// Run layout: per expert one [2I, H] matrix (gate rows then up rows). Every active expert's
// gate/up and the shared expert's gate and up are one parallel section; all down projections a
// second one. With an exchange the shared expert gets sections of its own, run while the routed
// rows travel (gemm tiles never split the inner dimension, so every output element comes from
// the same kernel on the same inputs whichever section computes it).
void TextDecoder::moe_fast(int layer, int64_t n) {
  const LayerWeights& lw = w_->layers[size_t(layer)];
  const int64_t H = cfg_.hidden_size, I = cfg_.intermediate_size, E = cfg_.num_local_experts;
  const int64_t e0 = e_first_, e1 = e_first_ + e_count_;
  const bool split = exchange_ != nullptr;
  if (expert_acts_.size() < size_t(E)) expert_acts_.resize(size_t(E));
  // Activations of every product of a section are prepared in parallel too (one task each),
  // then all its products run as one gemm_multi. preps_[0] is the shared product's when
  // `shared`; the held experts' follow.
  auto prepare_all = [&](bool shared, const float* shared_x, int64_t k, const WeightRef& shared_w,
                         const float* expert_x, auto expert_w) {
    jobs_.clear();
    preps_.clear();
    if (shared) preps_.push_back({shared_x, n, shared_w, &acts_});
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t b = first_[size_t(e)], m = first_[size_t(e + 1)] - b;
      if (m > 0) preps_.push_back({expert_x + b * k, m, expert_w(e), &expert_acts_[size_t(e)]});
    }
    // A decode step's few rows are cheaper to prepare here than to wake the pool for. In a
    // prefill the shared product's rows (all n) are split over the pool first, then each expert
    // is one task (prepare_acts without a pool: this runs inside a parallel section).
    size_t i0 = 0;
    if (shared && n >= 32)
      prepare(preps_[0].x, preps_[0].n, k, preps_[0].w, *preps_[0].acts), i0 = 1;
    pool_.parallel_for(preps_.size() - i0, n <= 8 ? preps_.size() : 1,
                       [&](size_t b, size_t e, int) {
                         for (size_t i = i0 + b; i < i0 + e; ++i)
                           prepare_acts(preps_[i].x, preps_[i].n, k, preps_[i].w.cols,
                                        preps_[i].w.dtype, *preps_[i].acts);
                       });
  };
  // GGUF files keep gate and up in two tensors (experts_up set): the gate rows are prepared
  // for, and each expert gets a gate job and an up job writing the two halves of its eg_ row.
  const bool split_up = lw.experts_up.data != nullptr;
  auto gate_up = [&](int64_t e) {
    return split_up ? lw.experts_gate_up.row_slice((e - e0) * I, I)
                    : lw.experts_gate_up.row_slice((e - e0) * 2 * I, 2 * I);
  };
  auto down = [&](int64_t e) { return lw.experts_down.row_slice((e - e0) * H, H); };  // [H, I]
  const size_t ex0 = split ? 0 : 1;  // first expert entry of preps_

  // Section 1: shared gate and up, every held active expert's [gate; up] ([2I, H] per expert).
  prepare_all(!split, xn_.data(), H, lw.shared_gate, xe_.data(), gate_up);
  if (!split) {
    jobs_.push_back({&acts_, lw.shared_gate, gate_.data(), I});
    jobs_.push_back({&acts_, lw.shared_up, up_.data(), I});
  }
  size_t i = ex0;  // preps_[ex0..] are the held active experts in order
  for (int64_t e = e0; e < e1; ++e) {
    if (first_[size_t(e + 1)] == first_[size_t(e)]) continue;
    const int64_t b = preps_[i].x - xe_.data();  // row offset × H
    jobs_.push_back({preps_[i].acts, preps_[i].w, &eg_[b / H * 2 * I], 2 * I});
    if (split_up)
      jobs_.push_back({preps_[i].acts, lw.experts_up.row_slice((e - e0) * I, I),
                       &eg_[b / H * 2 * I + I], 2 * I});
    ++i;
  }
  {
    StageScope st(Stage::kMoeProducts);
    gemm_multi(pool_, jobs_.data(), jobs_.size());
  }

  const int64_t lo = first_[size_t(e0)], hi = first_[size_t(e1)];  // grouped rows held here
  if (!split) {
    pool_.parallel_for(size_t(n), 16, [&](size_t b, size_t e, int) {
      for (size_t j = b; j < e; ++j) {
        swiglu_fast(&gate_[j * I], &up_[j * I], &gate_[j * I], I);
        swiglu_fast(&eg_[j * 2 * I], &eg_[j * 2 * I + I], &eh_[j * I], I);
      }
    });
  } else {
    pool_.parallel_for(size_t(hi - lo), 16, [&](size_t b, size_t e, int) {
      for (size_t j = size_t(lo) + b; j < size_t(lo) + e; ++j)
        swiglu_fast(&eg_[j * 2 * I], &eg_[j * 2 * I + I], &eh_[j * I], I);
    });
  }
  // Section 2: every down projection.
  prepare_all(!split, gate_.data(), I, lw.shared_down, eh_.data(), down);
  if (!split) jobs_.push_back({&acts_, lw.shared_down, ffn_out_.data(), H});
  for (size_t i = ex0; i < preps_.size(); ++i) {
    const int64_t b = (preps_[i].x - eh_.data()) / I;
    jobs_.push_back({preps_[i].acts, preps_[i].w, &ye_[b * H], H});
  }
  {
    StageScope st(Stage::kMoeProducts);
    gemm_multi(pool_, jobs_.data(), jobs_.size());
  }

  if (split) {  // the shared expert while the other ranks' routed rows arrive
    if (Status st = exchange_start(layer, ye_.data()); !st) {
      moe_status_ = st;
      return;
    }
    prepare(xn_.data(), n, H, lw.shared_gate, acts_);
    const GemmJob shared[] = {{&acts_, lw.shared_gate, gate_.data(), I},
                              {&acts_, lw.shared_up, up_.data(), I}};
    {
      StageScope st(Stage::kMoeProducts);
      gemm_multi(pool_, shared, 2);
    }
    pool_.parallel_for(size_t(n), 16, [&](size_t b, size_t e, int) {
      for (size_t j = b; j < e; ++j) swiglu_fast(&gate_[j * I], &up_[j * I], &gate_[j * I], I);
    });
    prepare(gate_.data(), n, I, lw.shared_down, acts_);
    {
      StageScope st(Stage::kMoeProducts);
      gemm(pool_, acts_, lw.shared_down, ffn_out_.data(), H);
    }
    if (Status st = exchange_wait(); !st) {
      moe_status_ = st;
      return;
    }
  }
  // y = shared + routed, per token.
  per_token(n, [&](int64_t j) {  // rows_ is a permutation: each task owns its output row
    const float* r = &ye_[j * H];
    float* y = &ffn_out_[rows_[size_t(j)] * H];
    for (int64_t c = 0; c < H; ++c) y[c] += r[c];
  });
}

void TextDecoder::dense_mlp(int layer, int64_t n) {
  const LayerWeights& lw = w_->layers[size_t(layer)];
  const int64_t H = cfg_.hidden_size, F = cfg_.intermediate_size_mlp;
  if (fast_) {
    prepare(xn_.data(), n, H, lw.dense_gate, acts_);
    const GemmJob jobs[] = {{&acts_, lw.dense_gate, gate_.data(), F},
                            {&acts_, lw.dense_up, up_.data(), F}};
    {
      StageScope st(Stage::kMoeProducts);
      gemm_multi(pool_, jobs, 2);
    }
  } else {
    linear(xn_.data(), n, H, lw.dense_gate, gate_.data(), F);
    linear(xn_.data(), n, H, lw.dense_up, up_.data(), F);
  }
  (fast_ ? swiglu_fast : swiglu)(gate_.data(), up_.data(), gate_.data(), n * F);
  {
    StageScope st(Stage::kMoeProducts);
    linear(gate_.data(), n, F, lw.dense_down, ffn_out_.data(), H);
  }
}

void TextDecoder::linear(const float* x, int64_t n, int64_t x_stride, const WeightRef& w, float* y,
                         int64_t y_stride) {
  if (!fast_) {
    matmul(pool_, x, n, x_stride, w, y, y_stride);
    return;
  }
  prepare(x, n, x_stride, w, acts_);
  gemm(pool_, acts_, w, y, y_stride);
}

void TextDecoder::prepare(const float* x, int64_t n, int64_t x_stride, const WeightRef& w,
                          PreparedActs& acts) {
  prepare_acts(x, n, x_stride, w.cols, w.dtype, acts, &pool_);
}

}  // namespace herd
