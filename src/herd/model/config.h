// Llama4Config: config.json's own field names, text and vision apart (spec §1). Which layers
// are MoE / NoPE / chunked is computed once here (layer_kind), never re-derived in kernels.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "herd/base/status.h"
#include "herd/ops/rope.h"  // RopeScaling

namespace herd {

struct LayerKind {
  bool moe = false;          // routed experts + shared expert, else dense MLP
  bool rope = true;          // RoPE + chunked local attention; false = NoPE global layer
  bool chunked = false;      // rope && attention_chunk_size set
  bool qk_norm = false;      // use_qk_norm && rope
  bool temp_tuning = false;  // attn_temperature_tuning && !rope
};

struct Llama4TextConfig {
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t num_local_experts = 0;
  int64_t num_experts_per_tok = 1;
  int64_t intermediate_size = 0;      // routed and shared expert width
  int64_t intermediate_size_mlp = 0;  // dense FFN width
  int64_t interleave_moe_layer_step = 1;
  std::vector<int64_t> moe_layers;
  std::vector<int64_t> no_rope_layers;  // 1 = layer USES rope (inverted name, spec §1.2)
  int64_t attention_chunk_size = 0;     // 0 = no chunking
  double rope_theta = 500000.0;
  std::optional<RopeScaling> rope_scaling;
  int64_t max_position_embeddings = 4096 * 32;  // transformers' default when absent
  double rms_norm_eps = 1e-5;
  bool use_qk_norm = false;
  bool attn_temperature_tuning = false;
  double floor_scale = 8192;
  double attn_scale = 0.1;
  bool attention_bias = false;
  bool tie_word_embeddings = false;
  std::string hidden_act = "silu";
  std::vector<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_id;
  std::optional<int64_t> pad_token_id;

  std::vector<LayerKind> layers;  // filled by finalize()

  const LayerKind& layer_kind(int64_t i) const { return layers[size_t(i)]; }
  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
};

struct Llama4VisionConfig {
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t image_size = 0;
  int64_t patch_size = 0;
  int64_t num_channels = 3;
  double pixel_shuffle_ratio = 0.5;
  int64_t projector_input_dim = 0;
  int64_t projector_output_dim = 0;
  int64_t vision_output_dim = 0;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  bool multi_modal_projector_bias = false;
};

struct Llama4Config {
  // "Llama4ForConditionalGeneration" (nested, with vision) or "Llama4ForCausalLM" (flat, text).
  std::string architecture;
  bool multimodal = false;
  std::string torch_dtype = "bfloat16";
  Llama4TextConfig text;
  std::optional<Llama4VisionConfig> vision;
  std::optional<int64_t> image_token_index, boi_token_index, eoi_token_index;
  std::string quantization_json;  // raw `quantization_config`, if any (FP8 checkpoints)

  // Tensor name prefix of the text model: "language_model." for nested checkpoints, "" for flat.
  std::string text_prefix() const { return multimodal ? "language_model." : ""; }
};

// Parses config.json text. `source` names the file in error messages.
Result<Llama4Config> parse_config(const std::string& json_text, const std::string& source);
Result<Llama4Config> load_config(const std::string& model_dir);
// Fills derived per-layer facts (spec §1.2) and checks consistency.
Status finalize_config(Llama4Config& cfg, const std::string& source);
// Every numeric field within its range (config_ranges.cc); errors name `source`, the field and
// its value. Called by finalize_config.
Status check_config_ranges(const Llama4Config& cfg, const std::string& source);
// GGUF's rope_freqs: per rotary pair j, the divisor llama.cpp applies to the frequency
// (inv_freq_scaled = inv_freq / factor[j]), computed in float32 like its converter. Empty when
// the config has no llama3 rope scaling. (The exporter writes it; the GGUF loader checks it.)
std::vector<float> llama3_rope_factors(const Llama4TextConfig& cfg);
// Serializes with the released key spelling (used by `herd synth`).
std::string config_to_json(const Llama4Config& cfg);

// generation_config.json: sampling defaults and stop ids (all optional).
struct GenerationConfig {
  std::optional<float> temperature, top_p, min_p;
  std::optional<int> top_k;
  std::optional<bool> do_sample;
  std::vector<int64_t> eos_token_id;
  std::optional<int64_t> bos_token_id, pad_token_id;
};
Result<GenerationConfig> load_generation_config(const std::string& model_dir);  // absent = {}
Result<GenerationConfig> parse_generation_config(const std::string& json_text,
                                                 const std::string& source);

}  // namespace herd
