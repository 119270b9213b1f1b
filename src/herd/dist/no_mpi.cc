// The Cluster of a binary built without MPI (cmake -DHERD_MPI=OFF or no MPI found): --mpi is an
// error that says how to get an MPI build.
#include "herd/dist/cluster.h"

namespace herd {

Result<std::unique_ptr<Cluster>> Cluster::join(double) {
  return make_error(
      "--mpi: this herd was built without MPI (install libopenmpi-dev and openmpi-bin, then "
      "configure with cmake -DHERD_MPI=ON)");
}

bool Cluster::built_with_mpi() {
  return false;
}

}  // namespace herd
