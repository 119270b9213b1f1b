// Expert parallelism over MPI (issue 16, DESIGN.md): `mpirun -np N herd <cmd> --mpi`. Every rank
// holds attention, norms, router, shared experts and embeddings, and a contiguous share of each
// MoE layer's routed experts (model/expert_shard.h). Rank 0 owns the scheduler, tokenizer and
// HTTP; before each forward it broadcasts the batch (tokens, positions, sequence ids, logits
// flags, embeddings, released sequences) and the other ranks replay it over KV of their own
// (Scheduler::replay). Inside each MoE layer the routed rows are exchanged (ExpertExchange).
//
// Failure: every wait polls with a deadline (--mpi-timeout). A rank that does not answer in time
// fails the exchange with an error naming the layer; the cluster is then broken, every later
// call fails at once, and the process ends with MPI_Abort when the cluster is destroyed (after
// rank 0 has answered its clients). Binaries built without MPI have a Cluster that only says so.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "herd/base/status.h"
#include "herd/model/expert_exchange.h"
#include "herd/model/text.h"
#include "herd/runtime/scheduler.h"

namespace herd {

// A step as received by a rank other than 0: owns what StepRecord points to.
struct ReceivedStep {
  bool stop = false;  // rank 0 is done: leave the replay loop
  std::vector<BatchToken> batch;
  std::vector<int64_t> seq_ids, released;
  std::vector<float> embeddings;  // rows of the batch tokens with an embedding, in batch order
  StepRecord record() const { return {batch, seq_ids, released}; }
};

struct ClusterTiming {               // accumulated since the cluster started
  double exchange_wait_seconds = 0;  // time forward() waited for the exchange to finish
  double exchange_seconds = 0;       // post to completion (comm thread): hidden + waited
  int64_t exchanges = 0;
  int64_t bytes_received = 0;  // routed rows received from the other ranks
};

class Cluster : public ExpertExchange {
 public:
  // MPI_Init_thread (MPI_THREAD_SERIALIZED), errors returned instead of aborting. An error in a
  // binary built without MPI (HERD_MPI off) or when MPI cannot start.
  static Result<std::unique_ptr<Cluster>> join(double timeout_seconds);
  static bool built_with_mpi();

  // Rank 0: one step's batch to every other rank.
  virtual Status send_step(const StepRecord& r) = 0;
  // Rank 0 at the end: the other ranks leave their loop.
  virtual Status send_stop() = 0;
  // Other ranks: waits (without spinning) for rank 0's next step.
  virtual Status receive_step(ReceivedStep& out) = 0;
  // Rank 0's value on every rank (e.g. the KV pool size, so replicas never run short).
  virtual Result<int64_t> broadcast(int64_t value) = 0;
  // Every rank's value, on rank 0 (others get an empty vector).
  virtual Result<std::vector<int64_t>> gather(int64_t value) = 0;
  // The model's hidden size (the width of embedding rows in a step).
  virtual void set_hidden_size(int64_t h) = 0;
  virtual bool broken() const = 0;
  // After an error outside the cluster (a replica's step failed): end the job on destruction.
  virtual void set_broken() = 0;
  virtual ClusterTiming timing() const = 0;
};

}  // namespace herd
