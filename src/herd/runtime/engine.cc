#include "herd/runtime/engine.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "herd/model/gguf_load.h"
#include "herd/base/log.h"
#include "herd/model/expert_shard.h"
#include "herd/model/run_weights.h"
#include "herd/runtime/nonfinite.h"
#include "herd/runtime/request_check.h"
#include "herd/tokenizer/tokenizer_gguf.h"

namespace herd {

namespace {
int64_t available_memory_bytes() {
  const long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? int64_t(pages) * size : int64_t(1) << 32;
}
}  // namespace

int64_t kv_pages_for_bytes(const KvCacheSpec& spec, int64_t bytes) {
  return std::max<int64_t>(1, bytes / int64_t(std::max<size_t>(spec.global.page_bytes(), 1)));
}

Engine::~Engine() {
  // Rank 0: the other ranks leave their replay loop and report.
  if (cluster_ && cluster_->rank() == 0 && !cluster_->broken()) {
    Status st = cluster_->send_stop();
    if (st) st = report_ranks();
    if (!st) log(LogLevel::kError, "mpi: {}", st.message());
  }
}

Result<std::unique_ptr<Engine>> Engine::open(const EngineOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> e(new Engine());
  if (opt.mpi) {
    HERD_ASSIGN_OR_RETURN(e->cluster_, Cluster::join(opt.mpi_timeout));
  }
  HERD_ASSIGN_OR_RETURN(e->model_, load_model(opt.model_dir));
  const Llama4TextConfig& t = e->model_.config.text;
  // A GGUF file holds its tokenizer and stop ids itself; it has no generation_config.json.
  const gguf::Files* gguf = e->model_.gguf.get();
  if (e->cluster_) {
    const int64_t E = t.num_local_experts, R = e->cluster_->ranks();
    if (E < R)
      return make_error("--mpi: {} has {} routed experts per MoE layer, fewer than the {} ranks",
                        opt.model_dir, E, R);
    e->cluster_->set_hidden_size(t.hidden_size);
  }
  if (opt.tokenizer) {
    if (gguf) {
      HERD_ASSIGN_OR_RETURN(e->tokenizer_, tokenizer_from_gguf(gguf->first(), opt.model_dir));
    } else {
      HERD_ASSIGN_OR_RETURN(e->tokenizer_, Tokenizer::load(opt.model_dir));
    }
    if (e->tokenizer_->vocab_size() > t.vocab_size)
      return make_error("{}: tokenizer has {} tokens but config.json vocab_size is {}",
                        opt.model_dir, e->tokenizer_->vocab_size(), t.vocab_size);
  }
  GenerationConfig gen;
  if (gguf) {
    check_gguf_chat_template(*gguf);
  } else {
    HERD_ASSIGN_OR_RETURN(gen, load_generation_config(opt.model_dir));
  }
  auto add_stop = [&](int64_t id) {
    if (id >= 0 && id < t.vocab_size &&
        std::find(e->stop_ids_.begin(), e->stop_ids_.end(), int32_t(id)) == e->stop_ids_.end())
      e->stop_ids_.push_back(int32_t(id));
  };
  for (int64_t id : t.eos_token_id) add_stop(id);
  for (int64_t id : gen.eos_token_id) add_stop(id);
  // A GGUF names eos / eot / eom; <|end_of_text|> also ends generation (spec §4.2, and
  // llama.cpp's end-of-generation set by token text).
  if (gguf && e->tokenizer_)
    for (int32_t id : e->tokenizer_->stop_ids()) add_stop(id);
  if (gen.do_sample.value_or(false)) {
    e->sampling_.temperature = gen.temperature.value_or(1.0f);
    e->sampling_.top_p = gen.top_p.value_or(1.0f);
    e->sampling_.top_k = gen.top_k.value_or(0);
    e->sampling_.min_p = gen.min_p.value_or(0.0f);
    if (Status st = check_sampling(e->sampling_, RequestNaming::kApiFields); !st)
      return st.with_context(opt.model_dir + "/generation_config.json");
  }
  e->pool_ = std::make_unique<ThreadPool>(opt.threads);
  if (opt.precision == Precision::kF32 || opt.with_reference)
    HERD_TRY(prepare_reference_weights(e->model_, *e->pool_));
  // After the reference weights (FP8 checkpoints build their f32 experts whole there; a view of
  // this rank's share is kept), before the run format (converted for this share only).
  if (e->cluster_) {
    const int64_t E = t.num_local_experts, R = e->cluster_->ranks();
    HERD_TRY(narrow_experts(e->model_, expert_share(E, int(R), e->cluster_->rank())));
  }
  if (opt.precision == Precision::kAuto) {
    QuantOptions q;
    q.mode = opt.quant;
    q.progress = opt.progress && (!e->cluster_ || e->cluster_->rank() == 0);
    HERD_TRY(prepare_run_weights(e->model_, q, *e->pool_));
  }
  e->decoder_ = std::make_unique<TextDecoder>(e->model_, *e->pool_, opt.precision);
  if (opt.with_reference)
    e->reference_ = std::make_unique<TextDecoder>(e->model_, *e->pool_, Precision::kF32);

  SchedulerOptions so = opt.sched;
  so.kv_type = opt.kv_type.value_or(e->decoder_->precision() == Precision::kF32 ? KvType::kF32
                                                                                : KvType::kBF16);
  const int64_t ctx =
      so.context > 0 ? std::min(so.context, t.max_position_embeddings) : t.max_position_embeddings;
  // Global-layer pages: what was asked, else enough for every sequence at full context, capped
  // at half of the memory available now (the pool is reserved, not touched, until used).
  const KvCacheSpec spec = KvCacheSpec::make(t, so.kv_type, std::max<int64_t>(so.page_rows, 16),
                                             std::max(so.step_tokens, so.max_seqs));
  int64_t bytes = opt.kv_bytes;
  if (bytes <= 0) {
    const int64_t want = std::max<int64_t>(so.max_seqs, 1) * spec.global_pages(ctx) *
                         int64_t(spec.global.page_bytes());
    bytes = std::min(want, available_memory_bytes() / 2);
  }
  so.global_pages = kv_pages_for_bytes(spec, bytes);
  if (e->cluster_) HERD_TRY(e->join_cluster(opt, so));
  e->scheduler_ = std::make_unique<Scheduler>(*e->decoder_, so);
  Engine* self = e.get();
  e->scheduler_->set_nonfinite_diagnosis([self](std::span<const int32_t> tokens) {
    // Only after a failure: the f32 reference weights (views for BF16 checkpoints) and one f32
    // prefill of the sequence.
    if (Status st = prepare_reference_weights(self->model_, *self->pool_); !st)
      return "cannot locate the first non-finite activation: " + st.message();
    auto origin = find_nonfinite_origin(self->model_, *self->pool_, tokens);
    return origin ? origin->message()
                  : "cannot locate the first non-finite activation: " + origin.status().message();
  });
  e->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (e->cluster_) {
    Cluster* c = e->cluster_.get();
    if (c->rank() != 0) replay_until_stopped(std::move(e));
    e->scheduler_->set_step_observer([c](const StepRecord& r) { return c->send_step(r); });
  }
  return e;
}

// Every rank sizes its KV pool as rank 0 does (a replica never runs short where rank 0 did not)
// and runs the decoder with the expert exchange.
Status Engine::join_cluster(const EngineOptions& opt, SchedulerOptions& so) {
  HERD_ASSIGN_OR_RETURN(so.global_pages, cluster_->broadcast(so.global_pages));
  decoder_->set_expert_exchange(cluster_.get());
  if (reference_) reference_->set_expert_exchange(cluster_.get());
  return Status::ok();
}

// Ranks other than 0 have no command to return to: they replay rank 0's steps, report their
// resident weight bytes, and end the process (0 after rank 0's stop, 1 on an error).
void Engine::replay_until_stopped(std::unique_ptr<Engine> e) {
  ReceivedStep step;
  Status st = Status::ok();
  for (;;) {
    st = e->cluster_->receive_step(step);
    if (!st || step.stop) break;
    st = e->scheduler_->replay(step.record());
    if (!st) break;
  }
  if (st) st = e->report_ranks();
  if (!st) log(LogLevel::kError, "mpi rank {}: {}", e->cluster_->rank(), st.message());
  const int code = st ? 0 : 1;
  if (!st) e->cluster_->set_broken();
  e.reset();  // MPI_Finalize (MPI_Abort when broken)
  std::exit(code);
}

// Every rank's experts and resident weight bytes, logged by rank 0 (the planner's figure is
// checked against these by tests/integration/mpi_cli.sh).
Status Engine::report_ranks() {
  const int64_t bytes = resident_weight_bytes(model_);
  HERD_ASSIGN_OR_RETURN(std::vector<int64_t> all, cluster_->gather(bytes));
  const ClusterTiming tm = cluster_->timing();
  HERD_ASSIGN_OR_RETURN(std::vector<int64_t> waits,
                        cluster_->gather(int64_t(tm.exchange_wait_seconds * 1e6)));
  HERD_ASSIGN_OR_RETURN(std::vector<int64_t> spans,
                        cluster_->gather(int64_t(tm.exchange_seconds * 1e6)));
  HERD_ASSIGN_OR_RETURN(std::vector<int64_t> forwards,
                        cluster_->gather(int64_t(scheduler_->forward_seconds() * 1e6)));
  if (cluster_->rank() != 0) return Status::ok();
  const int64_t E = model_.config.text.num_local_experts;
  for (int r = 0; r < cluster_->ranks(); ++r) {
    const ExpertShare s = expert_share(E, cluster_->ranks(), r);
    fmt::print(stderr,
               "herd: mpi rank {}: experts {}..{} of {}, resident weight bytes {}, forward {:.3f} "
               "s, exchange {:.3f} s (posted to complete), of which waited {:.3f} s\n",
               r, s.first, s.first + s.count - 1, E, all[size_t(r)], forwards[size_t(r)] * 1e-6,
               spans[size_t(r)] * 1e-6, waits[size_t(r)] * 1e-6);
  }
  fmt::print(stderr, "herd: mpi rank 0: {} exchanges, {} bytes received\n", tm.exchanges,
             tm.bytes_received);
  return Status::ok();
}

std::vector<int32_t> Engine::encode_prompt(const std::string& text, bool add_bos) const {
  std::vector<int32_t> ids;
  const auto& bos = model_.config.text.bos_token_id;
  if (add_bos && !bos.empty()) ids.push_back(int32_t(bos[0]));
  if (tokenizer_) {
    auto body = tokenizer_->encode(text, /*allow_special=*/false);
    ids.insert(ids.end(), body.begin(), body.end());
  }
  return ids;
}

Result<Completion> Engine::run(Request r) {
  Completion done;
  bool finished = false;
  auto user_finish = std::move(r.on_finish);
  r.on_finish = [&](const Completion& c) {
    done = c;
    finished = true;
    if (user_finish) user_finish(c);
  };
  HERD_ASSIGN_OR_RETURN(int64_t id, scheduler_->submit(std::move(r)));
  (void)id;
  while (!finished) {
    HERD_ASSIGN_OR_RETURN(bool did, scheduler_->step());
    if (!did && !finished) return make_error("request does not fit in the KV pool");
  }
  if (done.reason == FinishReason::kError) return done.error;
  return done;
}

}  // namespace herd
