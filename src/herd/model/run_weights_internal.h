// Shared by run_weights*.cc: owned buffers, mmap page release, and the matrix sources the
// converter reads from. Not a public interface.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "herd/base/progress.h"
#include "herd/base/thread_pool.h"
#include "herd/model/tensor_table.h"
#include "herd/model/weights.h"

namespace herd::run_internal {

// 64-byte aligned memory owned by the model (m.owned); from 8 MiB on, its own mapping, 2 MiB
// aligned and advised for transparent huge pages (run_weights_convert.cc).
uint8_t* alloc_owned(LoadedModel& m, size_t bytes);
float* alloc_owned_f32(LoadedModel& m, size_t count);

// A logical [rows, cols] matrix in nn.Linear layout whose rows can be produced as f32, whatever
// the stored layout (views, input-major fused experts, one tensor per expert).
struct MatrixSource {
  int64_t rows = 0, cols = 0;
  std::function<void(int64_t r0, int64_t n, float* out)> fetch;  // out: [n, cols]
  // Set when the stored values are BF16: rows copied bit for bit (out: [n, cols] bf16), which
  // skips the f32 round trip when the target is BF16 too.
  std::function<void(int64_t r0, int64_t n, uint16_t* out)> fetch_bf16;
  std::vector<std::pair<const void*, size_t>> spans;  // stored bytes it reads
};

MatrixSource linear_source(const WeightRef& w);
// Fused input-major experts [E*K, N] (expert e = rows [e*K, (e+1)*K)) seen as E stacked
// nn.Linear matrices [N, K]: logical row e*N + o = column o of expert e.
MatrixSource in_major_experts_source(const WeightRef& w, int64_t experts);
// Equal-height pieces stacked in order (per-expert [gate; up] or down), each any viewable dtype.
MatrixSource stacked_source(const std::vector<WeightRef>& pieces);

// Byte ranges of every tensor of a store (sorted), to tell mapped memory from owned memory.
class MappedRanges {
 public:
  explicit MappedRanges(const TensorStore* store);
  bool contains(const void* p, size_t n) const;

 private:
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges_;
};

// madvise(MADV_DONTNEED) on the spans that lie in mapped tensors (never on owned memory, where it
// would zero the data). Mapped pages are read again from the file if touched later.
void release_mapped(const MappedRanges& mapped,
                    const std::vector<std::pair<const void*, size_t>>& spans);

struct ConvertContext {
  LoadedModel& m;
  ThreadPool& pool;
  const MappedRanges& mapped;
  Progress* progress = nullptr;
};

// Converts a source into `to` (BF16, F32, Q8G, Q4G) in owned memory, threaded over row blocks;
// releases the source's mmap'd pages afterwards and counts one conversion.
WeightRef convert_matrix(const ConvertContext& ctx, const MatrixSource& src, DType to);

// The ".weight_scale" tensor of an FP8 weight, checked (shape [out, 1] or [out]; BF16/F16/F32).
Result<const TensorView*> find_fp8_scale(const LoadedModel& m, const std::string& weight_name,
                                         int64_t rows);
// f32 copy of a ".weight_scale" tensor ([out, 1] or [out], BF16/F16/F32) for an FP8 weight.
Result<const float*> fp8_row_scales(LoadedModel& m, const std::string& weight_name, int64_t rows);

void count_conversion();

}  // namespace herd::run_internal
