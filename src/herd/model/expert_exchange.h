// Expert parallelism seen from the decoder (DESIGN.md, issue 16): every rank runs the whole batch
// through attention, norms, router and shared expert, but holds only a contiguous share of each
// MoE layer's routed experts. After the router each rank computes the rows of its own experts;
// the exchange then hands every rank the rows computed elsewhere, so all ranks continue with the
// same activations. The decoder knows nothing of MPI: dist/mpi_cluster.h implements this.
#pragma once

#include <cstdint>
#include <span>

#include "herd/base/status.h"

namespace herd {

// Rank r's experts [first, first + count) of E split over n ranks: contiguous, the first E % n
// ranks get one more. The loader (narrow_experts) and the planner use the same split.
struct ExpertShare {
  int64_t first = 0, count = 0;
};
inline ExpertShare expert_share(int64_t experts, int ranks, int rank) {
  const int64_t base = experts / ranks, extra = experts % ranks;
  return {rank * base + (rank < extra ? rank : extra), base + (rank < extra ? 1 : 0)};
}

class ExpertExchange {
 public:
  virtual ~ExpertExchange() = default;
  virtual int ranks() const = 0;
  virtual int rank() const = 0;
  // Starts the exchange of `data` (floats): rank r's rows are [offsets[r], offsets[r+1]); this
  // rank's own block is filled, the others arrive. Returns at once; the decoder computes what
  // does not depend on the routed rows meanwhile, then calls wait().
  virtual Status start(float* data, std::span<const int64_t> offsets, int layer) = 0;
  // Blocks until every block of `data` has arrived; an error when a rank did not answer in time
  // (the cluster is unusable afterwards: every later call fails at once).
  virtual Status wait() = 0;
};

}  // namespace herd
