// FP8 checkpoints in the compressed-tensors layout of the Maverick FP8 release (spec §2.4):
// routed experts unfused per expert in nn.Linear layout, any Linear possibly F8_E4M3 with a
// per-output-channel ".weight_scale". The file decides per tensor; quantization_config's
// `ignore` list is only cross-checked (a mismatch is a warning).
//
// Choice for the f32 reference: FP8 Linears outside the experts are viewed in place (matmul
// dequantizes F8_E4M3 with row_scale). The reference's expert path reads the fused input-major
// layout, which per-expert [out, in] tensors cannot be viewed as; prepare_reference_weights
// builds those as f32 copies (exact: fp8 · scale is one f32 product) only when --precision f32
// asks for them. The fast path's run weights keep FP8 (run_weights.cc).
#include <fmt/format.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>

#include "herd/base/log.h"
#include "herd/model/gguf_load.h"
#include "herd/model/run_weights.h"
#include "herd/model/run_weights_internal.h"
#include "herd/model/tensor_table.h"
#include "herd/model/weight_slots.h"
#include "herd/quant/format_table.h"

namespace herd {

using namespace run_internal;

namespace {

// compressed-tensors `ignore`: exact module names or "re:"-prefixed regexes (full match).
struct IgnoreList {
  std::vector<std::string> exact;
  std::vector<std::regex> patterns;
  bool matches(const std::string& module) const {
    for (const auto& e : exact)
      if (e == module) return true;
    for (const auto& p : patterns)
      if (std::regex_match(module, p)) return true;
    return false;
  }
};

Result<IgnoreList> parse_ignore(const LoadedModel& m) {
  IgnoreList out;
  if (m.config.quantization_json.empty()) return out;
  auto q = nlohmann::json::parse(m.config.quantization_json, nullptr, false);
  if (q.is_discarded() || !q.is_object() || !q.contains("ignore")) return out;
  if (!q["ignore"].is_array())
    return make_error("{}/config.json: quantization_config.ignore must be a list", m.dir);
  for (const auto& e : q["ignore"]) {
    if (!e.is_string())
      return make_error("{}/config.json: quantization_config.ignore holds a non-string", m.dir);
    const std::string s = e.get<std::string>();
    if (s.rfind("re:", 0) == 0) {
      try {
        out.patterns.emplace_back(s.substr(3));
      } catch (const std::regex_error& err) {
        return make_error("{}/config.json: quantization_config.ignore regex '{}': {}", m.dir, s,
                          err.what());
      }
    } else {
      out.exact.push_back(s);
    }
  }
  return out;
}

Status check_align(const LoadedModel& m, const TensorView& v) {
  const size_t a = dtype_size(v.dtype);
  if (a > 1 && reinterpret_cast<uintptr_t>(v.data) % a != 0)
    return make_error("model dir {}: tensor '{}' ({}) is not aligned to its {}-byte elements",
                      m.dir, v.name, v.file, a);
  return Status::ok();
}

}  // namespace

bool has_per_expert_tensors(const Llama4Config& cfg, const TensorStore& store) {
  const Llama4TextConfig& t = cfg.text;
  for (int64_t i = 0; i < t.num_hidden_layers; ++i)
    if (t.layer_kind(i).moe)
      return store.find(fmt::format("{}model.layers.{}.feed_forward.experts.0.gate_proj.weight",
                                    cfg.text_prefix(), i)) != nullptr;
  return false;
}

bool needs_fp8_loader(const Llama4Config& cfg, const TensorStore& store) {
  if (has_per_expert_tensors(cfg, store)) return true;
  for (const TensorSpec& s : text_tensor_table(cfg))
    if (const TensorView* v = store.find(s.name); v && v->dtype == DType::F8_E4M3) return true;
  return false;
}

Status load_per_expert_checkpoint(LoadedModel& m) {
  const bool per_expert = has_per_expert_tensors(m.config, *m.store);
  const auto table =
      per_expert ? text_tensor_table_per_expert(m.config) : text_tensor_table(m.config);
  HERD_ASSIGN_OR_RETURN(IgnoreList ignore, parse_ignore(m));
  const bool has_qcfg = !m.config.quantization_json.empty();
  m.text.layers.resize(size_t(m.config.text.num_hidden_layers));
  int mismatches = 0;
  for (const TensorSpec& s : table) {
    const TensorView* v = m.store->find(s.name);
    if (!v)
      return make_error("model dir {}: missing tensor '{}' (expected shape {})", m.dir, s.name,
                        shape_str(s.shape));
    if (v->shape != s.shape)
      return make_error("model dir {}: tensor '{}' ({}) has shape {}, expected {}", m.dir, s.name,
                        v->file, shape_str(v->shape), shape_str(s.shape));
    const bool fp8 = v->dtype == DType::F8_E4M3;
    if (!fp8 && format_traits(v->dtype).kind != FormatKind::kFloat)
      return make_error(
          "model dir {}: tensor '{}' ({}) has dtype {}; expected BF16, F16, F32 or "
          "F8_E4M3",
          m.dir, s.name, v->file, dtype_name(v->dtype));
    HERD_TRY(check_align(m, *v));
    if (fp8 && (!is_linear(s.role) || (!per_expert && (s.role == TensorRole::kExpertsGateUp ||
                                                       s.role == TensorRole::kExpertsDown))))
      return make_error(
          "model dir {}: tensor '{}' ({}) is F8_E4M3, which herd reads only for nn.Linear "
          "weights (fused FP8 experts of the fbgemm layout are not supported)",
          m.dir, s.name, v->file);
    WeightRef w{v->dtype,       v->data, s.shape.size() == 2 ? s.shape[0] : 1,
                s.shape.back(), nullptr, nullptr};
    if (s.shape.size() == 3) w.rows = s.shape[0] * s.shape[1];  // fused experts [E*in, out]
    if (fp8 && s.expert >= 0) {
      // Checked now so a broken scale fails at load; converted when the experts are built.
      HERD_TRY(find_fp8_scale(m, s.name, w.rows).status());
    } else if (fp8) {
      HERD_ASSIGN_OR_RETURN(w.row_scale, fp8_row_scales(m, s.name, w.rows));
    }
    if (has_qcfg && is_linear(s.role)) {
      const std::string module = s.name.substr(0, s.name.size() - std::string(".weight").size());
      const bool ignored = ignore.matches(module);
      if (ignored == fp8 && mismatches++ < 5)
        log(LogLevel::kWarn, "{}: tensor '{}' is {} but quantization_config.ignore {} it", m.dir,
            s.name, dtype_name(v->dtype), ignored ? "lists" : "does not list");
    }
    if (s.expert >= 0) continue;  // per-expert: read by prepare_run/reference_weights
    if (std::vector<float>* n = norm_slot(m.text, s)) {
      n->resize(size_t(v->numel()));
      dequantize_row(WeightRef{v->dtype, v->data, 1, v->numel(), nullptr, nullptr}, 0, n->data());
    } else if (WeightRef* slot = weight_slot(m.text, s)) {
      *slot = w;
    }
  }
  if (mismatches > 5)
    log(LogLevel::kWarn, "{}: {} tensors in all disagree with quantization_config.ignore", m.dir,
        mismatches);
  return Status::ok();
}

Status prepare_reference_weights(LoadedModel& m, ThreadPool& pool) {
  if (m.run_format == kGgufRunFormat) return check_gguf_run_weights(m, /*fast=*/false);
  if (is_herd_prequantized(m.config))
    return make_error(
        "model {} is pre-quantized ({}): the f32 reference needs the original BF16 "
        "checkpoint",
        m.dir, m.run_format);
  if (!m.store || !has_per_expert_tensors(m.config, *m.store)) return Status::ok();
  const Llama4TextConfig& t = m.config.text;
  const int64_t E = t.num_local_experts, H = t.hidden_size, I = t.intermediate_size;
  for (const TensorSpec& s : text_tensor_table_per_expert(m.config)) {
    if (s.expert != 0 || s.expert_part == 1) continue;  // once per layer and fused tensor
    LayerWeights& L = m.text.layers[size_t(s.layer)];
    const bool gu = s.expert_part == 0;
    WeightRef& dst = gu ? L.experts_gate_up : L.experts_down;
    if (dst.data) continue;  // built already
    // Fused input-major: gate_up [E*H, 2I] (columns: gate then up), down [E*I, H].
    const int64_t in = gu ? H : I, out = gu ? 2 * I : H;
    float* data = alloc_owned_f32(m, size_t(E * in * out));
    const std::string base = s.name.substr(0, s.name.rfind(".0.") + 1);  // "...experts."
    Status status = Status::ok();
    std::mutex mu;
    pool.parallel_for(size_t(E), 1, [&](size_t e0, size_t e1, int) {
      std::vector<float> row;
      for (size_t e = e0; e < e1; ++e) {
        for (int part = gu ? 0 : 2; part <= (gu ? 1 : 2); ++part) {
          const char* proj = part == 0 ? "gate_proj" : part == 1 ? "up_proj" : "down_proj";
          const std::string name = fmt::format("{}{}.{}.weight", base, e, proj);
          const TensorView* v = m.store->find(name);
          WeightRef w{v->dtype, v->data, v->shape[0], v->shape[1], nullptr, nullptr};
          if (v->dtype == DType::F8_E4M3) {
            std::lock_guard<std::mutex> lock(mu);  // alloc_owned appends to m.owned
            auto sc = fp8_row_scales(m, name, w.rows);
            if (!sc) {
              status = sc.status();
              return;
            }
            w.row_scale = *sc;
          }
          const int64_t col0 = part == 1 ? I : 0;
          row.resize(size_t(w.cols));
          for (int64_t o = 0; o < w.rows; ++o) {  // W[o, i] -> fused[e*in + i, col0 + o]
            dequantize_row(w, o, row.data());
            for (int64_t i = 0; i < w.cols; ++i)
              data[(int64_t(e) * in + i) * out + col0 + o] = row[size_t(i)];
          }
        }
      }
    });
    HERD_TRY(status);
    dst = WeightRef{DType::F32, data, E * in, out, nullptr, nullptr};
  }
  return Status::ok();
}

}  // namespace herd
