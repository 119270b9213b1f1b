// Memory bandwidth probe for the decode roofline: read-only sum over a buffer far larger than
// the caches, split across the pool's threads, best of several passes.
#pragma once

#include <cstddef>

#include "herd/base/thread_pool.h"

namespace herd {

// GB/s (1e9 bytes per second) of the best of `passes` read passes over `bytes` bytes.
double probe_read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30, int passes = 5);

}  // namespace herd
