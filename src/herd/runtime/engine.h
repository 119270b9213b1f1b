// The one way a command gets a running model (DESIGN.md runtime/): opens the model once (weights
// in the run format, tokenizer, generation config, stop ids, thread pool, decoder) and owns the
// scheduler that every generation goes through, so `run`, `chat`, `logits`, `bench` and the
// server share one path: validated requests, continuous batching, paged KV, prefix reuse.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "herd/base/thread_pool.h"
#include "herd/dist/cluster.h"
#include "herd/model/text.h"
#include "herd/quant/quantize.h"
#include "herd/runtime/sampler.h"
#include "herd/runtime/scheduler.h"
#include "herd/tokenizer/tokenizer.h"

namespace herd {

struct EngineOptions {
  std::string model_dir;
  int threads = 0;  // 0: physical cores
  Precision precision = Precision::kAuto;
  QuantMode quant = QuantMode::kBF16;
  bool progress = true;           // conversion progress bar on stderr
  bool tokenizer = true;          // false: token ids only (logits, bench on vocab-only models)
  bool with_reference = false;    // also prepare the f32 reference weights (quality)
  std::optional<KvType> kv_type;  // default: f32 for the f32 path, bf16 for the fast path
  int64_t kv_bytes = 0;  // global-layer KV pool; 0: max_seqs × context, at most half of free RAM
  SchedulerOptions sched;
  // Expert parallelism (dist/cluster.h): under `mpirun -np N`, this rank's share of the routed
  // experts; rank 0 returns from open(), the other ranks replay its steps until it is done and
  // then end the process.
  bool mpi = false;
  double mpi_timeout = 60;  // seconds a collective may wait for the other ranks
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> open(const EngineOptions& opt);
  ~Engine();

  TextDecoder& decoder() { return *decoder_; }
  // The f32 reference decoder (only when opened with with_reference).
  TextDecoder* reference() { return reference_.get(); }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  bool has_tokenizer() const { return tokenizer_.has_value(); }
  const LoadedModel& model() const { return model_; }
  ThreadPool& pool() { return *pool_; }
  Scheduler& scheduler() { return *scheduler_; }
  // Expert parallelism: the cluster (null without --mpi).
  Cluster* cluster() { return cluster_.get(); }
  double load_seconds() const { return load_seconds_; }

  // BOS (from config.json, when it names one) + the text as ordinary tokens.
  std::vector<int32_t> encode_prompt(const std::string& text, bool add_bos) const;
  // Union of config.json's and generation_config.json's eos ids (never hard-coded).
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  // generation_config.json's sampling values when do_sample, else greedy.
  SamplingParams sampling_defaults() const { return sampling_; }

  // Submits one request and steps the scheduler until it finishes (run, chat, logits).
  Result<Completion> run(Request r);

 private:
  Engine() = default;
  Status join_cluster(const EngineOptions& opt, SchedulerOptions& so);
  [[noreturn]] static void replay_until_stopped(std::unique_ptr<Engine> e);
  Status report_ranks();
  std::unique_ptr<Cluster> cluster_;  // first: outlives everything that uses it
  LoadedModel model_;
  std::optional<Tokenizer> tokenizer_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<TextDecoder> decoder_, reference_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<int32_t> stop_ids_;
  SamplingParams sampling_;
  double load_seconds_ = 0;
};

// Pages for `bytes` of global-layer KV under `spec` (at least one page).
int64_t kv_pages_for_bytes(const KvCacheSpec& spec, int64_t bytes);

}  // namespace herd
