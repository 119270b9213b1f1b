// Pre-quantized model directories (`herd quantize`; format in docs/prequantized.md): the run
// format written as safetensors with herd's packed dtypes (by convert/prequant_save.cc), mapped
// back here without conversion.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "herd/io/safetensors.h"
#include "herd/model/run_weights.h"
#include "herd/model/tensor_table.h"
#include "herd/model/weight_slots.h"
#include "herd/quant/formats.h"

namespace herd {

// Fused experts get new names: their layout changed
// ("...experts.gate_up_proj" [E, H, 2I] -> "...experts.run_gate_up.weight" [E*2I, H]).
std::string prequant_tensor_name(const TensorSpec& s) {
  if (s.role == TensorRole::kExpertsGateUp || s.role == TensorRole::kExpertsDown) {
    const std::string base = s.name.substr(0, s.name.rfind('.') + 1);
    return base + (s.role == TensorRole::kExpertsGateUp ? "run_gate_up.weight" : "run_down.weight");
  }
  return s.name;
}

std::vector<int64_t> prequant_tensor_shape(const TensorSpec& s, const Llama4TextConfig& t) {
  const int64_t E = t.num_local_experts, H = t.hidden_size, I = t.intermediate_size;
  if (s.role == TensorRole::kExpertsGateUp) return {E * 2 * I, H};
  if (s.role == TensorRole::kExpertsDown) return {E * H, I};
  return s.shape;
}

namespace {

Result<const TensorView*> find_checked(const LoadedModel& m, const std::string& name,
                                       const std::vector<int64_t>& shape) {
  const TensorView* v = m.store->find(name);
  if (!v)
    return make_error("pre-quantized model {}: missing tensor '{}' (expected shape {})", m.dir,
                      name, shape_str(shape));
  if (v->shape != shape)
    return make_error("pre-quantized model {}: tensor '{}' ({}) has shape {}, expected {}", m.dir,
                      name, v->file, shape_str(v->shape), shape_str(shape));
  return v;
}

// The f32 scales beside a packed or FP8 tensor: "<name>.scales".
Result<const float*> find_scales(const LoadedModel& m, const std::string& name,
                                 const std::vector<int64_t>& shape) {
  HERD_ASSIGN_OR_RETURN(const TensorView* s, find_checked(m, name + ".scales", shape));
  if (s->dtype != DType::F32)
    return make_error("pre-quantized model {}: tensor '{}' ({}) has dtype {}, expected F32", m.dir,
                      s->name, s->file, dtype_name(s->dtype));
  if (reinterpret_cast<uintptr_t>(s->data) % 4 != 0)
    return make_error("pre-quantized model {}: tensor '{}' ({}) is not 4-byte aligned", m.dir,
                      s->name, s->file);
  return reinterpret_cast<const float*>(s->data);
}

}  // namespace

bool is_herd_prequantized(const Llama4Config& cfg) {
  if (cfg.quantization_json.empty()) return false;
  auto q = nlohmann::json::parse(cfg.quantization_json, nullptr, false);
  return q.is_object() && q.value("quant_method", "") == "herd";
}

Status load_prequantized(LoadedModel& m) {
  auto q = nlohmann::json::parse(m.config.quantization_json, nullptr, false);
  const std::string format = q.value("format", "");
  if (q.value("group_size", int64_t(0)) != kQuantGroup)
    return make_error("pre-quantized model {}: quantization_config.group_size must be {}", m.dir,
                      kQuantGroup);
  if (q.value("version", 0) != kPrequantFormatVersion)
    return make_error("pre-quantized model {}: format version {} (this herd reads {})", m.dir,
                      q.value("version", 0), kPrequantFormatVersion);
  m.text.layers.resize(size_t(m.config.text.num_hidden_layers));  // left empty: no reference
  m.run.layers.resize(size_t(m.config.text.num_hidden_layers));
  const Llama4TextConfig& t = m.config.text;
  for (const TensorSpec& s : text_tensor_table(m.config)) {
    if (auto* n = norm_slot(m.run, s)) {
      HERD_ASSIGN_OR_RETURN(const TensorView* v, find_checked(m, s.name, s.shape));
      n->resize(size_t(v->numel()));
      dequantize_row(WeightRef{v->dtype, v->data, 1, v->numel(), nullptr, nullptr}, 0, n->data());
      continue;
    }
    WeightRef* w = weight_slot(m.run, s);
    const std::string name = prequant_tensor_name(s);
    const std::vector<int64_t> shape = prequant_tensor_shape(s, t);
    HERD_ASSIGN_OR_RETURN(const TensorView* v, find_checked(m, name, shape));
    *w = WeightRef{v->dtype, v->data, shape[0], shape[1], nullptr, nullptr};
    if (is_packed(v->dtype)) {
      HERD_ASSIGN_OR_RETURN(w->group_scale,
                            find_scales(m, name, {shape[0], quant_groups(shape[1])}));
    } else if (v->dtype == DType::F8_E4M3) {
      HERD_ASSIGN_OR_RETURN(w->row_scale, find_scales(m, name, {shape[0]}));
    } else if (v->dtype == DType::BF16T) {
      if (shape[0] % kTileRows != 0)
        return make_error(
            "pre-quantized model {}: tensor '{}' ({}) is {} with {} rows (not a "
            "multiple of {})",
            m.dir, name, v->file, dtype_name(v->dtype), shape[0], kTileRows);
    } else if (v->dtype != DType::BF16 && v->dtype != DType::F32) {
      return make_error("pre-quantized model {}: tensor '{}' ({}) has dtype {}", m.dir, name,
                        v->file, dtype_name(v->dtype));
    } else if (reinterpret_cast<uintptr_t>(v->data) % dtype_size(v->dtype) != 0) {
      return make_error("pre-quantized model {}: tensor '{}' ({}) is misaligned", m.dir, name,
                        v->file);
    }
  }
  if (t.tie_word_embeddings) {
    const std::string head = m.config.text_prefix() + "lm_head.weight";
    m.run.lm_head = m.run.embed;
    if (const TensorView* v = m.store->find(head)) {
      m.run.lm_head =
          WeightRef{v->dtype, v->data, v->shape.at(0), v->shape.back(), nullptr, nullptr};
      if (is_packed(v->dtype)) {
        HERD_ASSIGN_OR_RETURN(m.run.lm_head.group_scale,
                              find_scales(m, head, {v->shape[0], quant_groups(v->shape.back())}));
      }
    }
  }
  m.has_run = true;
  m.run_format = format;
  return Status::ok();
}

}  // namespace herd
