// prepare_run_weights: the stored weights (m.text, or per-expert tensors of FP8 checkpoints)
// turned into the run format of the fast path, layer by layer (policy table in run_weights.h).
#include "herd/model/run_weights.h"

#include <fmt/format.h>

#include <cstring>

#include "herd/base/log.h"
#include "herd/model/expert_shard.h"
#include "herd/model/run_weights_internal.h"
#include "herd/model/tensor_table.h"
#include "herd/ops/cpu_features.h"
#include "herd/ops/gemm.h"
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
// On AVX-512 VNNI machines without AMX, int8 / int4 products read 16 rows interleaved (Q8GI /
// Q4GI) and bf16 ones the same tiles as AMX (with AVX512_BF16): the vpdpbusd / vdpbf16ps kernels
// then need no horizontal sums (ops/gemm_vnni_il.cc, gemm_bf16_il.cc). AMX machines keep the
// row-major codes their int8 tiles read. Slices (experts) must start on a 16-row block.
DType run_layout(DType to, int64_t slice_rows) {
  const Isa isa = active_isa();
  if (slice_rows % kTileRows != 0) return to;
  if (is_packed(to) && isa == Isa::kAvx512Vnni) return interleaved_format(to);
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

uint64_t text_elements(const LoadedModel& m) {
  uint64_t n = 0;
  auto add = [&](const WeightRef& w) { n += uint64_t(w.rows * w.cols); };
  for (const LayerWeights& l : m.text.layers)
    for (const WeightRef* w :
         {&l.wq, &l.wk, &l.wv, &l.wo, &l.router, &l.experts_gate_up, &l.experts_down,
          &l.shared_gate, &l.shared_up, &l.shared_down, &l.dense_gate, &l.dense_up, &l.dense_down})
      add(*w);
  return n;
}

}  // namespace

Status prepare_run_weights(LoadedModel& m, const QuantOptions& opt, ThreadPool& pool) {
  const std::string want(quant_mode_name(opt.mode));
  if (m.has_run) {
    if (m.run_format == want || (opt.mode == QuantMode::kBF16 && m.run_format == "fp8"))
      return Status::ok();
    return make_error("model {} is {} ({}); --quant {} needs the original checkpoint", m.dir,
                      is_herd_prequantized(m.config) ? "pre-quantized" : "already prepared",
                      m.run_format, want);
  }
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

  // Embedding rows are only looked up: bf16 always, in place when stored bf16.
  run.embed = text.embed.dtype == DType::BF16
                  ? text.embed
                  : convert_matrix(ctx, linear_source(text.embed), DType::BF16);
  run.layers.resize(text.layers.size());
  for (size_t i = 0; i < text.layers.size(); ++i) {
    progress.set_detail(fmt::format("layer {}/{}", i + 1, text.layers.size()));
    const LayerWeights& s = text.layers[i];
    LayerWeights& d = run.layers[i];
    d.attn_norm = s.attn_norm;
    d.ffn_norm = s.ffn_norm;
    const DType attn = run_dtype(opt.mode, WeightClass::kAttention);
    d.wq = run_linear(ctx, s.wq, attn, &kept_fp8);
    d.wk = run_linear(ctx, s.wk, attn, &kept_fp8);
    d.wv = run_linear(ctx, s.wv, attn, &kept_fp8);
    d.wo = run_linear(ctx, s.wo, attn, &kept_fp8);
    if (t.layer_kind(int64_t(i)).moe) {
      // The router decides which expert runs: never quantized (spec §2.3).
      d.router = run_linear(ctx, s.router, DType::BF16, &kept_fp8);
      const DType ex = run_dtype(opt.mode, WeightClass::kExpert);
      if (per_expert) {
        HERD_ASSIGN_OR_RETURN(PerExpert pe, per_expert_views(m, int(i)));
        if (ex == DType::BF16 && all_fp8(pe.gate_up) && all_fp8(pe.down)) {
          d.experts_gate_up = stack_fp8(ctx, pe.gate_up);
          d.experts_down = stack_fp8(ctx, pe.down);
          kept_fp8 = true;
        } else {
          d.experts_gate_up =
              convert_matrix(ctx, stacked_source(pe.gate_up), run_layout(ex, 2 * I));
          d.experts_down =
              convert_matrix(ctx, stacked_source(pe.down), run_layout(ex, t.hidden_size));
        }
      } else {
        // Stored [E*H, 2I] / [E*I, H] input-major -> per expert [2I, H] / [H, I]: the transpose
        // puts gate columns then up columns as rows, which is the run layout.
        d.experts_gate_up = convert_matrix(ctx, in_major_experts_source(s.experts_gate_up, E),
                                           run_layout(ex, 2 * I));
        d.experts_down = convert_matrix(ctx, in_major_experts_source(s.experts_down, E),
                                        run_layout(ex, t.hidden_size));
      }
      const DType sh = run_dtype(opt.mode, WeightClass::kShared);
      d.shared_gate = run_linear(ctx, s.shared_gate, sh, &kept_fp8);
      d.shared_up = run_linear(ctx, s.shared_up, sh, &kept_fp8);
      d.shared_down = run_linear(ctx, s.shared_down, sh, &kept_fp8);
    } else {
      const DType dn = run_dtype(opt.mode, WeightClass::kDense);
      d.dense_gate = run_linear(ctx, s.dense_gate, dn, &kept_fp8);
      d.dense_up = run_linear(ctx, s.dense_up, dn, &kept_fp8);
      d.dense_down = run_linear(ctx, s.dense_down, dn, &kept_fp8);
    }
  }
  run.final_norm = text.final_norm;
  const DType head = run_dtype(opt.mode, WeightClass::kLmHead);
  // Tied embeddings in bf16 share the embedding view; a quantized head is its own copy.
  run.lm_head = (head == DType::BF16 && text.lm_head.data == text.embed.data)
                    ? run.embed
                    : run_linear(ctx, text.lm_head, head, &kept_fp8);
  progress.finish();
  m.has_run = true;
  m.run_format = kept_fp8 && opt.mode == QuantMode::kBF16 ? "fp8" : want;
  return Status::ok();
}

}  // namespace herd
