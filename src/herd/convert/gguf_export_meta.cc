// GGUF export, model part: metadata keys, rope factors, HF -> GGUF tensor names and shapes,
// and the config facts llama.cpp cannot represent. Key names and the values llama.cpp reads
// are from llama.cpp's src/llama-model.cpp (load_hparams) and src/models/llama4.cpp.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "herd/convert/gguf_export.h"

namespace herd {

bool parse_gguf_dtype(const std::string& s, GgufDtype* out) {
  if (s == "f32")
    *out = GgufDtype::kF32;
  else if (s == "f16")
    *out = GgufDtype::kF16;
  else if (s == "bf16")
    *out = GgufDtype::kBF16;
  else
    return false;
  return true;
}

std::vector<std::string> llama_cpp_differences(const Llama4TextConfig& t) {
  std::vector<std::string> out;
  const int64_t L = t.num_hidden_layers;
  bool any_nope = false, any_chunked = false;
  for (int64_t i = 0; i < L; ++i) {
    any_nope |= !t.layer_kind(i).rope;
    any_chunked |= t.layer_kind(i).chunked;
  }
  // Without NoPE layers and chunking we write attention.sliding_window = 0, which llama.cpp
  // reads as "RoPE everywhere, plain causal attention": exact. Otherwise it hard-codes the
  // released layout (src/models/llama4.cpp).
  if (any_nope || any_chunked) {
    for (int64_t i = 0; i < L; ++i) {
      const LayerKind& k = t.layer_kind(i);
      const bool cpp_rope = (i + 1) % 4 != 0;
      if (k.rope != cpp_rope)
        out.push_back(fmt::format("layer {}: {} here, llama.cpp makes every 4th layer NoPE", i,
                                  k.rope ? "RoPE" : "NoPE"));
      if (k.rope && !k.chunked)
        out.push_back(fmt::format("layer {}: unchunked RoPE layer, llama.cpp chunks it", i));
    }
    if (any_chunked && t.attention_chunk_size != 8192)
      out.push_back(fmt::format("attention_chunk_size {}: llama.cpp hard-codes 8192",
                                t.attention_chunk_size));
    if (any_nope && !t.attn_temperature_tuning)
      out.push_back("attn_temperature_tuning off: llama.cpp always tunes NoPE layers");
    if (any_nope && (t.floor_scale != 8192 || std::abs(t.attn_scale - 0.1) > 1e-12))
      out.push_back(fmt::format("floor_scale {} / attn_scale {}: llama.cpp hard-codes 8192 / 0.1",
                                t.floor_scale, t.attn_scale));
  }
  if (t.use_qk_norm != (t.num_local_experts != 128))
    out.push_back(
        fmt::format("use_qk_norm {} with {} experts: llama.cpp uses QK-norm iff the "
                    "expert count is not 128",
                    t.use_qk_norm, t.num_local_experts));
  for (int64_t i = 0; i < L; ++i) {
    const bool cpp_moe = (i + 1) % t.interleave_moe_layer_step == 0;
    if (t.layer_kind(i).moe != cpp_moe)
      out.push_back(fmt::format("layer {}: moe_layers disagrees with interleave_moe_layer_step {}",
                                i, t.interleave_moe_layer_step));
  }
  if (t.num_local_experts == 0)
    out.push_back("no experts: llama.cpp rejects llama4 without experts");
  if (t.attention_bias) out.push_back("attention_bias: llama.cpp's llama4 has no biases");
  return out;
}

void add_llama4_metadata(const Llama4Config& cfg, GgufDtype dtype, const std::string& name,
                         gguf::Writer& w) {
  using gguf::Value;
  const Llama4TextConfig& t = cfg.text;
  auto u32 = [](int64_t v) { return Value::u32(uint32_t(v)); };
  // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_BF16 32.
  const uint32_t ftype = dtype == GgufDtype::kF32 ? 0 : dtype == GgufDtype::kF16 ? 1 : 32;
  w.set("general.architecture", Value::string("llama4"));
  w.set("general.type", Value::string("model"));
  w.set("general.name", Value::string(name));
  w.set("general.file_type", Value::u32(ftype));
  w.set("llama4.vocab_size", u32(t.vocab_size));
  w.set("llama4.context_length", u32(t.max_position_embeddings));
  w.set("llama4.embedding_length", u32(t.hidden_size));
  w.set("llama4.block_count", u32(t.num_hidden_layers));
  // llama.cpp swaps the HF meanings (spec §7.8): dense width here, expert width below.
  w.set("llama4.feed_forward_length", u32(t.intermediate_size_mlp));
  w.set("llama4.expert_feed_forward_length", u32(t.intermediate_size));
  w.set("llama4.attention.head_count", u32(t.num_attention_heads));
  w.set("llama4.attention.head_count_kv", u32(t.num_key_value_heads));
  w.set("llama4.attention.key_length", u32(t.head_dim));
  w.set("llama4.attention.value_length", u32(t.head_dim));
  w.set("llama4.rope.dimension_count", u32(t.head_dim));
  w.set("llama4.rope.freq_base", Value::f32(float(t.rope_theta)));
  w.set("llama4.attention.layer_norm_rms_epsilon", Value::f32(float(t.rms_norm_eps)));
  w.set("llama4.expert_count", u32(t.num_local_experts));
  w.set("llama4.expert_used_count", u32(t.num_experts_per_tok));
  w.set("llama4.interleave_moe_layer_step", u32(t.interleave_moe_layer_step));
  bool any_nope = false, any_chunked = false;
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    any_nope |= !t.layer_kind(i).rope;
    any_chunked |= t.layer_kind(i).chunked;
  }
  // The converter's MobileLLM case: no chunking, no NoPE -> sliding_window 0 (exact).
  if (!any_nope && !any_chunked) w.set("llama4.attention.sliding_window", Value::u32(0));
}

std::vector<GgufTensorPlan> gguf_tensor_plan(const TensorSpec& spec, const Llama4TextConfig& t,
                                             GgufDtype dtype) {
  using gguf::GgmlType;
  const GgmlType wt = dtype == GgufDtype::kF32   ? GgmlType::kF32
                      : dtype == GgufDtype::kF16 ? GgmlType::kF16
                                                 : GgmlType::kBF16;
  const std::string b = fmt::format("blk.{}.", spec.layer);
  // GGML ne = PyTorch shape reversed.
  auto linear = [&](const std::string& n, GgmlType type = GgmlType::kF32) {
    std::vector<int64_t> ne(spec.shape.rbegin(), spec.shape.rend());
    return std::vector<GgufTensorPlan>{{n, ne, type}};
  };
  const int64_t H = t.hidden_size, I = t.intermediate_size, E = t.num_local_experts;
  switch (spec.role) {
    case TensorRole::kEmbedding:
      return linear("token_embd.weight", wt);
    case TensorRole::kAttnNorm:
      return linear(b + "attn_norm.weight");
    case TensorRole::kAttnQ:
      return linear(b + "attn_q.weight", wt);
    case TensorRole::kAttnK:
      return linear(b + "attn_k.weight", wt);
    case TensorRole::kAttnV:
      return linear(b + "attn_v.weight", wt);
    case TensorRole::kAttnO:
      return linear(b + "attn_output.weight", wt);
    case TensorRole::kFfnNorm:
      return linear(b + "ffn_norm.weight");
    case TensorRole::kRouter:
      return linear(b + "ffn_gate_inp.weight");  // F32 like the converter
    // [E, H, 2I] input-major -> per expert W^T: PyTorch [E, I, H], ne {H, I, E}.
    case TensorRole::kExpertsGateUp:
      return {{b + "ffn_gate_exps.weight", {H, I, E}, wt},
              {b + "ffn_up_exps.weight", {H, I, E}, wt}};
    // [E, I, H] input-major -> PyTorch [E, H, I], ne {I, H, E}.
    case TensorRole::kExpertsDown:
      return {{b + "ffn_down_exps.weight", {I, H, E}, wt}};
    case TensorRole::kSharedGate:
      return linear(b + "ffn_gate_shexp.weight", wt);
    case TensorRole::kSharedUp:
      return linear(b + "ffn_up_shexp.weight", wt);
    case TensorRole::kSharedDown:
      return linear(b + "ffn_down_shexp.weight", wt);
    case TensorRole::kDenseGate:
      return linear(b + "ffn_gate.weight", wt);
    case TensorRole::kDenseUp:
      return linear(b + "ffn_up.weight", wt);
    case TensorRole::kDenseDown:
      return linear(b + "ffn_down.weight", wt);
    case TensorRole::kFinalNorm:
      return linear("output_norm.weight");
    case TensorRole::kLmHead:
      return linear("output.weight", wt);
    case TensorRole::kVision:
      return {};
  }
  return {};
}

}  // namespace herd
