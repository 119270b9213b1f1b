// `herd synth` presets and the config they produce (writing is in synth_write.cc).
#include "herd/convert/synth.h"

#include <algorithm>
#include <cmath>

#include "herd/convert/synth_tokenizer.h"

namespace herd {

namespace {

struct Preset {
  const char* name;
  int64_t hidden, layers, heads, kv_heads, head_dim, experts, inter, inter_mlp, step;
  int64_t vocab;  // 0 = the tokenizer's size
  bool qk_norm, rope_scaling;
  int default_shards;
};

// See synth.h for what each preset is for.
constexpr Preset kPresets[] = {
    {"tiny", 64, 4, 4, 2, 16, 4, 64, 128, 1, 0, true, true, 2},
    {"tiny-interleaved", 64, 4, 4, 2, 16, 128, 16, 128, 2, 0, false, false, 1},
    {"small", 256, 12, 4, 2, 64, 16, 256, 512, 1, 202048, true, true, 1},
    {"bench", 1024, 16, 8, 2, 128, 16, 1024, 2048, 1, 32768, true, true, 2},
};

const Preset* find_preset(const std::string& name) {
  for (const Preset& p : kPresets)
    if (name == p.name) return &p;
  return nullptr;
}

// A vision tower much smaller than the real one (1408 wide, 34 layers) but with the real image
// and patch size, so preprocessing and token counts (144 per tile) are the released ones.
Llama4VisionConfig small_vision() {
  Llama4VisionConfig v;
  v.hidden_size = 32;
  v.num_hidden_layers = 2;
  v.num_attention_heads = 2;
  v.intermediate_size = 128;  // = hidden / ratio^2, the pixel-shuffled width (5632 in the real one)
  v.image_size = 336;
  v.patch_size = 14;
  v.num_channels = 3;
  v.pixel_shuffle_ratio = 0.5;
  v.projector_input_dim = 64;
  v.projector_output_dim = 64;
  v.vision_output_dim = 64;  // must equal projector_output_dim (projector input)
  v.rope_theta = 10000.0;
  v.norm_eps = 1e-5;
  return v;
}

// The released encoder's widths (spec §1.1, §2.1): its cost per tile is the real one.
Llama4VisionConfig real_vision() {
  Llama4VisionConfig v = small_vision();
  v.hidden_size = 1408;
  v.num_hidden_layers = 34;
  v.num_attention_heads = 16;
  v.intermediate_size = 5632;
  v.projector_input_dim = 4096;
  v.projector_output_dim = 4096;
  v.vision_output_dim = 4096;
  return v;
}

}  // namespace

Result<Llama4VisionConfig> synth_vision_config(const std::string& width) {
  if (width == "small") return small_vision();
  if (width == "real") return real_vision();
  // A number: the small tower at that width with heads of the real head dim 88, so the 2-D
  // RoPE has the released geometry (22 frequencies per axis) at a fraction of the cost.
  int64_t d = 0;
  const bool digits = !width.empty() && width.size() <= 6 &&
                      width.find_first_not_of("0123456789") == std::string::npos;
  if (digits) d = std::stoll(width);
  if (d <= 0 || d % 88 != 0)
    return make_error("synth: --vision-width '{}' (expected small, real or a multiple of 88)",
                      width);
  Llama4VisionConfig v = small_vision();
  v.hidden_size = d;
  v.num_attention_heads = d / 88;
  v.intermediate_size = 4 * d;  // = the pixel-shuffled width
  return v;
}

std::vector<std::string> synth_preset_names() {
  std::vector<std::string> out;
  for (const Preset& p : kPresets) out.push_back(p.name);
  return out;
}

int synth_default_shards(const std::string& preset) {
  const Preset* p = find_preset(preset);
  return p ? p->default_shards : 1;
}

Result<Llama4Config> synth_config(const SynthOptions& opt) {
  const Preset* p = find_preset(opt.preset);
  if (!p) return make_error("synth: unknown preset '{}'", opt.preset);
  SpecialTokenIds ids = fallback_special_ids();
  if (!opt.tokenizer_dir.empty()) {
    HERD_ASSIGN_OR_RETURN(ids, special_ids_from_tokenizer_dir(opt.tokenizer_dir));
  }
  Llama4Config cfg;
  cfg.multimodal = !opt.text_only;
  cfg.architecture = cfg.multimodal ? "Llama4ForConditionalGeneration" : "Llama4ForCausalLM";
  cfg.torch_dtype = "bfloat16";
  Llama4TextConfig& t = cfg.text;
  t.hidden_size = opt.hidden.value_or(p->hidden);
  t.head_dim = opt.head_dim.value_or(p->head_dim);
  if (t.head_dim <= 0 || t.hidden_size <= 0 || t.hidden_size % t.head_dim != 0)
    return make_error("synth: --hidden {} must be a positive multiple of head_dim {}",
                      t.hidden_size, t.head_dim);
  // Keep head_dim and the GQA ratio of the preset; q_dim = hidden as in the released models.
  const int64_t gqa = p->heads / p->kv_heads;
  t.num_attention_heads = t.hidden_size / t.head_dim;
  t.num_key_value_heads = std::max<int64_t>(1, t.num_attention_heads / gqa);
  if (t.num_attention_heads % t.num_key_value_heads != 0) t.num_key_value_heads = 1;
  t.num_hidden_layers = opt.layers.value_or(p->layers);
  if (t.num_hidden_layers <= 0) return make_error("synth: --layers must be positive");
  t.num_local_experts = opt.experts.value_or(p->experts);
  if (t.num_local_experts <= 0) return make_error("synth: --experts must be positive");
  t.num_experts_per_tok = 1;
  t.intermediate_size = p->inter;
  t.intermediate_size_mlp = p->inter_mlp;
  t.interleave_moe_layer_step = p->step;
  t.moe_layers.clear();
  t.no_rope_layers.clear();
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    if ((i + 1) % p->step == 0) t.moe_layers.push_back(i);  // HF-CFG's derivation
    t.no_rope_layers.push_back((i + 1) % 4 != 0 ? 1 : 0);   // every 4th layer NoPE
  }
  t.attention_chunk_size = opt.attention_chunk_size.value_or(8192);
  t.rope_theta = 500000.0;
  if (p->rope_scaling) t.rope_scaling = RopeScaling{16.0f, 1.0f, 1.0f, 8192};
  t.max_position_embeddings = 262144;
  t.rms_norm_eps = 1e-5;
  t.use_qk_norm = p->qk_norm;
  t.attn_temperature_tuning = true;
  t.floor_scale = opt.floor_scale.value_or(8192);
  t.attn_scale = 0.1;
  t.tie_word_embeddings = false;
  t.vocab_size = std::max(p->vocab, ids.vocab_size);
  if (opt.vocab) {
    if (*opt.vocab < ids.vocab_size)
      return make_error("synth: --vocab {} is smaller than the tokenizer ({} tokens)", *opt.vocab,
                        ids.vocab_size);
    t.vocab_size = *opt.vocab;
  }
  t.bos_token_id = {ids.bos};
  t.eos_token_id = ids.eos();
  if (ids.pad >= 0) t.pad_token_id = ids.pad;
  if (opt.text_only && (opt.vision_width != "small" || opt.vision_layers))
    return make_error(
        "synth: --vision-width and --vision-layers need a vision tower (not with "
        "--text-only)");
  if (cfg.multimodal) {
    HERD_ASSIGN_OR_RETURN(cfg.vision, synth_vision_config(opt.vision_width));
    if (opt.vision_layers) {
      if (*opt.vision_layers <= 0) return make_error("synth: --vision-layers must be positive");
      cfg.vision->num_hidden_layers = *opt.vision_layers;
    }
    cfg.image_token_index = ids.patch;
    cfg.boi_token_index = ids.image_start;
    cfg.eoi_token_index = ids.image_end;
  }
  HERD_TRY(finalize_config(cfg, "synth"));
  return cfg;
}

std::pair<double, double> synth_init(const TensorSpec& spec, const Llama4Config& cfg) {
  const double H = double(cfg.text.hidden_size);
  const double fan_in = spec.shape.size() >= 2 ? double(spec.shape[1]) : 1.0;
  switch (spec.role) {
    case TensorRole::kEmbedding:
      return {0.0, kSynthEmbedStd};
    case TensorRole::kAttnNorm:
    case TensorRole::kFfnNorm:
    case TensorRole::kFinalNorm:
      return {1.0, kSynthNormNoise};
    case TensorRole::kRouter:
      return {0.0, kSynthRouterGain / std::sqrt(H)};
    case TensorRole::kLmHead:
      return {0.0, kSynthLogitStd / std::sqrt(H)};
    case TensorRole::kVision: {
      const std::string& n = spec.name;
      const bool norm = n.find("layernorm") != std::string::npos;
      if (spec.shape.size() == 1 && norm && n.ends_with(".weight")) return {1.0, kSynthNormNoise};
      if (spec.shape.size() == 1 || n.ends_with("positional_embedding_vlm"))
        return {0.0, kSynthVisionSmallStd};
      return {0.0, kSynthLinearGain / std::sqrt(fan_in)};
    }
    case TensorRole::kAttnO:
    case TensorRole::kExpertsDown:
    case TensorRole::kSharedDown:
    case TensorRole::kDenseDown: {
      // Projections back into the residual stream are scaled by 1/sqrt(2L) (GPT-2's scaled
      // init): each layer adds a modest update to the stream, as in trained models, instead of
      // every layer replacing it — which made random models chaotic, so that rounding noise
      // flipped router choices and final tokens far more than it does in real checkpoints.
      const double L = double(std::max<int64_t>(cfg.text.num_hidden_layers, 1));
      return {0.0, kSynthLinearGain / std::sqrt(fan_in) / std::sqrt(2.0 * L)};
    }
    default:
      // Every other tensor is a projection whose input dimension is shape[1]: [out, in] for
      // nn.Linear, [E, in, out] for the fused experts.
      return {0.0, kSynthLinearGain / std::sqrt(fan_in)};
  }
}

}  // namespace herd
