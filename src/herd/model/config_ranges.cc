// Range checks of every numeric config.json field (called by finalize_config), so no value a
// file can hold makes later arithmetic trap (a zero patch_size divided by), overflow (a shape
// product) or silently compute garbage (rms_norm_eps -1 or rope_theta 0 make every logit NaN).
// Limits are generous (several times the largest released Llama 4) and only there so that
// shapes multiplied together stay far inside int64.
#include <cmath>
#include <string>

#include "herd/model/config.h"

namespace herd {

namespace {

constexpr int64_t kMaxWidth = int64_t(1) << 20;   // hidden sizes, head_dim, FFN widths
constexpr int64_t kMaxCount = int64_t(1) << 16;   // layers, heads, experts
constexpr int64_t kMaxTokens = int64_t(1) << 31;  // vocab, positions, chunk (int32 token ids)

struct Checker {
  const std::string& src;
  std::string section;  // "text_config." / "vision_config." / "" (flat text-only config)

  Status int_in(int64_t v, const char* name, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi)
      return make_error("{}: field '{}{}' is {}, expected an integer in [{}, {}]", src, section,
                        name, v, lo, hi);
    return Status::ok();
  }
  // Finite and > lo (or >= lo when `closed`), <= hi.
  Status real_in(double v, const char* name, double lo, bool closed, double hi) const {
    const bool ok = std::isfinite(v) && (closed ? v >= lo : v > lo) && v <= hi;
    if (!ok)
      return make_error("{}: field '{}{}' is {}, expected a finite number in {}{}, {}]", src,
                        section, name, v, closed ? "[" : "(", lo, hi);
    return Status::ok();
  }
  Status token_id(int64_t v, const char* name, int64_t vocab) const {
    if (v < 0 || v >= vocab)
      return make_error("{}: field '{}{}' is {}, outside the vocabulary [0, {}) of vocab_size", src,
                        section, name, v, vocab);
    return Status::ok();
  }
};

Status check_rope_scaling(const Checker& c, const RopeScaling& s) {
  Checker r{c.src, c.section + "rope_scaling."};
  HERD_TRY(r.real_in(s.factor, "factor", 0, false, 1e6));
  HERD_TRY(r.real_in(s.low_freq_factor, "low_freq_factor", 0, false, 1e6));
  HERD_TRY(r.real_in(s.high_freq_factor, "high_freq_factor", 0, false, 1e6));
  if (s.high_freq_factor < s.low_freq_factor)
    return make_error("{}: field '{}high_freq_factor' is {}, must be >= low_freq_factor {}", c.src,
                      r.section, s.high_freq_factor, s.low_freq_factor);
  return r.int_in(s.original_max_position_embeddings, "original_max_position_embeddings", 1,
                  kMaxTokens);
}

Status check_vision(const std::string& src, const Llama4VisionConfig& v) {
  Checker c{src, "vision_config."};
  HERD_TRY(c.int_in(v.hidden_size, "hidden_size", 1, kMaxWidth));
  HERD_TRY(c.int_in(v.num_hidden_layers, "num_hidden_layers", 0, kMaxCount));
  HERD_TRY(c.int_in(v.num_attention_heads, "num_attention_heads", 1, kMaxCount));
  HERD_TRY(c.int_in(v.intermediate_size, "intermediate_size", 1, kMaxWidth));
  HERD_TRY(c.int_in(v.image_size, "image_size", 1, 1 << 16));
  HERD_TRY(c.int_in(v.patch_size, "patch_size", 1, v.image_size));
  HERD_TRY(c.int_in(v.num_channels, "num_channels", 1, 16));
  // Pixel shuffle merges 1/r^2 patches into one; r above 1 or tiny makes no shape.
  HERD_TRY(c.real_in(v.pixel_shuffle_ratio, "pixel_shuffle_ratio", 1.0 / 64, true, 1));
  HERD_TRY(c.int_in(v.projector_input_dim, "projector_input_dim", 1, kMaxWidth));
  HERD_TRY(c.int_in(v.projector_output_dim, "projector_output_dim", 1, kMaxWidth));
  HERD_TRY(c.int_in(v.vision_output_dim, "vision_output_dim", 1, kMaxWidth));
  HERD_TRY(c.real_in(v.rope_theta, "rope_theta", 0, false, 1e30));
  return c.real_in(v.norm_eps, "norm_eps", 0, false, 1);
}

}  // namespace

Status check_config_ranges(const Llama4Config& cfg, const std::string& src) {
  const Llama4TextConfig& t = cfg.text;
  Checker c{src, cfg.multimodal ? "text_config." : ""};
  HERD_TRY(c.int_in(t.hidden_size, "hidden_size", 1, kMaxWidth));
  HERD_TRY(c.int_in(t.num_hidden_layers, "num_hidden_layers", 1, kMaxCount));
  HERD_TRY(c.int_in(t.num_attention_heads, "num_attention_heads", 1, kMaxCount));
  HERD_TRY(c.int_in(t.num_key_value_heads, "num_key_value_heads", 1, t.num_attention_heads));
  HERD_TRY(c.int_in(t.head_dim, "head_dim", 2, 1 << 14));
  HERD_TRY(c.int_in(t.vocab_size, "vocab_size", 1, kMaxTokens - 1));
  HERD_TRY(c.int_in(t.num_local_experts, "num_local_experts", 0, kMaxCount));
  HERD_TRY(c.int_in(t.intermediate_size, "intermediate_size", 1, kMaxWidth));
  HERD_TRY(c.int_in(t.intermediate_size_mlp, "intermediate_size_mlp", 0, kMaxWidth));
  HERD_TRY(c.int_in(t.interleave_moe_layer_step, "interleave_moe_layer_step", 1, kMaxCount));
  // 0 (or null, as transformers reads it) = no chunking.
  HERD_TRY(c.int_in(t.attention_chunk_size, "attention_chunk_size", 0, kMaxTokens));
  HERD_TRY(c.int_in(t.max_position_embeddings, "max_position_embeddings", 1, kMaxTokens));
  HERD_TRY(c.real_in(t.rope_theta, "rope_theta", 0, false, 1e30));
  HERD_TRY(c.real_in(t.rms_norm_eps, "rms_norm_eps", 0, false, 1));
  HERD_TRY(c.real_in(t.floor_scale, "floor_scale", 0, false, 1e30));
  HERD_TRY(c.real_in(t.attn_scale, "attn_scale", 0, true, 1e6));
  if (t.rope_scaling) HERD_TRY(check_rope_scaling(c, *t.rope_scaling));
  for (int64_t v : t.no_rope_layers)
    if (v != 0 && v != 1)
      return make_error("{}: field '{}no_rope_layers' holds {}, expected only 0 and 1", src,
                        c.section, v);
  for (int64_t id : t.bos_token_id) HERD_TRY(c.token_id(id, "bos_token_id", t.vocab_size));
  for (int64_t id : t.eos_token_id) HERD_TRY(c.token_id(id, "eos_token_id", t.vocab_size));
  if (t.pad_token_id) HERD_TRY(c.token_id(*t.pad_token_id, "pad_token_id", t.vocab_size));
  Checker top{src, ""};
  if (cfg.image_token_index)
    HERD_TRY(top.token_id(*cfg.image_token_index, "image_token_index", t.vocab_size));
  if (cfg.boi_token_index)
    HERD_TRY(top.token_id(*cfg.boi_token_index, "boi_token_index", t.vocab_size));
  if (cfg.eoi_token_index)
    HERD_TRY(top.token_id(*cfg.eoi_token_index, "eoi_token_index", t.vocab_size));
  if (cfg.vision) HERD_TRY(check_vision(src, *cfg.vision));
  return Status::ok();
}

}  // namespace herd
