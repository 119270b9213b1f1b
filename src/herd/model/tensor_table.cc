#include "herd/model/tensor_table.h"

#include <fmt/format.h>

namespace herd {

std::vector<TensorSpec> text_tensor_table(const Llama4Config& cfg) {
  const Llama4TextConfig& t = cfg.text;
  const std::string p = cfg.text_prefix();  // "language_model." or ""
  const int64_t H = t.hidden_size, V = t.vocab_size, E = t.num_local_experts;
  const int64_t I = t.intermediate_size, Imlp = t.intermediate_size_mlp;
  std::vector<TensorSpec> out;
  auto add = [&](std::string name, std::vector<int64_t> shape, TensorRole role, int layer) {
    out.push_back(TensorSpec{std::move(name), std::move(shape), DType::BF16, true, role, layer});
  };
  add(p + "model.embed_tokens.weight", {V, H}, TensorRole::kEmbedding, -1);
  for (int i = 0; i < int(t.num_hidden_layers); ++i) {
    const std::string l = fmt::format("{}model.layers.{}.", p, i);
    add(l + "input_layernorm.weight", {H}, TensorRole::kAttnNorm, i);
    add(l + "self_attn.q_proj.weight", {t.q_dim(), H}, TensorRole::kAttnQ, i);
    add(l + "self_attn.k_proj.weight", {t.kv_dim(), H}, TensorRole::kAttnK, i);
    add(l + "self_attn.v_proj.weight", {t.kv_dim(), H}, TensorRole::kAttnV, i);
    add(l + "self_attn.o_proj.weight", {H, t.q_dim()}, TensorRole::kAttnO, i);
    add(l + "post_attention_layernorm.weight", {H}, TensorRole::kFfnNorm, i);
    const std::string f = l + "feed_forward.";
    if (t.layer_kind(i).moe) {
      add(f + "router.weight", {E, H}, TensorRole::kRouter, i);
      // Fused experts are stored [in, out] without a ".weight" suffix (spec §2.1, §7.7).
      add(f + "experts.gate_up_proj", {E, H, 2 * I}, TensorRole::kExpertsGateUp, i);
      add(f + "experts.down_proj", {E, I, H}, TensorRole::kExpertsDown, i);
      add(f + "shared_expert.gate_proj.weight", {I, H}, TensorRole::kSharedGate, i);
      add(f + "shared_expert.up_proj.weight", {I, H}, TensorRole::kSharedUp, i);
      add(f + "shared_expert.down_proj.weight", {H, I}, TensorRole::kSharedDown, i);
    } else {
      add(f + "gate_proj.weight", {Imlp, H}, TensorRole::kDenseGate, i);
      add(f + "up_proj.weight", {Imlp, H}, TensorRole::kDenseUp, i);
      add(f + "down_proj.weight", {H, Imlp}, TensorRole::kDenseDown, i);
    }
  }
  add(p + "model.norm.weight", {H}, TensorRole::kFinalNorm, -1);
  if (!t.tie_word_embeddings) add(p + "lm_head.weight", {V, H}, TensorRole::kLmHead, -1);
  return out;
}

std::vector<TensorSpec> text_tensor_table_per_expert(const Llama4Config& cfg) {
  const Llama4TextConfig& t = cfg.text;
  const int64_t H = t.hidden_size, I = t.intermediate_size;
  std::vector<TensorSpec> out;
  for (TensorSpec& s : text_tensor_table(cfg)) {
    const bool gate_up = s.role == TensorRole::kExpertsGateUp;
    if (!gate_up && s.role != TensorRole::kExpertsDown) {
      out.push_back(std::move(s));
      continue;
    }
    // "...feed_forward.experts.gate_up_proj" -> "...feed_forward.experts."
    const std::string base = s.name.substr(0, s.name.rfind('.') + 1);
    for (int64_t e = 0; e < t.num_local_experts; ++e) {
      auto add = [&](const char* proj, std::vector<int64_t> shape, int part) {
        TensorSpec x{fmt::format("{}{}.{}.weight", base, e, proj), std::move(shape), DType::BF16,
                     true, s.role, s.layer};
        x.expert = int(e);
        x.expert_part = part;
        out.push_back(std::move(x));
      };
      if (gate_up) {
        add("gate_proj", {I, H}, 0);
        add("up_proj", {I, H}, 1);
      } else {
        add("down_proj", {H, I}, 2);
      }
    }
  }
  return out;
}

std::vector<TensorSpec> vision_tensor_table(const Llama4Config& cfg) {
  std::vector<TensorSpec> out;
  if (!cfg.vision) return out;
  const Llama4VisionConfig& v = *cfg.vision;
  const int64_t D = v.hidden_size, F = v.intermediate_size, C = v.num_channels;
  const int64_t P = v.patch_size, side = v.image_size / v.patch_size;
  const int64_t n_pos = side * side + 1;  // patches + CLS (appended last, spec §5.3)
  // Pixel shuffle with ratio r merges 1/r^2 patches: 1408 * 4 = 5632 for r = 0.5.
  const int64_t shuffled = int64_t(double(D) / (v.pixel_shuffle_ratio * v.pixel_shuffle_ratio));
  auto add = [&](std::string name, std::vector<int64_t> shape, int layer) {
    out.push_back(
        TensorSpec{std::move(name), std::move(shape), DType::BF16, true, TensorRole::kVision, layer});
  };
  const std::string m = "vision_model.";
  add(m + "patch_embedding.linear.weight", {D, C * P * P}, -1);
  add(m + "class_embedding", {D}, -1);
  add(m + "positional_embedding_vlm", {n_pos, D}, -1);
  add(m + "layernorm_pre.weight", {D}, -1);
  add(m + "layernorm_pre.bias", {D}, -1);
  add(m + "layernorm_post.weight", {D}, -1);
  add(m + "layernorm_post.bias", {D}, -1);
  for (int j = 0; j < int(v.num_hidden_layers); ++j) {
    const std::string l = fmt::format("{}model.layers.{}.", m, j);
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      add(l + "self_attn." + proj + ".weight", {D, D}, j);
      add(l + "self_attn." + proj + ".bias", {D}, j);
    }
    add(l + "input_layernorm.weight", {D}, j);
    add(l + "input_layernorm.bias", {D}, j);
    add(l + "post_attention_layernorm.weight", {D}, j);
    add(l + "post_attention_layernorm.bias", {D}, j);
    add(l + "mlp.fc1.weight", {F, D}, j);
    add(l + "mlp.fc1.bias", {F}, j);
    add(l + "mlp.fc2.weight", {D, F}, j);
    add(l + "mlp.fc2.bias", {D}, j);
  }
  add(m + "vision_adapter.mlp.fc1.weight", {v.projector_input_dim, shuffled}, -1);
  add(m + "vision_adapter.mlp.fc2.weight", {v.projector_output_dim, v.projector_input_dim}, -1);
  add("multi_modal_projector.linear_1.weight", {cfg.text.hidden_size, v.vision_output_dim}, -1);
  return out;
}

std::vector<TensorSpec> tensor_table(const Llama4Config& cfg) {
  auto out = text_tensor_table(cfg);
  auto vis = vision_tensor_table(cfg);
  out.insert(out.end(), vis.begin(), vis.end());
  return out;
}

}  // namespace herd
