// Views of the vision tensors (spec §2.1, second table) for the encoder.
#include <fmt/format.h>

#include "herd/model/tensor_table.h"
#include "herd/model/vision.h"
#include "herd/model/weight_views.h"

namespace herd {

bool has_vision_weights(const LoadedModel& model) {
  // load_model accepts either every vision tensor (checked) or none of them.
  return model.config.vision && model.store &&
         model.store->find("vision_model.patch_embedding.linear.weight") != nullptr;
}

Result<VisionWeights> load_vision_weights(const LoadedModel& model) {
  if (!has_vision_weights(model))
    return make_error(
        "model dir {}: this checkpoint has no vision encoder (no vision_config or no vision "
        "tensors); it cannot take images",
        model.dir);
  const Llama4VisionConfig& v = *model.config.vision;
  auto get = [&](const std::string& name) -> Result<const TensorView*> {
    const TensorView* t = model.store->find(name);
    if (!t) return make_error("model dir {}: missing tensor '{}'", model.dir, name);
    return t;
  };
  auto mat = [&](const std::string& name, WeightRef& out) -> Status {
    HERD_ASSIGN_OR_RETURN(const TensorView* t, get(name));
    out = as_matrix(*t);
    return Status::ok();
  };
  auto vec = [&](const std::string& name, std::vector<float>& out) -> Status {
    HERD_ASSIGN_OR_RETURN(const TensorView* t, get(name));
    out = as_f32(*t);
    return Status::ok();
  };
  VisionWeights w;
  const std::string m = "vision_model.";
  HERD_TRY(mat(m + "patch_embedding.linear.weight", w.patch));
  HERD_TRY(vec(m + "class_embedding", w.class_emb));
  HERD_TRY(vec(m + "positional_embedding_vlm", w.pos_emb));
  HERD_TRY(vec(m + "layernorm_pre.weight", w.pre_w));
  HERD_TRY(vec(m + "layernorm_pre.bias", w.pre_b));
  HERD_TRY(vec(m + "layernorm_post.weight", w.post_w));
  HERD_TRY(vec(m + "layernorm_post.bias", w.post_b));
  w.layers.resize(size_t(v.num_hidden_layers));
  for (int64_t j = 0; j < v.num_hidden_layers; ++j) {
    VisionLayerWeights& l = w.layers[size_t(j)];
    const std::string p = fmt::format("{}model.layers.{}.", m, j);
    HERD_TRY(vec(p + "input_layernorm.weight", l.ln1_w));
    HERD_TRY(vec(p + "input_layernorm.bias", l.ln1_b));
    HERD_TRY(vec(p + "post_attention_layernorm.weight", l.ln2_w));
    HERD_TRY(vec(p + "post_attention_layernorm.bias", l.ln2_b));
    HERD_TRY(mat(p + "self_attn.q_proj.weight", l.wq));
    HERD_TRY(mat(p + "self_attn.k_proj.weight", l.wk));
    HERD_TRY(mat(p + "self_attn.v_proj.weight", l.wv));
    HERD_TRY(mat(p + "self_attn.o_proj.weight", l.wo));
    HERD_TRY(vec(p + "self_attn.q_proj.bias", l.bq));
    HERD_TRY(vec(p + "self_attn.k_proj.bias", l.bk));
    HERD_TRY(vec(p + "self_attn.v_proj.bias", l.bv));
    HERD_TRY(vec(p + "self_attn.o_proj.bias", l.bo));
    HERD_TRY(mat(p + "mlp.fc1.weight", l.fc1));
    HERD_TRY(vec(p + "mlp.fc1.bias", l.b1));
    HERD_TRY(mat(p + "mlp.fc2.weight", l.fc2));
    HERD_TRY(vec(p + "mlp.fc2.bias", l.b2));
  }
  HERD_TRY(mat(m + "vision_adapter.mlp.fc1.weight", w.adapter_fc1));
  HERD_TRY(mat(m + "vision_adapter.mlp.fc2.weight", w.adapter_fc2));
  HERD_TRY(mat("multi_modal_projector.linear_1.weight", w.projector));
  return w;
}

}  // namespace herd
