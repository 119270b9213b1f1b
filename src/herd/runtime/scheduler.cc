#include "herd/runtime/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "herd/runtime/nonfinite.h"

namespace herd {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "?";
}

struct Scheduler::Seq {
  int64_t id = 0;
  Request req;
  std::unique_ptr<SequenceKv> kv;
  std::unique_ptr<Sampler> sampler;
  std::vector<int32_t> history;  // prompt + generated (the repetition penalty's window)
  int64_t fed = 0;               // prompt tokens evaluated or reused
  int32_t pending = -1;          // sampled token to feed next step (decode phase)
  int64_t want_next = 0;         // next index into req.logits_positions
  int64_t total = 0;             // prompt + max_tokens: the pages reserved for
  int64_t held_global = 0;       // pages counted against outstanding_global_
  bool cancelled = false, done = false;
  // This step's draw, made in parallel with the other sequences' (Scheduler::presample), and
  // whether its logits row was finite: -1 when not made.
  int32_t presampled = -1;
  int8_t finite = -1;
  Completion c;
  Clock::time_point t_submit, t_start, t_first;
};

Scheduler::Scheduler(TextDecoder& decoder, const SchedulerOptions& opt)
    : decoder_(decoder), opt_(opt) {
  const Llama4TextConfig& cfg = decoder.config();
  opt_.max_seqs = std::max<int64_t>(opt_.max_seqs, 1);
  opt_.step_tokens = std::max<int64_t>(opt_.step_tokens, opt_.max_seqs);
  opt_.page_rows = std::max<int64_t>((opt_.page_rows + 15) / 16 * 16, 16);
  context_ = opt_.context > 0 ? std::min(opt_.context, cfg.max_position_embeddings)
                              : cfg.max_position_embeddings;
  // One sequence gets at most step_tokens in one forward (its slice of the budget).
  spec_ = KvCacheSpec::make(cfg, opt_.kv_type, opt_.page_rows, opt_.step_tokens);
  int64_t g = opt_.global_pages;
  if (g <= 0) g = opt_.max_seqs * spec_.global_pages(context_);
  global_ = std::make_unique<KvPagePool>(spec_.global, g);
  if (spec_.chunked.layers > 0) {
    int64_t c = opt_.chunked_pages;
    if (c <= 0) c = 2 * opt_.max_seqs * spec_.chunked_pages(context_);
    chunked_ = std::make_unique<KvPagePool>(spec_.chunked, c);
  }
}

Scheduler::~Scheduler() = default;

Result<int64_t> Scheduler::submit(Request r) {
  const Llama4TextConfig& cfg = decoder_.config();
  const int64_t n = int64_t(r.prompt.size());
  if (n == 0) return make_error("request: prompt is empty");
  for (int64_t i = 0; i < n; ++i)
    if (r.prompt[size_t(i)] < 0 || r.prompt[size_t(i)] >= cfg.vocab_size)
      return make_error("request: prompt token {} at index {} is outside the vocabulary (size {})",
                        r.prompt[size_t(i)], i, cfg.vocab_size);
  if (r.max_tokens < 0) return make_error("request: max_tokens {} is negative", r.max_tokens);
  if (n + r.max_tokens > context_)
    return make_error(
        "request: prompt ({} tokens) + max_tokens ({}) = {} exceeds the context of {} tokens", n,
        r.max_tokens, n + r.max_tokens, context_);
  if (int64_t(r.embeddings.size()) != int64_t(r.embedding_positions.size()) * cfg.hidden_size)
    return make_error("request: {} embedding floats for {} positions of hidden size {}",
                      r.embeddings.size(), r.embedding_positions.size(), cfg.hidden_size);
  for (size_t i = 0; i < r.embedding_positions.size(); ++i) {
    const int64_t p = r.embedding_positions[i];
    if (p < 0 || p >= n || (i > 0 && p <= r.embedding_positions[i - 1]))
      return make_error("request: embedding position {} is out of order or outside the prompt", p);
  }
  for (float x : r.embeddings)
    if (!std::isfinite(x)) return make_error("request: embeddings contain a non-finite value");
  for (const auto& [id, bias] : r.sampling.logit_bias)
    if (id < 0 || id >= cfg.vocab_size || !std::isfinite(bias))
      return make_error(
          "request: logit_bias for token {} is outside the vocabulary (size {}) or "
          "not finite",
          id, cfg.vocab_size);
  for (size_t i = 0; i < r.logits_positions.size(); ++i) {
    const int64_t p = r.logits_positions[i];
    if (p < 0 || p >= n || (i > 0 && p <= r.logits_positions[i - 1]))
      return make_error("request: logits position {} is out of order or outside the prompt", p);
  }
  const int64_t total = n + r.max_tokens;
  if (spec_.global_pages(total) > global_->capacity())
    return make_error(
        "request: {} tokens need {} KV pages but the pool holds {} (raise --kv-size or lower "
        "max_tokens)",
        total, spec_.global_pages(total), global_->capacity());
  if (chunked_ && spec_.chunked_pages(total) > chunked_->capacity())
    return make_error("request: needs {} chunked-layer KV pages but the pool holds {}",
                      spec_.chunked_pages(total), chunked_->capacity());
  if (int64_t(queue_.size()) >= opt_.max_queue)
    return make_error("request: the queue is full ({} waiting)", queue_.size());
  auto s = std::make_unique<Seq>();
  s->id = next_id_++;
  s->total = total;
  // Expert parallelism: the other ranks' KV replicas are built from the batches alone.
  if (observer_) r.reuse_prefix = false;
  s->req = std::move(r);
  s->c.id = s->id;
  s->c.prompt_tokens = n;
  s->t_submit = Clock::now();
  const int64_t id = s->id;
  queue_.push_back(std::move(s));
  return id;
}

void Scheduler::cancel(int64_t id) {
  for (auto& s : queue_)
    if (s->id == id) s->cancelled = true;
  for (auto& s : running_)
    if (s->id == id) s->cancelled = true;
}

size_t Scheduler::sequence_kv_bytes(int64_t id) const {
  for (const auto& s : running_)
    if (s->id == id) return s->kv->bytes();
  return 0;
}

// Takes the sequence's prefix pages and reserves its worst case; false when it does not fit yet.
bool Scheduler::admit(Seq& s) {
  auto kv = std::make_unique<SequenceKv>(spec_, *global_, chunked_.get(), s.total);
  const Request& r = s.req;
  const int64_t n = int64_t(r.prompt.size());
  const int64_t first_embed = r.embedding_positions.empty() ? n : r.embedding_positions[0];
  kv->set_no_publish_from(r.embedding_positions.empty() ? INT64_MAX : first_embed);
  PrefixMatch m;
  // At least the last prompt token is evaluated: its logits start the generation.
  if (r.reuse_prefix) m = kv->match_prefix(r.prompt, std::min(n - 1, first_embed));
  const int64_t need_g = spec_.global_pages(s.total) - int64_t(m.global_ids.size());
  const int64_t need_c = spec_.chunked_pages(s.total);
  if (global_->in_use() + outstanding_global_ + m.revived + need_g > global_->capacity())
    return false;
  if (chunked_ && reserved_chunked_ + need_c > chunked_->capacity()) return false;
  kv->adopt(m, r.prompt);
  // Not cached: only the pages taken from the cache stay published.
  if (!r.cache_prompt) kv->set_no_publish_from(int64_t(m.keys.size()) * spec_.page_rows());
  outstanding_global_ += need_g;
  reserved_chunked_ += need_c;
  s.held_global = kv->global_pages_held();
  s.fed = m.tokens;
  s.c.reused_tokens = m.tokens;
  s.kv = std::move(kv);
  s.sampler = std::make_unique<Sampler>(r.sampling);
  s.history.reserve(size_t(s.total));
  s.history.assign(r.prompt.begin(), r.prompt.end());
  while (s.want_next < int64_t(r.logits_positions.size()) &&
         r.logits_positions[size_t(s.want_next)] < s.fed)
    ++s.want_next;  // reused positions have no logits to give (the caller asked for cold ones)
  s.t_start = Clock::now();
  s.c.queue_seconds = std::chrono::duration<double>(s.t_start - s.t_submit).count();
  return true;
}

bool Scheduler::waits_for_shared_prefill(const Seq& q) const {
  if (!q.req.reuse_prefix) return false;
  const auto& a = q.req.prompt;
  for (const auto& sp : running_) {
    const Seq& s = *sp;
    const auto& b = s.req.prompt;
    if (!s.req.reuse_prefix || s.fed >= int64_t(b.size())) continue;
    int64_t common = 0;
    const int64_t lim = int64_t(std::min(a.size(), b.size()));
    while (common < lim && a[size_t(common)] == b[size_t(common)]) ++common;
    if (common >= spec_.page_rows() && s.fed < common) return true;
  }
  return false;
}

void Scheduler::finish(Seq& s, FinishReason r, Status error) {
  if (s.done) return;
  s.done = true;
  s.c.reason = r;
  s.c.error = std::move(error);
  if (s.kv) {
    // Return the reservation: what it may still take, and the window it held.
    outstanding_global_ -= spec_.global_pages(s.total) - s.held_global;
    reserved_chunked_ -= spec_.chunked_pages(s.total);
    s.kv->release();
    s.kv.reset();
    if (observer_) released_.push_back(s.id);
  }
  if (s.t_first != Clock::time_point()) s.c.decode_seconds = seconds_since(s.t_first);
  if (s.req.on_finish) s.req.on_finish(s.c);
}

// Hands a logits row to the caller and, for the row that ends the prompt or a decode step,
// samples the next token.
void Scheduler::deliver(Seq& s, const float* row, int64_t pos, bool sample) {
  // The presampled draw belongs to the row that samples (a prompt's earlier rows come first).
  const int32_t presampled = sample ? std::exchange(s.presampled, -1) : -1;
  const int8_t finite = sample ? std::exchange(s.finite, int8_t(-1)) : int8_t(-1);
  if (s.done) return;
  if (!(finite >= 0 ? finite == 1 : all_finite(row, decoder_.vocab_size()))) {
    std::string msg =
        fmt::format("request {}: the logits at position {} are not finite", s.id, pos);
    if (diagnose_) {
      // The tokens up to and including pos: the prompt, then the generated ones.
      std::vector<int32_t> upto(
          s.history.begin(),
          s.history.begin() + std::min<int64_t>(pos + 1, int64_t(s.history.size())));
      msg += ": " + diagnose_(upto);
    }
    finish(s, FinishReason::kError, Status::error(msg));
    return;
  }
  if (s.req.on_logits) s.req.on_logits(pos, row);
  if (!sample || s.done) return;
  if (s.c.generated >= s.req.max_tokens) {
    finish(s, FinishReason::kLength);
    return;
  }
  const int64_t vocab = decoder_.vocab_size();
  TokenConstraint* constraint = s.req.constraint.get();
  if (constraint) {
    if (constraint->complete()) {
      finish(s, FinishReason::kStop);
      return;
    }
    constrained_row_.assign(row, row + vocab);
    if (constraint->mask(constrained_row_.data(), vocab) == 0) {
      finish(s, FinishReason::kError,
             make_error("request {}: no token of the vocabulary can continue the constrained "
                        "output at position {}",
                        s.id, pos));
      return;
    }
    row = constrained_row_.data();
  }
  const auto generated = std::span<const int32_t>(s.history).subspan(s.req.prompt.size());
  const int32_t tok =
      presampled >= 0 ? presampled : s.sampler->sample(row, vocab, s.history, generated);
  if (constraint) constraint->accept(tok);
  if (std::find(s.req.stop_ids.begin(), s.req.stop_ids.end(), tok) != s.req.stop_ids.end()) {
    finish(s, FinishReason::kStop);
    return;
  }
  ++s.c.generated;
  s.history.push_back(tok);
  if (s.req.on_token && !s.req.on_token(tok)) {
    finish(s, FinishReason::kStop);
    return;
  }
  // No need to evaluate a token nobody samples after.
  if (s.c.generated >= s.req.max_tokens) {
    finish(s, FinishReason::kLength);
    return;
  }
  s.pending = tok;
}

// The rows of this step that deliver() will sample from, sampled on the pool: at Llama 4's
// vocabulary a draw with a temperature reads 202k logits, 16 sequences' in a row a few ms on one
// thread. Each sequence owns its sampler and deliver() has not touched its history yet, so a
// draw here is the one deliver() would make. Rows deliver() may not sample from (a constrained
// request, one at max_tokens, a finished one) are left to it; a draw made for a sequence that
// deliver() then finishes (non-finite logits) is never used.
void Scheduler::presample(const std::vector<Part>& parts) {
  const int64_t V = decoder_.vocab_size();
  draws_.clear();
  int64_t row = 0;
  for (const Part& p : parts) {
    Seq& s = *p.s;
    const int64_t n_prompt = int64_t(s.req.prompt.size());
    for (int64_t t = p.t0; t < p.t0 + p.n; ++t) {
      const BatchToken& b = batch_[size_t(t)];
      if (!b.logits) continue;
      const int64_t r = row++;
      const bool sample = !p.prompt || (b.pos == n_prompt - 1 && s.req.max_tokens > 0);
      if (sample && !s.done && !s.req.constraint && s.c.generated < s.req.max_tokens)
        draws_.push_back({&s, r});
    }
  }
  if (draws_.size() < 2) return;
  decoder_.pool().parallel_for(draws_.size(), 1, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) {
      Seq& s = *draws_[i].s;
      const float* r = &logits_[size_t(draws_[i].row * V)];
      const auto generated = std::span<const int32_t>(s.history).subspan(s.req.prompt.size());
      s.finite = all_finite(r, V) ? 1 : 0;
      s.presampled = s.sampler->sample(r, V, s.history, generated);
    }
  });
}

Result<bool> Scheduler::step() {
  // 1. Leavers: cancelled or finished sequences return their pages now.
  for (auto& s : queue_)
    if (s->cancelled) finish(*s, FinishReason::kCancelled);
  for (auto& s : running_)
    if (s->cancelled) finish(*s, FinishReason::kCancelled);
  auto gone = [](const std::unique_ptr<Seq>& s) { return s->done; };
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(), gone), queue_.end());
  running_.erase(std::remove_if(running_.begin(), running_.end(), gone), running_.end());
  // 2. Joiners, first come first served. A request whose prompt shares at least a page with a
  // prompt still being prefilled waits for it (a step or a few), then reuses its pages instead
  // of evaluating the same tokens again (n choices of one prompt, concurrent chats).
  while (!queue_.empty() && int64_t(running_.size()) < opt_.max_seqs &&
         !waits_for_shared_prefill(*queue_.front()) && admit(*queue_.front())) {
    running_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  if (running_.empty()) return false;

  // 3. One batch: every decode token, then prompt slices within the budget.
  std::vector<Part>& parts = parts_;
  parts.clear();
  batch_.clear();
  caches_.clear();
  seq_ids_.clear();
  int64_t budget = opt_.step_tokens;
  for (auto& sp : running_)
    if (sp->pending >= 0) {
      parts.push_back({sp.get(), int64_t(batch_.size()), 1, false});
      caches_.push_back(sp->kv.get());
      seq_ids_.push_back(sp->id);
      batch_.push_back(BatchToken{sp->pending, sp->kv->n_past(), int(caches_.size() - 1), true});
      --budget;
    }
  // Prompt slices, shortest remaining prompt first: a short request is not held behind a long
  // prefill (which still advances by what the budget leaves every step).
  prefill_order_.clear();
  for (auto& sp : running_)
    if (sp->pending < 0 && sp->fed < int64_t(sp->req.prompt.size()))
      prefill_order_.push_back(sp.get());
  std::stable_sort(prefill_order_.begin(), prefill_order_.end(), [](const Seq* a, const Seq* b) {
    return int64_t(a->req.prompt.size()) - a->fed < int64_t(b->req.prompt.size()) - b->fed;
  });
  for (Seq* sp : prefill_order_) {
    Seq& s = *sp;
    const int64_t n_prompt = int64_t(s.req.prompt.size());
    if (budget <= 0) break;
    const int64_t n = std::min(budget, n_prompt - s.fed);
    budget -= n;
    parts.push_back({&s, int64_t(batch_.size()), n, true});
    caches_.push_back(s.kv.get());
    seq_ids_.push_back(s.id);
    const int seq = int(caches_.size() - 1);
    const auto& ep = s.req.embedding_positions;
    auto e_it = std::lower_bound(ep.begin(), ep.end(), s.fed);
    int64_t w = s.want_next;
    for (int64_t i = s.fed; i < s.fed + n; ++i) {
      BatchToken b{s.req.prompt[size_t(i)], i, seq, false};
      if (w < int64_t(s.req.logits_positions.size()) && s.req.logits_positions[size_t(w)] == i) {
        b.logits = true;
        ++w;
      }
      if (i == n_prompt - 1 && s.req.max_tokens > 0) b.logits = true;
      if (e_it != ep.end() && *e_it == i) {
        b.embedding =
            &s.req.embeddings[size_t((e_it - ep.begin()) * decoder_.config().hidden_size)];
        ++e_it;
      }
      batch_.push_back(b);
    }
  }
  // 4. Room in the pages (reserved at admission, so this fails only on a bookkeeping bug).
  for (const Part& p : parts) {
    if (Status st = p.s->kv->prepare(p.n); !st) return st;
    p.s->held_global = p.s->kv->global_pages_held();
  }
  outstanding_global_ = 0;
  for (auto& sp : running_)
    outstanding_global_ += spec_.global_pages(sp->total) - sp->kv->global_pages_held();

  int64_t n_logits = 0;
  for (const BatchToken& b : batch_) n_logits += b.logits;
  const int64_t V = decoder_.vocab_size();
  if (int64_t(logits_.size()) < n_logits * V) logits_.resize(size_t(n_logits * V));
  Status st = Status::ok();
  if (observer_) {  // expert parallelism: the other ranks step the same batch
    st = observer_(StepRecord{batch_, seq_ids_, released_});
    released_.clear();
  }
  const auto t_forward = Clock::now();
  if (st) st = decoder_.forward(batch_, caches_, logits_.data(), trace_);
  forward_seconds_ += seconds_since(t_forward);
  if (!st) {
    // Inputs were validated at submit, so this is the model's fault, not one request's.
    for (const Part& p : parts) finish(*p.s, FinishReason::kError, st);
    running_.erase(std::remove_if(running_.begin(), running_.end(), gone), running_.end());
    return st;
  }

  presample(parts);
  // 5. Advance every sequence, then hand out logits and sampled tokens in batch order.
  int64_t row = 0;
  for (const Part& p : parts) {
    Seq& s = *p.s;
    if (p.prompt) {
      s.kv->commit(std::span<const int32_t>(s.req.prompt).subspan(size_t(s.fed), size_t(p.n)));
    } else {
      const int32_t tok = s.pending;
      s.kv->commit(std::span<const int32_t>(&tok, 1));
      ++s.c.decode_steps;
      s.pending = -1;
    }
    const int64_t n_prompt = int64_t(s.req.prompt.size());
    for (int64_t t = p.t0; t < p.t0 + p.n; ++t) {
      const BatchToken& b = batch_[size_t(t)];
      if (!b.logits) continue;
      const float* r = &logits_[size_t(row++ * V)];
      if (p.prompt) {
        const bool asked = s.want_next < int64_t(s.req.logits_positions.size()) &&
                           s.req.logits_positions[size_t(s.want_next)] == b.pos;
        if (asked) ++s.want_next;
        const bool last = b.pos == n_prompt - 1 && s.req.max_tokens > 0;
        if (last) {
          s.c.prefill_seconds = seconds_since(s.t_start);
          s.t_first = Clock::now();
        }
        if (asked || last) deliver(s, r, b.pos, last);
      } else {
        deliver(s, r, b.pos, true);
      }
    }
    if (p.prompt) {
      s.fed += p.n;
      if (s.req.on_prefill) s.req.on_prefill(s.fed, n_prompt);
      if (s.fed == n_prompt && s.req.max_tokens == 0) {
        s.c.prefill_seconds = seconds_since(s.t_start);
        finish(s, FinishReason::kLength);
      }
    }
  }
  running_.erase(std::remove_if(running_.begin(), running_.end(), gone), running_.end());
  return true;
}

Status Scheduler::replay(const StepRecord& r) {
  std::vector<KvCache*>& caches = caches_;
  for (int64_t id : r.released) replicas_.erase(id);
  caches.clear();
  for (int64_t id : r.seq_ids) {
    auto& kv = replicas_[id];
    if (!kv) kv = std::make_unique<SequenceKv>(spec_, *global_, chunked_.get(), 0);
    caches.push_back(kv.get());
  }
  // Each sequence's tokens of the batch are consecutive (one part per sequence), as on rank 0.
  std::vector<int32_t>& tokens = replay_tokens_;
  auto each_part = [&](auto fn) {
    for (size_t t = 0; t < r.batch.size();) {
      size_t e = t + 1;
      while (e < r.batch.size() && r.batch[e].seq == r.batch[t].seq) ++e;
      HERD_TRY(fn(r.batch[t].seq, t, e));
      t = e;
    }
    return Status::ok();
  };
  for (const BatchToken& b : r.batch)
    if (b.seq < 0 || size_t(b.seq) >= caches.size())
      return make_error("replayed step: batch token refers to sequence index {} of {}", b.seq,
                        caches.size());
  HERD_TRY(each_part([&](int seq, size_t t, size_t e) {
    auto* kv = static_cast<SequenceKv*>(caches[size_t(seq)]);
    if (kv->n_past() != r.batch[t].pos)
      return make_error("replayed step: sequence {} is at position {} here but {} on rank 0",
                        r.seq_ids[size_t(seq)], kv->n_past(), r.batch[t].pos);
    return kv->prepare(int64_t(e - t));
  }));
  const auto t_forward = Clock::now();
  HERD_TRY(decoder_.forward(r.batch, caches, nullptr, trace_));
  forward_seconds_ += seconds_since(t_forward);
  return each_part([&](int seq, size_t t, size_t e) {
    tokens.clear();
    for (size_t i = t; i < e; ++i) tokens.push_back(r.batch[i].token);
    static_cast<SequenceKv*>(caches[size_t(seq)])->commit(tokens);
    return Status::ok();
  });
}

Status Scheduler::run_until_idle() {
  for (;;) {
    HERD_ASSIGN_OR_RETURN(bool did, step());
    if (!did && queue_.empty()) return Status::ok();
    if (!did) {
      // Nothing runs but the head of the queue does not fit: it never will.
      finish(*queue_.front(), FinishReason::kError,
             make_error("request {} does not fit in the KV pool", queue_.front()->id));
      queue_.pop_front();
    }
  }
}

}  // namespace herd
