#include "herd/model/weight_bytes.h"

#include "herd/quant/formats.h"

namespace herd {

int64_t weight_bytes(const WeightRef& w) {
  if (!w.data) return 0;
  if (is_packed(w.dtype))
    return w.rows * (packed_row_bytes(w.dtype, w.cols) + quant_groups(w.cols) * 4);
  if (is_interleaved(w.dtype)) return il_rows(w.rows) * packed_row_bytes(w.dtype, w.cols);
  if (w.dtype == DType::BF16T) return w.rows * packed_row_bytes(w.dtype, w.cols);
  int64_t b = w.rows * w.cols * int64_t(dtype_size(w.dtype));
  if (w.row_scale) b += w.rows * 4;
  return b;
}

int64_t decode_bytes_per_token(const LoadedModel& m) {
  const Llama4TextConfig& c = m.config.text;
  // The fast path reads the run-format weights when the model has them.
  const TextWeights& t = m.has_run ? m.run : m.text;
  const int64_t H = c.hidden_size;
  int64_t b = weight_bytes(t.embed) / std::max<int64_t>(t.embed.rows, 1);  // one row
  b += weight_bytes(t.lm_head) + H * 4;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const LayerWeights& l = t.layers[size_t(i)];
    b += weight_bytes(l.wq) + weight_bytes(l.wk) + weight_bytes(l.wv) + weight_bytes(l.wo);
    b += 2 * H * 4;
    if (c.layer_kind(i).moe) {
      const int64_t E = std::max<int64_t>(c.num_local_experts, 1);
      b += weight_bytes(l.router);
      b += (weight_bytes(l.experts_gate_up) + weight_bytes(l.experts_up) +
            weight_bytes(l.experts_down)) /
           E;  // one expert
      b += weight_bytes(l.shared_gate) + weight_bytes(l.shared_up) + weight_bytes(l.shared_down);
    } else {
      b += weight_bytes(l.dense_gate) + weight_bytes(l.dense_up) + weight_bytes(l.dense_down);
    }
  }
  return b;
}

}  // namespace herd
