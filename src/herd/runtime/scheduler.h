// Continuous batching (DESIGN.md runtime/): many sequences stepped together over shared KV page
// pools. Each step() forms ONE forward batch from one decode token of every running sequence plus
// slices of pending prompts up to a per-step token budget, then samples and hands tokens out.
// Sequences join and leave between steps; a long prompt is prefilled in slices so running streams
// keep decoding meanwhile. The decoder is bitwise batch-invariant, so a sequence's logits do not
// depend on what else is in the batch.
//
// Admission reserves each sequence's worst case (prompt + max_tokens) in pages, so a running
// sequence never runs out of KV: a request that can never fit fails at submit(); one that fits
// later waits in a bounded queue. Requests are validated before they can join a batch, so one bad
// request never fails the others. Single-threaded: the engine thread owns the scheduler.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "herd/model/text.h"
#include "herd/runtime/kv_cache.h"
#include "herd/runtime/sampler.h"
#include "herd/runtime/token_constraint.h"

namespace herd {

enum class FinishReason { kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct Completion {
  int64_t id = 0;
  FinishReason reason = FinishReason::kStop;
  Status error;  // set when reason == kError
  int64_t prompt_tokens = 0;
  int64_t reused_tokens = 0;  // prompt tokens taken from the prefix cache (not evaluated)
  int64_t generated = 0;      // tokens handed to on_token (a stop token is not counted)
  int64_t decode_steps = 0;   // forwards that evaluated a generated token
  double queue_seconds = 0, prefill_seconds = 0, decode_seconds = 0;
};

struct Request {
  std::vector<int32_t> prompt;
  // Embedding input (early-fusion vision): row i (hidden_size floats) replaces the token
  // embedding at prompt index embedding_positions[i] (ascending).
  std::vector<float> embeddings;
  std::vector<int64_t> embedding_positions;
  int64_t max_tokens = 0;  // 0: evaluate the prompt only (logits)
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;
  // Constrained decoding (a request's own instance, never shared between requests): only the
  // tokens it allows are sampled, and the sequence stops as soon as it is complete.
  std::shared_ptr<TokenConstraint> constraint;
  std::vector<int64_t> logits_positions;  // prompt indices whose logits go to on_logits
  bool reuse_prefix = true;
  // Publish this request's full pages (prompt and generated) for later requests to reuse (as
  // llama.cpp's `cache_prompt`). False: its pages go back to the free list when it ends, and the
  // next request takes them first, already resident, instead of cached pages' untouched
  // neighbours (herd bench's random prompts).
  bool cache_prompt = true;
  // Called on the engine thread. on_token: false stops the sequence (finish reason kStop).
  // on_logits(position, row): every logits row computed for the sequence (the prompt indices
  // asked for, the last prompt token, every decode step's token), by absolute position.
  std::function<bool(int32_t)> on_token;
  std::function<void(int64_t, const float*)> on_logits;
  std::function<void(const Completion&)> on_finish;
  // After every forward that evaluated a slice of the prompt: prompt tokens done (reused ones
  // included) and the prompt's length (progress bars of long prefills).
  std::function<void(int64_t done, int64_t total)> on_prefill;
};

// One step of the batch as the other ranks of an expert-parallel run (dist/cluster.h) replay it.
struct StepRecord {
  std::span<const BatchToken> batch;
  std::span<const int64_t> seq_ids;   // per cache index of the batch: the sequence's id
  std::span<const int64_t> released;  // sequences whose KV was released since the last step
};

struct SchedulerOptions {
  int64_t max_seqs = 16;      // sequences in one batch
  int64_t step_tokens = 512;  // token budget of one step (decode tokens + prompt slices)
  int64_t max_queue = 256;    // waiting requests
  int64_t context = 0;        // prompt + max_tokens limit (0: max_position_embeddings)
  KvType kv_type = KvType::kBF16;
  int64_t page_rows = 32;
  int64_t global_pages = 0;   // 0: enough for max_seqs × context
  int64_t chunked_pages = 0;  // 0: max_seqs × window + as many again for the prefix cache
};

class Scheduler {
 public:
  Scheduler(TextDecoder& decoder, const SchedulerOptions& opt);
  ~Scheduler();

  // Validates and queues a request; returns its id. Errors (bad input, can never fit, queue full)
  // name the request's field at fault and leave every other sequence untouched.
  Result<int64_t> submit(Request r);
  // Stops a request (queued or running); its pages return to the pool at the next step.
  void cancel(int64_t id);
  // Runs one batch. Returns false when there was nothing to do.
  Result<bool> step();
  Status run_until_idle();

  int64_t running() const { return int64_t(running_.size()); }
  // Sequences in the last step's batch (decoding or prefilling), for batching metrics.
  int64_t last_batch_sequences() const { return int64_t(parts_.size()); }
  int64_t waiting() const { return int64_t(queue_.size()); }
  const KvCacheSpec& kv_spec() const { return spec_; }
  const KvPagePool& global_pool() const { return *global_; }
  const KvPagePool* chunked_pool() const { return chunked_.get(); }
  // KV bytes held by a running sequence (0 when not running).
  size_t sequence_kv_bytes(int64_t id) const;
  int64_t context() const { return context_; }
  // Observes every forward's named intermediates (herd logits --expert-stats).
  void set_trace(TraceFn trace) { trace_ = std::move(trace); }
  // Every logits row is checked for NaN/Inf (runtime/nonfinite.h: tens of microseconds a row);
  // a sequence whose row is not finite stops with an error that adds what this returns for its
  // tokens up to that position (the engine re-runs them on the f32 path to name the layer).
  using Diagnosis = std::function<std::string(std::span<const int32_t> tokens)>;
  void set_nonfinite_diagnosis(Diagnosis d) { diagnose_ = std::move(d); }

  // Expert parallelism, rank 0: sees every batch before its forward (an error fails the step
  // like a forward error). Prefix reuse must be off (the replicas start every sequence at 0).
  using StepObserver = std::function<Status(const StepRecord&)>;
  void set_step_observer(StepObserver o) { observer_ = std::move(o); }
  // The other ranks: the same forward over KV of their own, kept in step by rank 0's records
  // (sequence ids, released ones). No logits are computed.
  Status replay(const StepRecord& r);
  // Wall time spent in the decoder's forward (step() and replay()), for the compute/exchange split.
  double forward_seconds() const { return forward_seconds_; }

 private:
  struct Seq;
  bool admit(Seq& s);
  bool waits_for_shared_prefill(const Seq& q) const;
  void finish(Seq& s, FinishReason r, Status error = Status::ok());
  void deliver(Seq& s, const float* logits_row, int64_t pos, bool sample);
  struct Part;
  void presample(const std::vector<Part>& parts);

  TextDecoder& decoder_;
  SchedulerOptions opt_;
  int64_t context_ = 0;
  KvCacheSpec spec_;
  std::unique_ptr<KvPagePool> global_, chunked_;
  std::deque<std::unique_ptr<Seq>> queue_;
  std::vector<std::unique_ptr<Seq>> running_;
  int64_t next_id_ = 1;
  int64_t outstanding_global_ = 0;  // pages running sequences may still take
  int64_t reserved_chunked_ = 0;    // Σ window pages of running sequences
  // Per-step buffers, reused (a steady decode step allocates nothing).
  struct Part {
    Seq* s;
    int64_t t0, n;  // batch rows [t0, t0+n)
    bool prompt;
  };
  std::vector<Part> parts_;
  struct Draw {
    Seq* s;
    int64_t row;  // into logits_
  };
  std::vector<Draw> draws_;
  std::vector<BatchToken> batch_;
  std::vector<KvCache*> caches_;
  std::vector<float> logits_;
  std::vector<float> constrained_row_;  // a constrained sequence's masked copy of its row
  std::vector<Seq*> prefill_order_;
  TraceFn trace_;
  Diagnosis diagnose_;
  StepObserver observer_;
  std::vector<int64_t> seq_ids_, released_;
  std::map<int64_t, std::unique_ptr<SequenceKv>> replicas_;  // replay(): by rank 0's sequence id
  std::vector<int32_t> replay_tokens_;
  double forward_seconds_ = 0;
};

}  // namespace herd
