// prepare_run_weights: the stored weights (m.text, or per-expert tensors of FP8 checkpoints)
// turned into the run format of the fast path, layer by layer (policy table in run_weights.h).
#include "herd/model/run_weights.h"

#include <fmt/format.h>

#include <cstring>

#include "herd/base/log.h"
#include "herd/model/expert_shard.h"
#include "herd/model/gguf_load.h"
#include "herd/model/run_weights_internal.h"
#include "herd/model/tensor_table.h"
#include "herd/model/weight_slots.h"
#include "herd/ops/cpu_features.h"
#include "herd/ops/gemm.h"
#include "herd/quant/format_table.h"
#include "herd/quant/formats.h"

namespace herd {

using namespace run_internal;

namespace {

// The per-expert tensors of layer `layer` (FP8 checkpoints): gate/up/down of every expert.
struct PerExpert {
  std::vector<WeightRef> gate_up;  // [gate_0, up_0, gate_1, up_1, ...], each [I, H]
  std::vector<WeightRef> down;     // [down_0, down_1, ...], each [H, I]
};

Result<PerExpert> per_expert_views(LoadedModel& m, int layer) {
  PerExpert pe;
  for (const TensorSpec& s : text_tensor_table_per_expert(m.config)) {
    if (s.layer != layer || s.expert < 0 || !holds_expert(m, s.expert)) continue;
    const TensorView* v = m.store->find(s.name);
    if (!v) return make_error("model dir {}: missing tensor '{}'", m.dir, s.name);
    WeightRef w{v->dtype, v->data, s.shape[0], s.shape[1], nullptr, nullptr};
    if (v->dtype == DType::F8_E4M3) {
      HERD_ASSIGN_OR_RETURN(w.row_scale, fp8_row_scales(m, s.name, s.shape[0]));
    }
    (s.expert_part == 2 ? pe.down : pe.gate_up).push_back(w);
  }
  return pe;
}

bool all_fp8(const std::vector<WeightRef>& ws) {
  for (const WeightRef& w : ws)
    if (w.dtype != DType::F8_E4M3) return false;
  return !ws.empty();
}

// FP8 experts kept FP8: the pieces' bytes stacked into one [E*rows, cols] matrix with its row
// scales (the fast gemm reads F8_E4M3 with row_scale directly).
WeightRef stack_fp8(const ConvertContext& ctx, const std::vector<WeightRef>& pieces) {
  const int64_t R = pieces[0].rows, C = pieces[0].cols, rows = R * int64_t(pieces.size());
  uint8_t* data = alloc_owned(ctx.m, size_t(rows * C));
  float* scales = alloc_owned_f32(ctx.m, size_t(rows));
  ctx.pool.parallel_for(pieces.size(), 1, [&](size_t p0, size_t p1, int) {
    for (size_t p = p0; p < p1; ++p) {
      std::memcpy(data + p * size_t(R * C), pieces[p].data, size_t(R * C));
      std::memcpy(scales + p * size_t(R), pieces[p].row_scale, size_t(R) * 4);
      if (ctx.progress) ctx.progress->add(uint64_t(R * C));
    }
  });
  MatrixSource src = stacked_source(pieces);
  release_mapped(ctx.mapped, src.spans);
  count_conversion();
  return WeightRef{DType::F8_E4M3, data, rows, C, scales, nullptr};
}

// The layout of a run matrix for the machine's kernels.
// On AMX machines bf16 products read 16-row tiles (quant/formats.h BF16T): decode then streams
// them with vector loads at full bandwidth while matching the tile unit's results bitwise, and
// prefill feeds them to the tile unit as they are. Slices (experts) must start on a tile.
// On AVX2 and AVX-512 machines without AMX, int8 / int4 products read 16 rows interleaved (Q8GI /
// Q4GI), and on AVX512_BF16 ones bf16 products the same tiles as AMX: the vpdpbusd / vpmaddubsw /
// vdpbf16ps kernels then need no horizontal sums and no repacking per call (ops/gemm_vnni_il.cc,
// gemm_avx2_il.cc, gemm_bf16_il.cc). AMX machines keep the row-major codes their int8 tiles
// read. Slices (experts) must start on a 16-row block.
DType run_layout(DType to, int64_t slice_rows) {
  const Isa isa = active_isa();
  if (slice_rows % kTileRows != 0) return to;
  if (is_packed(to) && interleaves_int_weights(isa)) return interleaved_format(to);
  const bool tiles = isa == Isa::kAmx || (isa == Isa::kAvx512Vnni && cpu_features().avx512bf16);
  return to == DType::BF16 && tiles ? DType::BF16T : to;
}

// One non-expert matrix: in place when the stored form already is the run form.
WeightRef run_linear(const ConvertContext& ctx, const WeightRef& w, DType to, bool* kept_fp8) {
  if (to == DType::BF16 && w.dtype == DType::F8_E4M3) {
    *kept_fp8 = true;
    return w;
  }
  // A matrix that is never sliced may end in a partial block (padded).
  to = run_layout(to, is_packed(to) ? il_rows(w.rows) : w.rows);
  if (to == DType::BF16 && w.dtype == DType::BF16) return w;
  return convert_matrix(ctx, linear_source(w), to);
}

// Elements of the layers' matrices (the progress bar's total).
uint64_t text_elements(const LoadedModel& m) {
  uint64_t n = 0;
  for (const TensorSpec& s : text_tensor_table(m.config))
    if (s.layer >= 0 && is_linear(s.role)) {
      const WeightRef& w = *weight_slot(m.text, s);
      n += uint64_t(w.rows * w.cols);
    }
  return n;
}

// Both routed-expert matrices of layer `layer` in the run layout (per expert [2I, H] and [H, I]).
Status run_experts(const ConvertContext& ctx, const LayerWeights& s, LayerWeights& d, int layer,
                   DType ex, bool per_expert, bool* kept_fp8) {
  const Llama4TextConfig& t = ctx.m.config.text;
  // Expert parallelism: only this rank's share (model/expert_shard.h narrowed the views).
  const int64_t E = held_experts(ctx.m), I = t.intermediate_size;
  if (per_expert) {
    HERD_ASSIGN_OR_RETURN(PerExpert pe, per_expert_views(ctx.m, layer));
    if (ex == DType::BF16 && all_fp8(pe.gate_up) && all_fp8(pe.down)) {
      d.experts_gate_up = stack_fp8(ctx, pe.gate_up);
      d.experts_down = stack_fp8(ctx, pe.down);
      *kept_fp8 = true;
    } else {
      d.experts_gate_up = convert_matrix(ctx, stacked_source(pe.gate_up), run_layout(ex, 2 * I));
      d.experts_down = convert_matrix(ctx, stacked_source(pe.down), run_layout(ex, t.hidden_size));
    }
    return Status::ok();
  }
  // Stored [E*H, 2I] / [E*I, H] input-major -> per expert [2I, H] / [H, I]: the transpose puts
  // gate columns then up columns as rows, which is the run layout.
  d.experts_gate_up =
      convert_matrix(ctx, in_major_experts_source(s.experts_gate_up, E), run_layout(ex, 2 * I));
  d.experts_down = convert_matrix(ctx, in_major_experts_source(s.experts_down, E),
                                  run_layout(ex, t.hidden_size));
  return Status::ok();
}

// ggml's block formats hold whole blocks of 32 inputs: every Linear's input width (hidden,
// attention output, expert / shared / dense FFN widths) must be a multiple of the block.
Status check_block_widths(const LoadedModel& m, QuantMode mode) {
  const FormatTraits& f = format_traits(run_dtype(mode, WeightClass::kAttention));
  if (f.kind != FormatKind::kGgufBlock) return Status::ok();
  const Llama4TextConfig& t = m.config.text;
  const std::pair<const char*, int64_t> widths[] = {
      {"hidden_size", t.hidden_size},
      {"num_attention_heads × head_dim", t.q_dim()},
      {"intermediate_size", t.intermediate_size},
      {"intermediate_size_mlp", t.intermediate_size_mlp}};
  for (const auto& [field, w] : widths)
    if (w % f.block != 0)
      return make_error(
          "{}: --quant {} stores blocks of {} inputs, but {} is {}; use int8 or int4-all", m.dir,
          quant_mode_name(mode), f.block, field, w);
  return Status::ok();
}

}  // namespace

Status prepare_run_weights(LoadedModel& m, const QuantOptions& opt, ThreadPool& pool) {
  const std::string want(quant_mode_name(opt.mode));
  if (m.run_format == kGgufRunFormat) {  // GGUF weights run as the file stores them
    if (opt.mode != QuantMode::kBF16)
      return make_error(
          "model {} is a GGUF file: its weights run as stored, --quant {} does not "
          "apply (requantize it with llama-quantize instead)",
          m.dir, want);
    return check_gguf_run_weights(m);
  }
  if (m.has_run) {
    if (m.run_format == want || (opt.mode == QuantMode::kBF16 && m.run_format == "fp8"))
      return Status::ok();
    return make_error("model {} is {} ({}); --quant {} needs the original checkpoint", m.dir,
                      is_herd_prequantized(m.config) ? "pre-quantized" : "already prepared",
                      m.run_format, want);
  }
  HERD_TRY(check_block_widths(m, opt.mode));
  const Llama4TextConfig& t = m.config.text;
  // Expert parallelism: only this rank's share of the routed experts (model/expert_shard.h).
  const int64_t E = held_experts(m), I = t.intermediate_size;
  const bool per_expert = m.store && has_per_expert_tensors(m.config, *m.store);
  MappedRanges mapped(m.store.get());
  uint64_t total = text_elements(m);
  if (per_expert) {
    const int64_t moe_layers = int64_t(t.moe_layers.size());
    total += uint64_t(moe_layers * E * 3 * I * t.hidden_size);
  }
  Progress progress(fmt::format("herd: preparing {} weights", want), total, opt.progress);
  ConvertContext ctx{m, pool, mapped, &progress};
  TextWeights& run = m.run;
  const TextWeights& text = m.text;
  bool kept_fp8 = false;
  run.layers.resize(text.layers.size());
  int layer = -1;
  // The tensor table in file order: norms as they are, every matrix by its class's policy.
  for (const TensorSpec& s : text_tensor_table(m.config)) {
    if (s.layer >= 0 && s.layer != layer) {
      layer = s.layer;
      progress.set_detail(fmt::format("layer {}/{}", layer + 1, text.layers.size()));
    }
    if (const std::vector<float>* n = norm_slot(text, s)) {
      *norm_slot(run, s) = *n;
      continue;
    }
    const WeightRef& src = *weight_slot(text, s);
    WeightRef& dst = *weight_slot(run, s);
    const DType to = run_dtype(opt.mode, weight_class(s.role));
    if (s.role == TensorRole::kEmbedding) {
      // Embedding rows are only looked up: bf16 always, in place when stored bf16.
      dst = src.dtype == DType::BF16 ? src : convert_matrix(ctx, linear_source(src), to);
    } else if (s.role == TensorRole::kExpertsGateUp) {  // fills experts_down too
      HERD_TRY(run_experts(ctx, text.layers[size_t(layer)], run.layers[size_t(layer)], layer, to,
                           per_expert, &kept_fp8));
    } else if (s.role != TensorRole::kExpertsDown) {
      // The router decides which expert runs: never quantized (spec §2.3, run_dtype).
      dst = run_linear(ctx, src, to, &kept_fp8);
    }
  }
  // Tied embeddings (no lm_head in the table): in bf16 the head shares the embedding view; a
  // quantized head is its own copy.
  if (t.tie_word_embeddings) {
    const DType head = run_dtype(opt.mode, WeightClass::kLmHead);
    run.lm_head = (head == DType::BF16 && text.lm_head.data == text.embed.data)
                      ? run.embed
                      : run_linear(ctx, text.lm_head, head, &kept_fp8);
  }
  progress.finish();
  m.has_run = true;
  m.run_format = kept_fp8 && opt.mode == QuantMode::kBF16 ? "fp8" : want;
  return Status::ok();
}

}  // namespace herd
