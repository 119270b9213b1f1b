// The MPI Cluster (dist/cluster.h). Collectives are non-blocking and polled with MPI_Test until a
// deadline, so a dead rank is an error, not a hang. The expert exchange is an MPI_Iallgatherv in
// place: every rank already holds every token's input (all ranks step the same batch), so the
// dispatch half of an all-to-all costs nothing and only the routed rows travel. Open MPI's
// non-blocking collectives advance only inside MPI calls, so a communication thread polls the
// exchange while the decoder computes the shared expert; the main thread makes no MPI call until
// wait() has joined it (MPI_THREAD_SERIALIZED is enough).
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "herd/base/log.h"
#include "herd/dist/cluster.h"

namespace herd {

namespace {

using Clock = std::chrono::steady_clock;

std::string mpi_error(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return std::string(text, size_t(len));
}

enum Header { kStop, kTokens, kCaches, kReleased, kEmbedFloats, kHeaderSize };

class MpiCluster final : public Cluster {
 public:
  explicit MpiCluster(double timeout) : timeout_(timeout) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    counts_.resize(size_t(size_));
    displs_.resize(size_t(size_));
    comm_ = std::thread([this] { comm_loop(); });
  }

  ~MpiCluster() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    comm_.join();
    // A broken cluster may have dead peers and a collective still posted: MPI_Finalize could
    // wait forever, so the whole job ends here (the error was reported when it happened).
    if (broken_) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
  }

  int ranks() const override { return size_; }
  int rank() const override { return rank_; }
  bool broken() const override { return broken_; }
  void set_broken() override { broken_ = true; }
  ClusterTiming timing() const override { return timing_; }

  Status start(float* data, std::span<const int64_t> offsets, int layer) override {
    if (broken_) return broken_status_;
    int64_t received = 0;
    for (int r = 0; r < size_; ++r) {
      const int64_t count = offsets[size_t(r) + 1] - offsets[size_t(r)];
      if (offsets[size_t(r) + 1] > INT_MAX)
        return fail(make_error("mpi: the exchange of layer {} is {} floats, over MPI's int counts",
                               layer, offsets[size_t(r) + 1]));
      counts_[size_t(r)] = int(count);
      displs_[size_t(r)] = int(offsets[size_t(r)]);
      if (r != rank_) received += count;
    }
    timing_.bytes_received += received * int64_t(sizeof(float));
    ++timing_.exchanges;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_data_ = data;
      job_layer_ = layer;
      job_ready_ = true;
      job_done_ = false;
    }
    cv_.notify_all();
    return Status::ok();
  }

  Status wait() override {
    const auto t0 = Clock::now();
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return job_done_; });
    timing_.exchange_wait_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return job_status_;
  }

  Status send_step(const StepRecord& r) override {
    if (broken_) return broken_status_;
    int64_t embed_floats = 0, H = 0;
    for (const BatchToken& b : r.batch)
      if (b.embedding) ++embed_floats;
    if (embed_floats > 0) {
      H = embedding_width_;
      if (H <= 0) return make_error("mpi: embeddings in a batch but no hidden size set");
      embed_floats *= H;
    }
    int64_t header[kHeaderSize] = {0, int64_t(r.batch.size()), int64_t(r.seq_ids.size()),
                                   int64_t(r.released.size()), embed_floats};
    HERD_TRY(bcast(header, kHeaderSize, MPI_INT64_T, "the step header"));
    ints_.clear();
    for (const BatchToken& b : r.batch) {
      ints_.push_back(b.token);
      ints_.push_back(b.pos);
      ints_.push_back(b.seq);
      ints_.push_back(int64_t(b.logits) | (b.embedding ? 2 : 0));
    }
    ints_.insert(ints_.end(), r.seq_ids.begin(), r.seq_ids.end());
    ints_.insert(ints_.end(), r.released.begin(), r.released.end());
    HERD_TRY(bcast(ints_.data(), int64_t(ints_.size()), MPI_INT64_T, "the step's batch"));
    if (embed_floats > 0) {
      floats_.clear();
      for (const BatchToken& b : r.batch)
        if (b.embedding) floats_.insert(floats_.end(), b.embedding, b.embedding + H);
      HERD_TRY(bcast(floats_.data(), embed_floats, MPI_FLOAT, "the step's embeddings"));
    }
    return Status::ok();
  }

  Status send_stop() override {
    if (broken_) return broken_status_;
    int64_t header[kHeaderSize] = {1, 0, 0, 0, 0};
    return bcast(header, kHeaderSize, MPI_INT64_T, "the stop message");
  }

  Status receive_step(ReceivedStep& out) override {
    if (broken_) return broken_status_;
    int64_t header[kHeaderSize];
    // Idle between requests is unbounded: no deadline here (mpirun ends the job if rank 0 dies).
    HERD_TRY(bcast(header, kHeaderSize, MPI_INT64_T, "the step header", /*deadline=*/false));
    out.stop = header[kStop] != 0;
    if (out.stop) return Status::ok();
    const int64_t n = header[kTokens], nc = header[kCaches], nr = header[kReleased];
    ints_.resize(size_t(4 * n + nc + nr));
    HERD_TRY(bcast(ints_.data(), int64_t(ints_.size()), MPI_INT64_T, "the step's batch"));
    out.embeddings.resize(size_t(header[kEmbedFloats]));
    if (!out.embeddings.empty())
      HERD_TRY(
          bcast(out.embeddings.data(), header[kEmbedFloats], MPI_FLOAT, "the step's embeddings"));
    out.batch.resize(size_t(n));
    const float* embed = out.embeddings.data();
    for (int64_t t = 0; t < n; ++t) {
      BatchToken& b = out.batch[size_t(t)];
      b.token = int32_t(ints_[size_t(4 * t)]);
      b.pos = ints_[size_t(4 * t + 1)];
      b.seq = int(ints_[size_t(4 * t + 2)]);
      const int64_t flags = ints_[size_t(4 * t + 3)];
      b.logits = (flags & 1) != 0;
      b.embedding = nullptr;
      if (flags & 2) {  // the next embedding row, in batch order
        if (embed + embedding_width_ > out.embeddings.data() + out.embeddings.size())
          return fail(make_error("mpi: step with more embedding tokens than rows"));
        b.embedding = embed;
        embed += embedding_width_;
      }
    }
    out.seq_ids.assign(ints_.begin() + 4 * n, ints_.begin() + 4 * n + nc);
    out.released.assign(ints_.begin() + 4 * n + nc, ints_.end());
    return Status::ok();
  }

  Result<int64_t> broadcast(int64_t value) override {
    HERD_TRY(bcast(&value, 1, MPI_INT64_T, "a broadcast value"));
    return value;
  }

  Result<std::vector<int64_t>> gather(int64_t value) override {
    if (broken_) return broken_status_;
    std::vector<int64_t> all(rank_ == 0 ? size_t(size_) : 0);
    MPI_Request req;
    const int rc =
        MPI_Igather(&value, 1, MPI_INT64_T, all.data(), 1, MPI_INT64_T, 0, MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return fail(make_error("mpi: gather: {}", mpi_error(rc)));
    HERD_TRY(poll(req, "a gather", true));
    return all;
  }

  void set_hidden_size(int64_t h) override { embedding_width_ = h; }

 private:
  Status fail(Status st) {
    if (!broken_) {
      broken_ = true;
      broken_status_ = st;
      log(LogLevel::kError, "rank {}: {}", rank_, st.message());
    }
    return broken_status_;
  }

  Status bcast(void* data, int64_t count, MPI_Datatype type, const char* what,
               bool deadline = true) {
    if (count > INT_MAX) return fail(make_error("mpi: {} is too large ({} items)", what, count));
    MPI_Request req;
    const int rc = MPI_Ibcast(data, int(count), type, 0, MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return fail(make_error("mpi: {}: {}", what, mpi_error(rc)));
    return poll(req, what, deadline);
  }

  // MPI_Test until done: spinning (with yields) for a short while, then sleeping between tests
  // so an idle rank costs no CPU. With a deadline, a rank that never answers is an error.
  Status poll(MPI_Request& req, const std::string& what, bool deadline) {
    const auto t0 = Clock::now();
    for (int64_t i = 0;; ++i) {
      int flag = 0;
      const int rc = MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) return fail(make_error("mpi: {}: {}", what, mpi_error(rc)));
      if (flag) return Status::ok();
      if (i < 2000) {
        std::this_thread::yield();
        continue;
      }
      const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
      if (deadline && waited > timeout_)
        return fail(make_error(
            "mpi: rank {}: {} did not complete within {} s (--mpi-timeout): a rank died or hangs",
            rank_, what, timeout_));
      std::this_thread::sleep_for(std::chrono::microseconds(waited < 0.01 ? 20 : 500));
    }
  }

  void comm_loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return job_ready_ || quit_; });
      if (quit_) return;
      job_ready_ = false;
      float* data = job_data_;
      const int layer = job_layer_;
      lk.unlock();
      const auto t0 = Clock::now();
      Status st = Status::ok();
      MPI_Request req;
      const int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts_.data(),
                                     displs_.data(), MPI_FLOAT, MPI_COMM_WORLD, &req);
      if (rc != MPI_SUCCESS)
        st = fail(make_error("mpi: the expert exchange of layer {}: {}", layer, mpi_error(rc)));
      else
        st = poll(req, fmt::format("the expert exchange of layer {}", layer), true);
      lk.lock();
      timing_.exchange_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      job_status_ = st;
      job_done_ = true;
      done_cv_.notify_all();
    }
  }

  double timeout_;
  int rank_ = 0, size_ = 1;
  std::vector<int> counts_, displs_;
  std::vector<int64_t> ints_;
  std::vector<float> floats_;
  int64_t embedding_width_ = 0;
  ClusterTiming timing_;
  std::atomic<bool> broken_{false};  // read by the server's watcher thread
  Status broken_status_;
  std::thread comm_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  bool job_ready_ = false, job_done_ = true, quit_ = false;
  float* job_data_ = nullptr;
  int job_layer_ = 0;
  Status job_status_;
};

}  // namespace

Result<std::unique_ptr<Cluster>> Cluster::join(double timeout_seconds) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return make_error("--mpi: MPI is already initialized in this process");
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    return make_error("--mpi: MPI_Init_thread failed (run under mpirun)");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return make_error("--mpi: the MPI library gives thread level {}; herd needs SERIALIZED",
                      provided);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return std::unique_ptr<Cluster>(new MpiCluster(timeout_seconds));
}

bool Cluster::built_with_mpi() {
  return true;
}

}  // namespace herd
