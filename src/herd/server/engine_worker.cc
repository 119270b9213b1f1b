#include "herd/server/engine_worker.h"

#include <algorithm>

#include "herd/base/log.h"
#include "herd/server/stop_matcher.h"
#include "herd/tokenizer/stream_decoder.h"

namespace herd::server {

using Clock = std::chrono::steady_clock;

void Channel::push(ChoiceEvent e) {
  {
    std::lock_guard lock(mu_);
    q_.push_back(std::move(e));
  }
  cv_.notify_one();
}

bool Channel::pop_all(std::vector<ChoiceEvent>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !q_.empty(); })) return false;
  while (!q_.empty()) {
    out.push_back(std::move(q_.front()));
    q_.pop_front();
  }
  return true;
}

namespace {

// What the engine thread keeps for one choice between callbacks.
struct SeqState {
  SeqState(const Tokenizer& tok, std::vector<std::string> stops)
      : dec(tok), stop(std::move(stops)) {}
  std::shared_ptr<Job> job;
  int index = 0;
  StreamDecoder dec;
  StopMatcher stop;
  RowLogprobs row;
  const float* row_ptr = nullptr;
  bool first = true;
  Clock::time_point last;
};

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

EngineWorker::EngineWorker(Engine& engine, Metrics& metrics, const WorkerOptions& opt)
    : engine_(engine), metrics_(metrics), opt_(opt) {
  context_ = engine.scheduler().context();
  capacity_ = opt.max_seqs + opt.max_pending;
  thread_ = std::thread([this] { loop(); });
}

EngineWorker::~EngineWorker() {
  drain();
}

Status EngineWorker::enqueue(const std::shared_ptr<Job>& job) {
  if (draining_) return Status::error("the server is shutting down");
  const int64_t n = job->spec.n;
  // Reserve the sequences first so concurrent callers cannot overshoot together.
  if (outstanding_.fetch_add(n) + n > capacity_) {
    outstanding_.fetch_sub(n);
    return make_error("queue full: {} sequences running or waiting (limit {}); retry later",
                      outstanding_.load(), capacity_);
  }
  {
    std::lock_guard lock(mu_);
    // Checked under the lock the loop exits under, so no job is left behind unsubmitted.
    if (stop_) {
      outstanding_.fetch_sub(n);
      return Status::error("the server is shutting down");
    }
    incoming_.push_back(job);
  }
  cv_.notify_one();
  return Status::ok();
}

void EngineWorker::cancel(const std::shared_ptr<Job>& job) {
  job->cancelled = true;
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

void EngineWorker::drain() {
  if (!thread_.joinable()) return;
  draining_ = true;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void EngineWorker::submit(const std::shared_ptr<Job>& job) {
  Scheduler& sched = engine_.scheduler();
  const JobSpec& spec = job->spec;
  const Tokenizer& tok = engine_.tokenizer();
  const int64_t vocab = engine_.decoder().vocab_size();
  SplicedImages images;
  if (!spec.images.empty()) {
    // Encoding runs on this thread between steps: the other sequences wait for it.
    auto s = encode_images(spec);
    if (!s) {
      outstanding_ -= spec.n;
      job->submitted.set_value(s.status());
      return;
    }
    images = std::move(s).value();
  }
  for (int i = 0; i < spec.n; ++i) {
    auto st = std::make_shared<SeqState>(tok, spec.stop);
    st->job = job;
    st->index = i;
    Request r;
    r.prompt = spec.prompt;
    r.embeddings = images.embeddings;
    r.embedding_positions = images.positions;
    r.max_tokens = spec.max_tokens;
    r.sampling = spec.sampling;
    r.sampling.seed = spec.sampling.seed + uint64_t(i);
    r.stop_ids = engine_.stop_ids();
    r.cache_prompt = spec.cache_prompt;
    if (spec.constraint) r.constraint = spec.constraint->clone();
    if (spec.logprobs) {
      const int top = spec.top_logprobs;
      r.on_logits = [st, vocab, top](int64_t, const float* row) {
        st->row = summarize_row(row, vocab, top);
        st->row_ptr = row;
      };
    }
    r.on_token = [this, st, &tok](int32_t id) {
      const Clock::time_point now = Clock::now();
      if (st->first)
        metrics_.ttft.observe(seconds(now - st->job->arrived));
      else
        metrics_.inter_token.observe(seconds(now - st->last));
      st->first = false;
      st->last = now;
      ++metrics_.generated_tokens;
      ChoiceEvent e;
      e.index = st->index;
      e.tokens = 1;
      if (st->row_ptr) {
        e.logprobs.push_back(token_logprob(st->row, st->row_ptr, id));
        st->row_ptr = nullptr;
      }
      if (!tok.is_special(id) || st->job->spec.keep_special) {
        auto piece = st->dec.push(id);
        if (piece) e.text = st->stop.push(*piece);
      }
      st->job->channel.push(std::move(e));
      return !st->stop.stopped();
    };
    r.on_finish = [this, st](const Completion& c) {
      ChoiceEvent e;
      e.index = st->index;
      e.finished = true;
      if (!st->stop.stopped()) {
        e.text = st->stop.push(st->dec.flush());
        e.text += st->stop.flush();
      }
      e.reason = c.reason;
      e.error = c.error;
      e.prompt_tokens = c.prompt_tokens;
      e.reused_tokens = c.reused_tokens;
      e.generated = c.generated;
      metrics_.prompt_tokens += c.prompt_tokens;
      metrics_.reused_tokens += c.reused_tokens;
      metrics_.request_latency.observe(seconds(Clock::now() - st->job->arrived));
      --outstanding_;
      --st->job->open;
      st->job->channel.push(std::move(e));
    };
    auto id = sched.submit(std::move(r));
    if (!id) {
      // The request fails as a whole; choices already submitted are cancelled.
      outstanding_ -= spec.n - i;
      for (int64_t sid : job->seq_ids) sched.cancel(sid);
      job->cancel_sent = true;
      job->cancelled = true;
      if (job->open > 0) active_.push_back(job);
      job->submitted.set_value(id.status());
      return;
    }
    job->seq_ids.push_back(*id);
    ++job->open;
  }
  active_.push_back(job);
  job->submitted.set_value(Status::ok());
}

Result<SplicedImages> EngineWorker::encode_images(const JobSpec& spec) {
  if (!vision_) {
    HERD_ASSIGN_OR_RETURN(vision_, VisionEncoder::create(engine_.model(), engine_.pool(),
                                                         engine_.decoder().precision()));
  }
  return splice_images(*vision_, engine_.tokenizer(), spec.prompt, spec.images);
}

void EngineWorker::publish_gauges() {
  const Scheduler& sched = engine_.scheduler();
  metrics_.active_seqs = sched.running();
  metrics_.queued_seqs = sched.waiting();
  const KvPagePool& pool = sched.global_pool();
  metrics_.kv_pages_used = pool.in_use();
  metrics_.kv_pages_free = pool.capacity() - pool.in_use();
  // mincore over the pools: at most once a second while running (a large pool is millions of
  // OS pages), and on every idle step, so a drained server reports its final value.
  const auto now = Clock::now();
  if (sched.running() == 0 || now - resident_at_ >= std::chrono::seconds(1)) {
    resident_at_ = now;
    const KvPagePool* chunked = sched.chunked_pool();
    metrics_.kv_resident_bytes = pool.resident_bytes() + (chunked ? chunked->resident_bytes() : 0);
  }
}

void EngineWorker::loop() {
  Scheduler& sched = engine_.scheduler();
  bool idle = false;
  while (true) {
    std::deque<std::shared_ptr<Job>> fresh;
    {
      std::unique_lock lock(mu_);
      if (idle) {
        if (stop_ && active_.empty() && incoming_.empty()) break;
        // Idle: sleep until work or a cancel arrives (bounded, in case admission was waiting
        // on pages that a finished sequence has just returned).
        cv_.wait_for(lock, std::chrono::milliseconds(active_.empty() ? 200 : 2),
                     [&] { return wake_ || stop_ || !incoming_.empty(); });
      }
      wake_ = false;
      fresh.swap(incoming_);
    }
    for (auto& job : fresh) submit(job);
    for (auto& job : active_)
      if (job->cancelled && !job->cancel_sent) {
        for (int64_t id : job->seq_ids) sched.cancel(id);
        job->cancel_sent = true;
      }
    auto stepped = sched.step();
    if (!stepped) {
      // A failed forward leaves no sequence in a known state: fail them all, keep serving.
      log(LogLevel::kError, "engine step failed: {}", stepped.status().message());
      for (auto& job : active_) {
        for (int64_t id : job->seq_ids) sched.cancel(id);
        job->cancel_sent = true;
      }
    }
    idle = !stepped || !*stepped;
    if (!idle) metrics_.batch_sequences.observe(double(sched.last_batch_sequences()));
    active_.erase(std::remove_if(active_.begin(), active_.end(),
                                 [](const std::shared_ptr<Job>& j) { return j->open == 0; }),
                  active_.end());
    publish_gauges();
  }
  publish_gauges();
}

}  // namespace herd::server
