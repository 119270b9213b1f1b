// The engine thread (DESIGN.md: "HTTP threads only parse, validate and enqueue; one engine thread
// owns weights and KV and runs continuous batching"). HTTP threads hand a Job to enqueue() and
// read its Channel; the engine thread submits the job's sequences to the scheduler, steps it,
// and turns each token into text (UTF-8 safe, stop strings held back) on the way out, so a stop
// string ends its sequence at once. Cancelling (client gone, stop) is a flag the engine thread
// reads between steps.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "herd/model/vision_preprocess.h"
#include "herd/runtime/engine.h"
#include "herd/runtime/vision_splice.h"
#include "herd/server/logprobs.h"
#include "herd/server/metrics.h"

namespace herd::server {

// One thing that happened to one choice: text (may be empty), its tokens' logprobs, or the end.
struct ChoiceEvent {
  int index = 0;
  std::string text;
  std::vector<TokenLogprob> logprobs;
  int64_t tokens = 0;  // tokens behind this event
  bool finished = false;
  FinishReason reason = FinishReason::kStop;
  Status error;
  int64_t prompt_tokens = 0, reused_tokens = 0, generated = 0;
};

// Single-consumer queue of events for one HTTP request.
class Channel {
 public:
  void push(ChoiceEvent e);
  // Waits up to `timeout` for events; appends them all to `out`. False on timeout.
  bool pop_all(std::vector<ChoiceEvent>& out, std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ChoiceEvent> q_;
};

struct JobSpec {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 16;
  SamplingParams sampling;  // choice i samples with seed + i
  int n = 1;
  std::vector<std::string> stop;
  bool logprobs = false;
  int top_logprobs = 0;
  // Special tokens in the output: kept as their names (tool calls need <|python_start|>) or
  // dropped from the text.
  bool keep_special = false;
  bool cache_prompt = true;  // Request::cache_prompt
  // Forced tool calls: each choice decodes under its own clone of this (null: unconstrained).
  std::shared_ptr<const TokenConstraint> constraint;
  // Chat images (server/image_prompt.h): their preprocessed tiles and, per image, the prompt
  // index of each tile's <|patch|> run (global tile last), where the vision encoder's
  // embeddings replace the token embeddings (Request::embeddings / embedding_positions). The
  // engine thread encodes them (EngineWorker::encode_images) before the job's first step.
  std::vector<ImageTiles> images;
  std::vector<std::vector<size_t>> image_patch_runs;
};

struct Job {
  JobSpec spec;
  Channel channel;
  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
  // Set by the engine thread once every choice went to the scheduler: ok, or why one could not
  // (a bad request, one that can never fit), before any token, so the HTTP status is still open.
  std::promise<Status> submitted;
  std::vector<int64_t> seq_ids;  // engine thread only
  bool cancel_sent = false;      // engine thread only
  int open = 0;                  // choices not finished yet (engine thread only)
};

struct WorkerOptions {
  int64_t max_seqs = 16;      // the scheduler's batch
  int64_t max_pending = 256;  // sequences accepted beyond the batch before 429
};

class EngineWorker {
 public:
  EngineWorker(Engine& engine, Metrics& metrics, const WorkerOptions& opt);
  ~EngineWorker();

  // From any thread. Error (queue full) leaves nothing queued.
  Status enqueue(const std::shared_ptr<Job>& job);
  // From any thread: the engine thread picks it up at its next turn.
  void cancel(const std::shared_ptr<Job>& job);
  // Stops taking jobs, lets the running ones finish, then joins the engine thread.
  void drain();
  bool draining() const { return draining_.load(); }
  int64_t context() const { return context_; }
  const Tokenizer& tokenizer() const { return engine_.tokenizer(); }

 private:
  void loop();
  void submit(const std::shared_ptr<Job>& job);
  void publish_gauges();
  // The job's images encoded and matched to its prompt (the encoder is made at the first one).
  Result<SplicedImages> encode_images(const JobSpec& spec);

  Engine& engine_;
  Metrics& metrics_;
  WorkerOptions opt_;
  int64_t context_ = 0;
  int64_t capacity_ = 0;                                 // batch size + max_pending
  std::chrono::steady_clock::time_point resident_at_{};  // last kv_resident_bytes update
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> incoming_;
  bool wake_ = false;
  std::atomic<int64_t> outstanding_{0};  // sequences enqueued and not finished
  std::atomic<bool> draining_{false}, stop_{false};
  std::vector<std::shared_ptr<Job>> active_;  // engine thread only
  std::unique_ptr<VisionEncoder> vision_;     // engine thread only
  std::thread thread_;
};

}  // namespace herd::server
