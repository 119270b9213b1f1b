// The converter behind prepare_run_weights: matrix sources in any stored layout, threaded row
// encoding into owned memory, and releasing the mmap'd pages once they have been copied.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "herd/model/run_weights.h"
#include "herd/model/run_weights_internal.h"
#include "herd/ops/transpose.h"
#include "herd/quant/formats.h"
#include "herd/quant/quantize.h"

namespace herd::run_internal {

namespace {

std::atomic<uint64_t> g_conversions{0};

// Output rows per task: small enough to balance 2..64 threads, large enough that the per-task
// overhead vanishes; the f32 staging buffer is kBlock x cols.
constexpr int64_t kBlock = 32;

size_t row_bytes_of(const WeightRef& w) {
  return size_t(encoded_row_bytes(w.dtype, w.cols));
}

// Columns [c0, c0 + n) of row r as f32 (plain dtypes only: the fused experts are never packed).
void load_span(const WeightRef& w, int64_t r, int64_t c0, int64_t n, float* out) {
  const FormatTraits& f = format_traits(w.dtype);
  if (f.block != 1) {
    for (int64_t c = 0; c < n; ++c) out[c] = weight_at(w, r, c0 + c);
    return;
  }
  const auto* row = static_cast<const uint8_t*>(w.data) + size_t(r) * row_bytes_of(w);
  f.to_float(
      RowsView{row + c0 * f.block_bytes, n, w.row_scale ? w.row_scale + r : nullptr, nullptr}, 0,
      out);
}

}  // namespace

void count_conversion() {
  g_conversions.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace herd::run_internal

namespace herd {
uint64_t run_weight_conversions() {
  return run_internal::g_conversions.load(std::memory_order_relaxed);
}
}  // namespace herd

namespace herd::run_internal {

uint8_t* alloc_owned(LoadedModel& m, size_t bytes) {
  const size_t padded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  OwnedBuffer b;
  b.bytes = bytes;
  // Weights of 8 MiB and more get their own mapping, 2 MiB aligned and advised for transparent
  // huge pages: a decode streams every weight byte per token, and with 4 KiB pages that is a
  // page walk every 4 KiB and a hardware prefetcher that stops at each page boundary; a load
  // also takes a page fault per 4 KiB written. Only whole huge pages of the buffer are mapped
  // that way (the head and tail slack is unmapped), so no memory is added. Without THP
  // (or with it off) the pages are 4 KiB, as from malloc.
  constexpr size_t kHuge = size_t(2) << 20, kMinMapped = size_t(8) << 20;
  if (padded >= kMinMapped) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t len = (padded + page - 1) / page * page, span = len + kHuge;
    void* base = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    uint8_t* lo = static_cast<uint8_t*>(base);
    uint8_t* p =
        reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(lo) + kHuge - 1) / kHuge * kHuge);
    if (p > lo) munmap(lo, size_t(p - lo));
    if (lo + span > p + len) munmap(p + len, size_t(lo + span - (p + len)));
    madvise(p, len, MADV_HUGEPAGE);  // a hint: ignored where THP is off
    b.mapping = std::shared_ptr<void>(p, [len](void* q) { munmap(q, len); });
    b.data = {p, [](void*) {}};
    m.owned.push_back(std::move(b));
    return p;
  }
  b.data = {static_cast<uint8_t*>(std::aligned_alloc(64, padded)), std::free};
  if (!b.data) throw std::bad_alloc();
  uint8_t* p = b.data.get();
  m.owned.push_back(std::move(b));
  return p;
}

float* alloc_owned_f32(LoadedModel& m, size_t count) {
  return reinterpret_cast<float*>(alloc_owned(m, count * sizeof(float)));
}

MatrixSource linear_source(const WeightRef& w) {
  MatrixSource s;
  s.rows = w.rows;
  s.cols = w.cols;
  s.fetch = [w](int64_t r0, int64_t n, float* out) {
    for (int64_t r = 0; r < n; ++r) dequantize_row(w, r0 + r, out + r * w.cols);
  };
  s.spans.emplace_back(w.data, size_t(w.rows) * row_bytes_of(w));
  return s;
}

MatrixSource in_major_experts_source(const WeightRef& w, int64_t experts) {
  const int64_t K = w.rows / experts, N = w.cols;
  MatrixSource s;
  s.rows = experts * N;
  s.cols = K;
  // A block of output rows is a block of source columns (the transpose). Output blocks may
  // straddle two experts; each part is transposed from its own expert.
  auto for_parts = [K, N](int64_t r0, int64_t n, const auto& part) {
    for (int64_t r = r0; r < r0 + n;) {
      const int64_t e = r / N, o0 = r % N, len = std::min(r0 + n - r, N - o0);
      part(e * K, o0, len, r - r0);
      r += len;
    }
  };
  if (w.dtype == DType::BF16) {
    const auto* base = static_cast<const uint16_t*>(w.data);
    s.fetch_bf16 = [=](int64_t r0, int64_t n, uint16_t* out) {
      for_parts(r0, n, [&](int64_t row0, int64_t o0, int64_t len, int64_t at) {
        transpose_bf16(base + row0 * N + o0, N, K, len, out + at * K, K);
      });
    };
    s.fetch = [=](int64_t r0, int64_t n, float* out) {
      for_parts(r0, n, [&](int64_t row0, int64_t o0, int64_t len, int64_t at) {
        transpose_bf16_f32(base + row0 * N + o0, N, K, len, out + at * K, K);
      });
    };
  } else {
    s.fetch = [w, K, N, for_parts](int64_t r0, int64_t n, float* out) {
      thread_local std::vector<float> seg;
      for_parts(r0, n, [&](int64_t row0, int64_t o0, int64_t len, int64_t at) {
        seg.resize(size_t(len));
        for (int64_t i = 0; i < K; ++i) {
          load_span(w, row0 + i, o0, len, seg.data());
          for (int64_t j = 0; j < len; ++j) out[(at + j) * K + i] = seg[size_t(j)];
        }
      });
    };
  }
  s.spans.emplace_back(w.data, size_t(w.rows) * row_bytes_of(w));
  return s;
}

MatrixSource stacked_source(const std::vector<WeightRef>& pieces) {
  MatrixSource s;
  const int64_t R = pieces.empty() ? 0 : pieces[0].rows;
  s.rows = R * int64_t(pieces.size());
  s.cols = pieces.empty() ? 0 : pieces[0].cols;
  s.fetch = [pieces, R](int64_t r0, int64_t n, float* out) {
    const int64_t cols = pieces[0].cols;
    for (int64_t r = 0; r < n; ++r)
      dequantize_row(pieces[size_t((r0 + r) / R)], (r0 + r) % R, out + r * cols);
  };
  bool bf16 = !pieces.empty();
  for (const WeightRef& p : pieces) bf16 = bf16 && p.dtype == DType::BF16;
  if (bf16)
    s.fetch_bf16 = [pieces, R](int64_t r0, int64_t n, uint16_t* out) {
      const int64_t cols = pieces[0].cols;
      for (int64_t r = 0; r < n; ++r)
        std::memcpy(
            out + r * cols,
            static_cast<const uint16_t*>(pieces[size_t((r0 + r) / R)].data) + ((r0 + r) % R) * cols,
            size_t(cols) * 2);
    };
  for (const WeightRef& p : pieces) s.spans.emplace_back(p.data, size_t(p.rows) * row_bytes_of(p));
  return s;
}

WeightRef convert_matrix(const ConvertContext& ctx, const MatrixSource& src, DType to) {
  LoadedModel& m = ctx.m;
  Progress* progress = ctx.progress;
  const int64_t rows = src.rows, cols = src.cols;
  const size_t rb = size_t(encoded_row_bytes(to, cols));
  const int64_t groups = quant_groups(cols);
  WeightRef out;
  out.dtype = to;
  out.rows = rows;
  out.cols = cols;
  // Interleaved formats pad rows to whole 16-row blocks (quant/formats.h).
  uint8_t* data = alloc_owned(m, size_t(is_interleaved(to) ? il_rows(rows) : rows) * rb);
  float* scales = is_packed(to) ? alloc_owned_f32(m, size_t(rows * groups)) : nullptr;
  out.data = data;
  out.group_scale = scales;
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  ctx.pool.parallel_for(size_t(blocks), 1, [&](size_t b0, size_t b1, int) {
    thread_local std::vector<float> buf;
    if (buf.size() < size_t(kBlock * cols)) buf.resize(size_t(kBlock * cols));
    for (size_t b = b0; b < b1; ++b) {
      const int64_t r0 = int64_t(b) * kBlock, n = std::min(kBlock, rows - r0);
      if (to == DType::BF16T) {  // rows as bf16 (exact copy or RNE), then into 16-row tiles
        thread_local std::vector<uint16_t> rows16;
        if (rows16.size() < size_t(kBlock * cols)) rows16.resize(size_t(kBlock * cols));
        if (src.fetch_bf16) {
          src.fetch_bf16(r0, n, rows16.data());
        } else {
          src.fetch(r0, n, buf.data());
          for (int64_t i = 0; i < n * cols; ++i) rows16[size_t(i)] = f32_to_bf16(buf[size_t(i)]);
        }
        tile_rows_bf16(rows16.data(), n, cols, r0, reinterpret_cast<uint16_t*>(data));
        if (progress) progress->add(uint64_t(n * cols));
        continue;
      }
      if (is_interleaved(to)) {  // rows quantized as Q8G / Q4G, then 16 at a time interleaved
        const DType ct = code_format(to);
        const int64_t crb = packed_row_bytes(ct, cols);
        thread_local std::vector<uint8_t> codes;
        thread_local std::vector<float> sc;
        codes.resize(size_t(kBlock * crb));
        sc.resize(size_t(kBlock * groups));
        src.fetch(r0, n, buf.data());
        for (int64_t r = 0; r < n; ++r)
          encode_row(&buf[size_t(r * cols)], cols, ct, codes.data() + r * crb,
                     sc.data() + r * groups);
        interleave_rows(codes.data(), sc.data(), n, cols, r0, rows, to, data);
        if (progress) progress->add(uint64_t(n * cols));
        continue;
      }
      if (to == DType::BF16 && src.fetch_bf16) {  // bit-exact copy, no staging
        src.fetch_bf16(r0, n, reinterpret_cast<uint16_t*>(data + size_t(r0) * rb));
        if (progress) progress->add(uint64_t(n * cols));
        continue;
      }
      src.fetch(r0, n, buf.data());
      for (int64_t r = 0; r < n; ++r)
        encode_row(&buf[size_t(r * cols)], cols, to, data + size_t(r0 + r) * rb,
                   scales ? scales + (r0 + r) * groups : nullptr);
      if (progress) progress->add(uint64_t(n * cols));
    }
  });
  release_mapped(ctx.mapped, src.spans);
  count_conversion();
  return out;
}

MappedRanges::MappedRanges(const TensorStore* store) {
  if (!store) return;
  for (const std::string& name : store->names()) {
    const TensorView* v = store->find(name);
    ranges_.emplace_back(uintptr_t(v->data), uintptr_t(v->data) + v->nbytes);
  }
  std::sort(ranges_.begin(), ranges_.end());
}

bool MappedRanges::contains(const void* p, size_t n) const {
  const uintptr_t b = uintptr_t(p), e = b + n;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(),
                             std::make_pair(b, std::numeric_limits<uintptr_t>::max()));
  if (it == ranges_.begin()) return false;
  --it;  // the last range starting at or before p
  return b >= it->first && e <= it->second;
}

void release_mapped(const MappedRanges& mapped,
                    const std::vector<std::pair<const void*, size_t>>& spans) {
  static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  for (const auto& [p, bytes] : spans) {
    if (bytes == 0 || !mapped.contains(p, bytes)) continue;
    const uintptr_t b = uintptr_t(p) / page * page;
    const uintptr_t e = (uintptr_t(p) + bytes + page - 1) / page * page;
    // Rounding outwards may drop a neighbour's pages too: they are file-backed and read-only,
    // so they simply fault in again from the page cache if used.
    ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
  }
}

Result<const TensorView*> find_fp8_scale(const LoadedModel& m, const std::string& weight_name,
                                         int64_t rows) {
  // "x.weight" -> "x.weight_scale" (compressed-tensors naming, spec §2.4).
  const std::string name = weight_name + "_scale";
  const TensorView* v = m.store->find(name);
  if (!v)
    return make_error("model dir {}: tensor '{}' is F8_E4M3 but has no '{}' (per-channel scale)",
                      m.dir, weight_name, name);
  const bool shape_ok = (v->shape.size() == 1 && v->shape[0] == rows) ||
                        (v->shape.size() == 2 && v->shape[0] == rows && v->shape[1] == 1);
  if (!shape_ok)
    return make_error("model dir {}: tensor '{}' ({}) has shape {}, expected [{}, 1] or [{}]",
                      m.dir, name, v->file, shape_str(v->shape), rows, rows);
  if (v->dtype != DType::BF16 && v->dtype != DType::F16 && v->dtype != DType::F32)
    return make_error("model dir {}: tensor '{}' ({}) has dtype {}; expected BF16, F16 or F32",
                      m.dir, name, v->file, dtype_name(v->dtype));
  return v;
}

Result<const float*> fp8_row_scales(LoadedModel& m, const std::string& weight_name, int64_t rows) {
  HERD_ASSIGN_OR_RETURN(const TensorView* v, find_fp8_scale(m, weight_name, rows));
  float* s = alloc_owned_f32(m, size_t(rows));
  dequantize_row(WeightRef{v->dtype, v->data, 1, rows, nullptr, nullptr}, 0, s);
  return static_cast<const float*>(s);
}

}  // namespace herd::run_internal
