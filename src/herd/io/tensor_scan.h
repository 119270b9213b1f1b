// Scanning stored tensors for NaN and infinity (`herd verify`): a checkpoint with a poisoned
// weight otherwise loads fine and only shows up as NaN logits, or as NUL bytes printed by a
// sampler fed NaN. Reads every byte once, in parallel, straight from the mmap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "herd/base/dtype.h"
#include "herd/base/thread_pool.h"
#include "herd/io/safetensors.h"

namespace herd {

// Non-finite elements of one buffer of `dtype`: their count, and the first one's element index
// (storage order) in *first (left alone when the count is 0). Formats that cannot hold a
// non-finite value (integers, the packed Q8G/Q4G values, whose f32 scales are tensors of their
// own) count 0. F8_E4M3 has no infinity; its NaN is S.1111.111.
int64_t count_nonfinite(DType dtype, const uint8_t* data, size_t nbytes, int64_t* first);

// True for dtypes count_nonfinite actually inspects.
bool dtype_can_be_nonfinite(DType dtype);

struct NonFiniteTensor {
  std::string name, file;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t count = 0;        // non-finite elements
  int64_t first_index = 0;  // element index of the first one (storage order)
};

struct ScanResult {
  std::vector<NonFiniteTensor> bad;  // sorted by name
  int64_t tensors = 0;               // tensors in the store
  int64_t scanned_tensors = 0;       // of a dtype that can hold NaN / Inf
  uint64_t scanned_bytes = 0;
};

// Every tensor of the store, split into chunks of a few MiB that the pool's threads take in
// turn (parallel_for's atomic counter balances a 1 GB expert tensor against tiny norms).
ScanResult scan_nonfinite(const TensorStore& store, ThreadPool& pool);

}  // namespace herd
