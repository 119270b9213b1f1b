#include "herd/model/weight_bytes.h"

#include "herd/model/tensor_table.h"
#include "herd/model/weight_slots.h"
#include "herd/quant/format_table.h"

namespace herd {

int64_t weight_bytes(const WeightRef& w) {
  if (!w.data) return 0;
  const FormatTraits& f = format_traits(w.dtype);
  // Tiled / interleaved matrices are stored in whole blocks of rows (the last one padded).
  const int64_t rows = (w.rows + f.row_block - 1) / f.row_block * f.row_block;
  int64_t b = rows * format_row_bytes(f, w.cols);
  if (w.group_scale) b += w.rows * ((w.cols + f.block - 1) / f.block) * 4;  // f32 per block
  if (w.row_scale) b += w.rows * 4;
  return b;
}

int64_t decode_bytes_per_token(const LoadedModel& m) {
  const Llama4TextConfig& c = m.config.text;
  // The fast path reads the run-format weights when the model has them.
  const TextWeights& t = m.has_run ? m.run : m.text;
  const int64_t E = std::max<int64_t>(c.num_local_experts, 1);
  int64_t b = 0;
  for (const TensorSpec& s : text_tensor_table(m.config)) {
    if (norm_slot(t, s)) {
      b += s.numel() * 4;  // f32 gains
    } else if (const WeightRef* w = weight_slot(t, s)) {
      const int64_t n = weight_bytes(*w);
      if (s.role == TensorRole::kEmbedding)
        b += n / std::max<int64_t>(w->rows, 1);  // one row
      else if (weight_class(s.role) == WeightClass::kExpert)
        // One expert of top-1 routing; a GGUF holds up_proj apart from gate_proj
        // (LayerWeights::experts_up, empty otherwise) under the same role.
        b += (n + (s.role == TensorRole::kExpertsGateUp
                       ? weight_bytes(t.layers[size_t(s.layer)].experts_up)
                       : 0)) /
             E;
      else
        b += n;
    }
  }
  if (c.tie_word_embeddings) b += weight_bytes(t.lm_head);  // not in the table when tied
  return b;
}

}  // namespace herd
