#include "herd/io/tensor_scan.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace herd {

namespace {

inline uint64_t load64(const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);  // weights are mmap'd at any offset: unaligned loads
  return w;
}

// SWAR test of 8 bytes at once: a lane is non-finite when all its exponent bits are set, i.e.
// (lane & exp) == exp. With y = (w & exp) ^ exp every lane of y is < its top bit, so adding
// (top bit - 1) to each lane cannot carry into the next, and it sets the top bit exactly when
// the lane is non-zero (finite). The complement's top bits mark the non-finite lanes.
constexpr uint64_t rep(uint64_t v, int bits) {
  uint64_t r = 0;
  for (int i = 0; i < 64; i += bits) r |= v << i;
  return r;
}

int64_t scan_lanes(const uint8_t* data, size_t nbytes, int lane_bytes, uint64_t lane_exp,
                   int64_t* first) {
  const int bits = lane_bytes * 8;
  const uint64_t exp = rep(lane_exp, bits);
  const uint64_t top = rep(uint64_t(1) << (bits - 1), bits);
  const uint64_t low = rep((uint64_t(1) << (bits - 1)) - 1, bits);
  int64_t count = 0;
  bool found = false;
  size_t i = 0;
  for (; i + 8 <= nbytes; i += 8) {
    const uint64_t y = (load64(data + i) & exp) ^ exp;
    const uint64_t bad = ~(y + low) & top;
    if (bad == 0) continue;  // the common case: one add, one and-not per 8 bytes
    count += std::popcount(bad);
    if (!found) {
      found = true;
      *first = int64_t(i / size_t(lane_bytes)) + std::countr_zero(bad) / bits;
    }
  }
  for (; i + size_t(lane_bytes) <= nbytes; i += size_t(lane_bytes)) {
    uint64_t v = 0;
    std::memcpy(&v, data + i, size_t(lane_bytes));  // little-endian host
    if ((v & lane_exp) != lane_exp) continue;
    ++count;
    if (!found) {
      found = true;
      *first = int64_t(i / size_t(lane_bytes));
    }
  }
  return count;
}

int64_t scan_f64(const uint8_t* data, size_t nbytes, int64_t* first) {
  int64_t count = 0;
  for (size_t i = 0; i + 8 <= nbytes; i += 8) {
    const uint64_t v = load64(data + i);
    if ((v & 0x7FF0000000000000ull) != 0x7FF0000000000000ull) continue;
    if (count++ == 0) *first = int64_t(i / 8);
  }
  return count;
}

}  // namespace

bool dtype_can_be_nonfinite(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::BF16T:
    case DType::F8_E4M3:
    case DType::F64:
      return true;
    default:
      return false;
  }
}

int64_t count_nonfinite(DType t, const uint8_t* data, size_t nbytes, int64_t* first) {
  switch (t) {
    case DType::F32:
      return scan_lanes(data, nbytes, 4, 0x7F800000, first);
    case DType::F16:
      return scan_lanes(data, nbytes, 2, 0x7C00, first);
    case DType::BF16:
    case DType::BF16T:
      return scan_lanes(data, nbytes, 2, 0x7F80, first);
    case DType::F8_E4M3:  // NaN only: exponent and mantissa all ones (the "fn" variant)
      return scan_lanes(data, nbytes, 1, 0x7F, first);
    case DType::F64:
      return scan_f64(data, nbytes, first);
    default:
      return 0;
  }
}

ScanResult scan_nonfinite(const TensorStore& store, ThreadPool& pool) {
  ScanResult res;
  const std::vector<std::string> names = store.names();
  res.tensors = int64_t(names.size());
  // Chunks of 4 MiB: big enough that scheduling costs nothing, small enough that a single huge
  // tensor still spreads over every thread. Chunk sizes are multiples of 8, hence of every
  // element size, so lanes never straddle chunks.
  constexpr size_t kChunk = size_t(4) << 20;
  struct Chunk {
    size_t tensor;
    size_t begin, end;  // bytes within the tensor
    int64_t count = 0, first = 0;
  };
  std::vector<const TensorView*> views;
  std::vector<Chunk> chunks;
  for (const std::string& n : names) {
    const TensorView* v = store.find(n);
    if (!dtype_can_be_nonfinite(v->dtype)) continue;
    ++res.scanned_tensors;
    res.scanned_bytes += v->nbytes;
    for (size_t b = 0; b < v->nbytes; b += kChunk)
      chunks.push_back({views.size(), b, std::min(v->nbytes, b + kChunk)});
    views.push_back(v);
  }
  pool.parallel_for(chunks.size(), 1, [&](size_t lo, size_t hi, int) {
    for (size_t c = lo; c < hi; ++c) {
      Chunk& k = chunks[c];
      const TensorView& v = *views[k.tensor];
      k.count = count_nonfinite(v.dtype, v.data + k.begin, k.end - k.begin, &k.first);
      // BF16T has no per-element size in the dtype table (it is a tiled layout of bf16).
      const size_t elem = v.dtype == DType::BF16T ? 2 : dtype_size(v.dtype);
      if (k.count) k.first += int64_t(k.begin / elem);
    }
  });
  // Chunks of one tensor are consecutive and in order: the first bad chunk has the first index.
  for (size_t c = 0; c < chunks.size();) {
    const size_t t = chunks[c].tensor;
    NonFiniteTensor bad;
    for (; c < chunks.size() && chunks[c].tensor == t; ++c) {
      if (chunks[c].count == 0) continue;
      if (bad.count == 0) bad.first_index = chunks[c].first;
      bad.count += chunks[c].count;
    }
    if (bad.count == 0) continue;
    const TensorView& v = *views[t];
    bad.name = v.name;
    bad.file = v.file;
    bad.dtype = v.dtype;
    bad.shape = v.shape;
    res.bad.push_back(std::move(bad));
  }
  return res;
}

}  // namespace herd
