// load_model: config.json + safetensors -> typed views. Every tensor of the tensor table is
// checked for presence, shape and dtype before any view is handed out, so the forward pass can
// trust the shapes it is given.
#include "herd/model/weights.h"

#include <fmt/format.h>

#include "herd/base/log.h"
#include "herd/model/gguf_load.h"
#include "herd/model/run_weights.h"
#include "herd/model/tensor_table.h"
#include "herd/model/weight_slots.h"
#include "herd/model/weight_views.h"
#include "herd/quant/format_table.h"

namespace herd {

namespace {

Status check_dtype(const std::string& dir, const TensorView& v) {
  const FormatKind kind = format_traits(v.dtype).kind;
  if (kind == FormatKind::kScaledFloat)
    return make_error(
        "model dir {}: tensor '{}' ({}) is {} outside the layout herd reads for FP8 "
        "(compressed-tensors: per-expert Linear weights with a .weight_scale each)",
        dir, v.name, v.file, dtype_name(v.dtype));
  if (kind != FormatKind::kFloat)
    return make_error("model dir {}: tensor '{}' ({}) has dtype {}; expected BF16, F16 or F32", dir,
                      v.name, v.file, dtype_name(v.dtype));
  // Kernels load elements directly: the official writer pads the header to 8 bytes, so only a
  // hand-made file can trip this, and we refuse it rather than read misaligned memory.
  if (reinterpret_cast<uintptr_t>(v.data) % dtype_size(v.dtype) != 0)
    return make_error("model dir {}: tensor '{}' ({}) is not aligned to its {}-byte elements", dir,
                      v.name, v.file, dtype_size(v.dtype));
  return Status::ok();
}

// Finds a table tensor and checks it; errors name the tensor and the expected shape.
Result<const TensorView*> get_checked(const std::string& dir, const TensorStore& store,
                                      const TensorSpec& spec) {
  const TensorView* v = store.find(spec.name);
  if (!v)
    return make_error("model dir {}: missing tensor '{}' (expected shape {})", dir, spec.name,
                      shape_str(spec.shape));
  if (v->shape != spec.shape)
    return make_error("model dir {}: tensor '{}' ({}) has shape {}, expected {}", dir, spec.name,
                      v->file, shape_str(v->shape), shape_str(spec.shape));
  return v;
}

// Views a table tensor in its slot: matrices as stored, norm gains as f32 copies.
void assign(TextWeights& tw, const TensorSpec& spec, const TensorView& v) {
  if (WeightRef* w = weight_slot(tw, spec))
    *w = as_matrix(v);
  else if (std::vector<float>* n = norm_slot(tw, spec))
    *n = as_f32(v);
}

}  // namespace

WeightRef as_matrix(const TensorView& v) {
  WeightRef w;
  w.dtype = v.dtype;
  w.data = v.data;
  w.cols = v.shape.back();
  w.rows = v.shape.size() >= 2 ? v.numel() / std::max<int64_t>(w.cols, 1) : 1;
  return w;
}

std::vector<float> as_f32(const TensorView& v) {
  WeightRef w = as_matrix(v);
  std::vector<float> out(size_t(v.numel()));
  dequantize_row(WeightRef{w.dtype, w.data, 1, v.numel(), nullptr}, 0, out.data());
  return out;
}

Result<LoadedModel> load_model(const std::string& dir) {
  if (gguf::is_gguf_path(dir)) return load_gguf_model(dir);  // a .gguf file, not a directory
  LoadedModel m;
  m.dir = dir;
  HERD_ASSIGN_OR_RETURN(m.config, load_config(dir));
  HERD_ASSIGN_OR_RETURN(m.store, TensorStore::open_dir(dir));
  m.text.layers.resize(size_t(m.config.text.num_hidden_layers));
  // Pre-quantized directories (`herd quantize`) and FP8 / per-expert checkpoints have loaders
  // of their own (model/run_weights.h).
  if (is_herd_prequantized(m.config)) {
    HERD_TRY(load_prequantized(m));
  } else if (needs_fp8_loader(m.config, *m.store)) {
    HERD_TRY(load_per_expert_checkpoint(m));
  } else {
    for (const TensorSpec& spec : text_tensor_table(m.config)) {
      HERD_ASSIGN_OR_RETURN(const TensorView* v, get_checked(dir, *m.store, spec));
      HERD_TRY(check_dtype(dir, *v));
      assign(m.text, spec, *v);
    }
  }
  if (m.config.text.tie_word_embeddings) m.text.lm_head = m.text.embed;
  // Vision weights are checked now (a broken checkpoint should fail at load, not at the first
  // image) but viewed by the vision encoder itself (model/vision.h). A config with a
  // vision_config over files holding no vision tensor at all is a text-only extraction: it loads
  // as a text model, as transformers and llama.cpp users expect; a partial set stays an error.
  const std::vector<TensorSpec> vision = vision_tensor_table(m.config);
  size_t present = 0;
  for (const TensorSpec& spec : vision) present += m.store->find(spec.name) != nullptr;
  if (!vision.empty() && present == 0) {
    log(LogLevel::kWarn,
        "model dir {}: config.json has a vision_config but the checkpoint holds no vision "
        "tensors; loaded as a text-only model (images are refused)",
        dir);
    return m;
  }
  for (const TensorSpec& spec : vision) {
    HERD_ASSIGN_OR_RETURN(const TensorView* v, get_checked(dir, *m.store, spec));
    HERD_TRY(check_dtype(dir, *v));
  }
  return m;
}

}  // namespace herd
