#include "herd/ops/weight.h"

#include <cassert>

#include "herd/quant/format_table.h"
#include "herd/quant/formats.h"

namespace herd {

namespace {
// The view the format table's row functions read.
inline RowsView rows_view(const WeightRef& w) {
  return RowsView{w.data, w.cols, w.row_scale, w.group_scale};
}
}  // namespace

WeightRef WeightRef::row_slice(int64_t r0, int64_t n) const {
  const FormatTraits& f = format_traits(dtype);
  assert(r0 >= 0 && n >= 0 && r0 + n <= rows);
  assert(r0 % f.row_block == 0);  // tiled / interleaved: slices start on a block of rows
  WeightRef w = *this;
  w.data = static_cast<const uint8_t*>(data) + r0 * format_row_bytes(f, cols);
  w.rows = n;
  if (row_scale) w.row_scale = row_scale + r0;
  if (group_scale) w.group_scale = group_scale + r0 * quant_groups(cols);
  return w;
}

void dequantize_row(const WeightRef& w, int64_t r, float* out) {
  const FormatTraits& f = format_traits(w.dtype);
  assert(f.to_float && "weight dtype without a row decoder (format_table.cc)");
  f.to_float(rows_view(w), r, out);
}

float weight_at(const WeightRef& w, int64_t r, int64_t c) {
  const FormatTraits& f = format_traits(w.dtype);
  assert(f.at && "weight dtype without element access (format_table.cc)");
  return f.at(rows_view(w), r, c);
}

}  // namespace herd
