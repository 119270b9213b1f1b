#include "herd/model/config.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "herd/base/mapped_file.h"
#include "herd/io/json_parse.h"
#include "herd/io/model_dir.h"

namespace herd {

using json = nlohmann::json;

namespace {

// Field readers that name the file and key on error instead of throwing json exceptions.
struct Reader {
  const json& j;
  std::string where;  // "config.json: text_config"

  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }

  Status int_field(const char* key, int64_t* out, bool required) const {
    if (!has(key)) {
      if (required) return make_error("{}: missing required field '{}'", where, key);
      return Status::ok();
    }
    return to_int(key, j[key], out);
  }
  // Integers beyond int64 (18446744073709551615 would wrap to -1) and floats that are not whole
  // numbers are refused with the value as written.
  Status to_int(const char* key, const json& v, int64_t* out) const {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
      return make_error("{}: field '{}' is {}, too large for an integer", where, key, v.dump());
    if (v.is_number_integer()) {
      *out = v.get<int64_t>();
      return Status::ok();
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!(d >= -9.2e18 && d <= 9.2e18) || d != std::trunc(d))
        return make_error("{}: field '{}' is {}, expected an integer", where, key, v.dump());
      *out = int64_t(d);
      return Status::ok();
    }
    return make_error("{}: field '{}' must be an integer, got {}", where, key, v.dump());
  }
  Status string_field(const char* key, std::string* out) const {
    if (!has(key)) return Status::ok();
    if (!j[key].is_string())
      return make_error("{}: field '{}' must be a string, got {}", where, key, j[key].dump());
    *out = j[key].get<std::string>();
    return Status::ok();
  }
  Status num_field(const char* key, double* out, bool required) const {
    if (!has(key)) {
      if (required) return make_error("{}: missing required field '{}'", where, key);
      return Status::ok();
    }
    if (!j[key].is_number())
      return make_error("{}: field '{}' must be a number, got {}", where, key, j[key].dump());
    *out = j[key].get<double>();
    return Status::ok();
  }
  // Booleans may be written as integers (Scout's attn_temperature_tuning is 4): truthy.
  Status bool_field(const char* key, bool* out) const {
    if (!has(key)) return Status::ok();
    const json& v = j[key];
    if (v.is_boolean())
      *out = v.get<bool>();
    else if (v.is_number())
      *out = v.get<double>() != 0;
    else
      return make_error("{}: field '{}' must be a boolean, got {}", where, key, v.dump());
    return Status::ok();
  }
  Status int_list(const char* key, std::vector<int64_t>* out) const {
    if (!has(key)) return Status::ok();
    const json& v = j[key];
    out->clear();
    int64_t x = 0;
    if (v.is_number_integer()) {
      HERD_TRY(to_int(key, v, &x));
      out->push_back(x);
      return Status::ok();
    }
    if (!v.is_array()) return make_error("{}: field '{}' must be a list of integers", where, key);
    for (const auto& e : v) {
      if (!e.is_number_integer())
        return make_error("{}: field '{}' must be a list of integers, got {}", where, key,
                          e.dump());
      HERD_TRY(to_int(key, e, &x));
      out->push_back(x);
    }
    return Status::ok();
  }
};

Status parse_rope(const Reader& r, Llama4TextConfig& t) {
  // transformers <= 4.5x: rope_scaling + rope_theta; newer: rope_parameters with both inside.
  const json* rp = nullptr;
  if (r.has("rope_parameters"))
    rp = &r.j["rope_parameters"];
  else if (r.has("rope_scaling"))
    rp = &r.j["rope_scaling"];
  HERD_TRY(r.num_field("rope_theta", &t.rope_theta, false));
  if (!rp) return Status::ok();
  if (!rp->is_object()) return make_error("{}: rope_scaling must be an object", r.where);
  Reader rr{*rp, r.where + ": rope_scaling"};
  HERD_TRY(rr.num_field("rope_theta", &t.rope_theta, false));
  std::string type = "default";
  HERD_TRY(rr.string_field(rr.has("rope_type") ? "rope_type" : "type", &type));
  if (type == "default") return Status::ok();
  if (type != "llama3")
    return make_error("{}: unsupported rope_type '{}' (Llama 4 uses llama3 or none)", rr.where,
                      type);
  RopeScaling s;
  double v = 0;
  HERD_TRY(rr.num_field("factor", &v, true));
  s.factor = float(v);
  HERD_TRY(rr.num_field("low_freq_factor", &v, true));
  s.low_freq_factor = float(v);
  HERD_TRY(rr.num_field("high_freq_factor", &v, true));
  s.high_freq_factor = float(v);
  HERD_TRY(
      rr.int_field("original_max_position_embeddings", &s.original_max_position_embeddings, true));
  t.rope_scaling = s;  // ranges: check_config_ranges (config_ranges.cc)
  return Status::ok();
}

Status parse_text(const Reader& r, Llama4TextConfig& t) {
  HERD_TRY(r.int_field("hidden_size", &t.hidden_size, true));
  HERD_TRY(r.int_field("num_hidden_layers", &t.num_hidden_layers, true));
  HERD_TRY(r.int_field("num_attention_heads", &t.num_attention_heads, true));
  HERD_TRY(r.int_field("num_key_value_heads", &t.num_key_value_heads, true));
  t.head_dim = t.num_attention_heads > 0 ? t.hidden_size / t.num_attention_heads : 0;
  HERD_TRY(r.int_field("head_dim", &t.head_dim, false));
  HERD_TRY(r.int_field("vocab_size", &t.vocab_size, true));
  HERD_TRY(r.int_field("num_local_experts", &t.num_local_experts, true));
  HERD_TRY(r.int_field("num_experts_per_tok", &t.num_experts_per_tok, false));
  HERD_TRY(r.int_field("intermediate_size", &t.intermediate_size, true));
  HERD_TRY(r.int_field("intermediate_size_mlp", &t.intermediate_size_mlp, false));
  HERD_TRY(r.int_field("interleave_moe_layer_step", &t.interleave_moe_layer_step, false));
  HERD_TRY(r.int_list("moe_layers", &t.moe_layers));
  HERD_TRY(r.int_list("no_rope_layers", &t.no_rope_layers));
  if (r.has("layer_types") && t.no_rope_layers.empty()) {
    // Newer configs: "chunked_attention" = RoPE layer, "full_attention" = NoPE layer.
    for (const auto& e : r.j["layer_types"]) {
      if (!e.is_string()) return make_error("{}: layer_types must be strings", r.where);
      t.no_rope_layers.push_back(e.get<std::string>() == "full_attention" ? 0 : 1);
    }
  }
  HERD_TRY(r.int_field("attention_chunk_size", &t.attention_chunk_size, false));
  HERD_TRY(parse_rope(r, t));
  HERD_TRY(r.int_field("max_position_embeddings", &t.max_position_embeddings, false));
  HERD_TRY(r.num_field("rms_norm_eps", &t.rms_norm_eps, false));
  HERD_TRY(r.bool_field("use_qk_norm", &t.use_qk_norm));
  t.attn_temperature_tuning = true;  // HF default when absent (HF-CFG)
  HERD_TRY(r.bool_field("attn_temperature_tuning", &t.attn_temperature_tuning));
  HERD_TRY(r.num_field("floor_scale", &t.floor_scale, false));
  HERD_TRY(r.num_field("attn_scale", &t.attn_scale, false));
  HERD_TRY(r.bool_field("attention_bias", &t.attention_bias));
  HERD_TRY(r.bool_field("tie_word_embeddings", &t.tie_word_embeddings));
  HERD_TRY(r.string_field("hidden_act", &t.hidden_act));
  HERD_TRY(r.int_list("bos_token_id", &t.bos_token_id));
  HERD_TRY(r.int_list("eos_token_id", &t.eos_token_id));
  if (r.has("pad_token_id")) {
    int64_t p = 0;
    HERD_TRY(r.int_field("pad_token_id", &p, false));
    t.pad_token_id = p;
  }
  return Status::ok();
}

Status parse_vision(const Reader& r, Llama4VisionConfig& v) {
  HERD_TRY(r.int_field("hidden_size", &v.hidden_size, true));
  HERD_TRY(r.int_field("num_hidden_layers", &v.num_hidden_layers, true));
  HERD_TRY(r.int_field("num_attention_heads", &v.num_attention_heads, true));
  HERD_TRY(r.int_field("intermediate_size", &v.intermediate_size, true));
  HERD_TRY(r.int_field("image_size", &v.image_size, true));
  HERD_TRY(r.int_field("patch_size", &v.patch_size, true));
  HERD_TRY(r.int_field("num_channels", &v.num_channels, false));
  HERD_TRY(r.num_field("pixel_shuffle_ratio", &v.pixel_shuffle_ratio, true));
  HERD_TRY(r.int_field("projector_input_dim", &v.projector_input_dim, true));
  HERD_TRY(r.int_field("projector_output_dim", &v.projector_output_dim, true));
  HERD_TRY(r.int_field("vision_output_dim", &v.vision_output_dim, true));
  HERD_TRY(r.num_field("rope_theta", &v.rope_theta, false));
  HERD_TRY(r.num_field("norm_eps", &v.norm_eps, false));
  HERD_TRY(r.bool_field("multi_modal_projector_bias", &v.multi_modal_projector_bias));
  return Status::ok();
}

}  // namespace

Status finalize_config(Llama4Config& cfg, const std::string& src) {
  HERD_TRY(check_config_ranges(cfg, src));
  Llama4TextConfig& t = cfg.text;
  auto positive = [&](int64_t v, const char* name) -> Status {
    if (v <= 0) return make_error("{}: field '{}' must be positive, got {}", src, name, v);
    return Status::ok();
  };
  HERD_TRY(positive(t.hidden_size, "hidden_size"));
  HERD_TRY(positive(t.num_hidden_layers, "num_hidden_layers"));
  HERD_TRY(positive(t.num_attention_heads, "num_attention_heads"));
  HERD_TRY(positive(t.num_key_value_heads, "num_key_value_heads"));
  HERD_TRY(positive(t.head_dim, "head_dim"));
  HERD_TRY(positive(t.vocab_size, "vocab_size"));
  HERD_TRY(positive(t.intermediate_size, "intermediate_size"));
  HERD_TRY(positive(t.interleave_moe_layer_step, "interleave_moe_layer_step"));
  if (t.num_attention_heads % t.num_key_value_heads != 0)
    return make_error("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", src,
                      t.num_attention_heads, t.num_key_value_heads);
  if (t.head_dim % 2 != 0)
    return make_error("{}: head_dim {} must be even (RoPE)", src, t.head_dim);
  if (t.num_experts_per_tok != 1)
    return make_error("{}: num_experts_per_tok {} not supported (Llama 4 routes top-1)", src,
                      t.num_experts_per_tok);
  if (t.hidden_act != "silu")
    return make_error("{}: hidden_act '{}' not supported (Llama 4 uses silu)", src, t.hidden_act);
  if (t.attention_bias) return make_error("{}: attention_bias=true is not Llama 4", src);
  const int64_t L = t.num_hidden_layers;
  if (!t.no_rope_layers.empty() && int64_t(t.no_rope_layers.size()) != L)
    return make_error("{}: no_rope_layers has {} entries, num_hidden_layers is {}", src,
                      t.no_rope_layers.size(), L);
  for (int64_t m : t.moe_layers)
    if (m < 0 || m >= L) return make_error("{}: moe_layers entry {} out of range", src, m);
  t.layers.assign(size_t(L), LayerKind{});
  bool any_dense = false, any_moe = false;
  for (int64_t i = 0; i < L; ++i) {
    LayerKind& k = t.layers[size_t(i)];
    if (!t.moe_layers.empty() || t.interleave_moe_layer_step <= 0) {
      k.moe = std::find(t.moe_layers.begin(), t.moe_layers.end(), i) != t.moe_layers.end();
    } else {
      k.moe = (i + 1) % t.interleave_moe_layer_step == 0;
    }
    if (!t.no_rope_layers.empty())
      k.rope = t.no_rope_layers[size_t(i)] != 0;
    else
      k.rope = (i + 1) % 4 != 0;  // HF-CFG no_rope_layer_interval default 4
    k.chunked = k.rope && t.attention_chunk_size > 0;
    k.qk_norm = t.use_qk_norm && k.rope;
    k.temp_tuning = t.attn_temperature_tuning && !k.rope;
    any_dense |= !k.moe;
    any_moe |= k.moe;
  }
  if (any_moe) HERD_TRY(positive(t.num_local_experts, "num_local_experts"));
  if (any_dense) HERD_TRY(positive(t.intermediate_size_mlp, "intermediate_size_mlp"));
  return Status::ok();
}

Result<Llama4Config> parse_config(const std::string& text, const std::string& src) {
  HERD_ASSIGN_OR_RETURN(json j, parse_json(text, src));
  if (!j.is_object()) return make_error("{}: top level must be an object", src);
  Llama4Config cfg;
  try {
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
      cfg.architecture = j["architectures"][0].get<std::string>();
    std::string model_type = j.value("model_type", "");
    if (cfg.architecture.empty()) {
      if (model_type == "llama4")
        cfg.architecture = "Llama4ForConditionalGeneration";
      else if (model_type == "llama4_text")
        cfg.architecture = "Llama4ForCausalLM";
    }
    if (cfg.architecture == "Llama4ForConditionalGeneration") {
      cfg.multimodal = true;
      if (!j.contains("text_config") || !j["text_config"].is_object())
        return make_error("{}: missing required object 'text_config'", src);
      HERD_TRY(parse_text(Reader{j["text_config"], src + ": text_config"}, cfg.text));
      if (j.contains("vision_config") && j["vision_config"].is_object()) {
        Llama4VisionConfig v;
        HERD_TRY(parse_vision(Reader{j["vision_config"], src + ": vision_config"}, v));
        cfg.vision = v;
      }
      Reader top{j, src};
      int64_t id = 0;
      if (top.has("image_token_index")) {
        HERD_TRY(top.int_field("image_token_index", &id, false));
        cfg.image_token_index = id;
      }
      if (top.has("boi_token_index")) {
        HERD_TRY(top.int_field("boi_token_index", &id, false));
        cfg.boi_token_index = id;
      }
      if (top.has("eoi_token_index")) {
        HERD_TRY(top.int_field("eoi_token_index", &id, false));
        cfg.eoi_token_index = id;
      }
      // Token ids may be given at top level only.
      Reader tr{j["text_config"], ""};
      if (cfg.text.bos_token_id.empty())
        HERD_TRY(top.int_list("bos_token_id", &cfg.text.bos_token_id));
      if (cfg.text.eos_token_id.empty())
        HERD_TRY(top.int_list("eos_token_id", &cfg.text.eos_token_id));
      if (!cfg.text.pad_token_id && top.has("pad_token_id")) {
        HERD_TRY(top.int_field("pad_token_id", &id, false));
        cfg.text.pad_token_id = id;
      }
    } else if (cfg.architecture == "Llama4ForCausalLM") {
      cfg.multimodal = false;
      HERD_TRY(parse_text(Reader{j, src}, cfg.text));
    } else {
      return make_error(
          "{}: unsupported architecture '{}' (expected Llama4ForConditionalGeneration or "
          "Llama4ForCausalLM)",
          src, cfg.architecture.empty() ? model_type : cfg.architecture);
    }
    if (j.contains("torch_dtype") && j["torch_dtype"].is_string())
      cfg.torch_dtype = j["torch_dtype"].get<std::string>();
    else if (j.contains("dtype") && j["dtype"].is_string())
      cfg.torch_dtype = j["dtype"].get<std::string>();
    if (j.contains("quantization_config")) cfg.quantization_json = j["quantization_config"].dump();
  } catch (const json::exception& e) {
    return make_error("{}: unexpected value type: {}", src, e.what());
  }
  HERD_TRY(finalize_config(cfg, src));
  return cfg;
}

Result<Llama4Config> load_config(const std::string& dir) {
  HERD_TRY(check_model_dir(dir));
  std::string path = (std::filesystem::path(dir) / "config.json").string();
  // path_present, not exists: a FIFO, directory or symlink loop named config.json is opened
  // (and refused with what it is) rather than reported missing.
  if (!path_present(path)) return make_error("{}: no config.json in the model directory", dir);
  HERD_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_config(text, path);
}

namespace {
json text_to_json(const Llama4TextConfig& t) {
  json j;
  j["hidden_size"] = t.hidden_size;
  j["num_hidden_layers"] = t.num_hidden_layers;
  j["num_attention_heads"] = t.num_attention_heads;
  j["num_key_value_heads"] = t.num_key_value_heads;
  j["head_dim"] = t.head_dim;
  j["vocab_size"] = t.vocab_size;
  j["num_local_experts"] = t.num_local_experts;
  j["num_experts_per_tok"] = t.num_experts_per_tok;
  j["intermediate_size"] = t.intermediate_size;
  j["intermediate_size_mlp"] = t.intermediate_size_mlp;
  j["interleave_moe_layer_step"] = t.interleave_moe_layer_step;
  j["moe_layers"] = t.moe_layers;
  j["no_rope_layers"] = t.no_rope_layers;
  j["attention_chunk_size"] = t.attention_chunk_size;
  j["rope_theta"] = t.rope_theta;
  if (t.rope_scaling) {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", t.rope_scaling->factor},
        {"low_freq_factor", t.rope_scaling->low_freq_factor},
        {"high_freq_factor", t.rope_scaling->high_freq_factor},
        {"original_max_position_embeddings", t.rope_scaling->original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["max_position_embeddings"] = t.max_position_embeddings;
  j["rms_norm_eps"] = t.rms_norm_eps;
  j["use_qk_norm"] = t.use_qk_norm;
  j["attn_temperature_tuning"] = t.attn_temperature_tuning;
  j["floor_scale"] = t.floor_scale;
  j["attn_scale"] = t.attn_scale;
  j["attention_bias"] = t.attention_bias;
  j["hidden_act"] = t.hidden_act;
  j["tie_word_embeddings"] = t.tie_word_embeddings;
  auto ids = [](const std::vector<int64_t>& v) -> json {
    if (v.size() == 1) return v[0];
    return v;
  };
  if (!t.bos_token_id.empty()) j["bos_token_id"] = ids(t.bos_token_id);
  if (!t.eos_token_id.empty()) j["eos_token_id"] = ids(t.eos_token_id);
  if (t.pad_token_id) j["pad_token_id"] = *t.pad_token_id;
  j["model_type"] = "llama4_text";
  j["router_aux_loss_coef"] = 0.001;
  j["router_jitter_noise"] = 0.0;
  j["output_router_logits"] = false;
  j["initializer_range"] = 0.02;
  j["for_llm_compressor"] = false;
  j["cache_implementation"] = "hybrid";
  return j;
}
}  // namespace

std::string config_to_json(const Llama4Config& cfg) {
  json j;
  if (cfg.multimodal) {
    j["architectures"] = {"Llama4ForConditionalGeneration"};
    j["model_type"] = "llama4";
    j["text_config"] = text_to_json(cfg.text);
    if (cfg.vision) {
      const auto& v = *cfg.vision;
      j["vision_config"] = {{"hidden_size", v.hidden_size},
                            {"num_hidden_layers", v.num_hidden_layers},
                            {"num_attention_heads", v.num_attention_heads},
                            {"intermediate_size", v.intermediate_size},
                            {"image_size", v.image_size},
                            {"patch_size", v.patch_size},
                            {"num_channels", v.num_channels},
                            {"pixel_shuffle_ratio", v.pixel_shuffle_ratio},
                            {"projector_input_dim", v.projector_input_dim},
                            {"projector_output_dim", v.projector_output_dim},
                            {"vision_output_dim", v.vision_output_dim},
                            {"rope_theta", v.rope_theta},
                            {"norm_eps", v.norm_eps},
                            {"hidden_act", "gelu"},
                            {"multi_modal_projector_bias", v.multi_modal_projector_bias},
                            {"vision_feature_layer", -1},
                            {"vision_feature_select_strategy", "default"},
                            {"model_type", "llama4_vision_model"}};
    }
    if (cfg.image_token_index) j["image_token_index"] = *cfg.image_token_index;
    if (cfg.boi_token_index) j["boi_token_index"] = *cfg.boi_token_index;
    if (cfg.eoi_token_index) j["eoi_token_index"] = *cfg.eoi_token_index;
    j["tie_word_embeddings"] = false;
  } else {
    j = text_to_json(cfg.text);
    j["architectures"] = {"Llama4ForCausalLM"};
  }
  j["torch_dtype"] = cfg.torch_dtype;
  j["transformers_version"] = "4.51.0";
  if (!cfg.quantization_json.empty()) j["quantization_config"] = json::parse(cfg.quantization_json);
  return j.dump(2) + "\n";
}

Result<GenerationConfig> load_generation_config(const std::string& dir) {
  std::string path = (std::filesystem::path(dir) / "generation_config.json").string();
  if (!path_present(path)) return GenerationConfig{};
  HERD_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_generation_config(text, path);
}

Result<GenerationConfig> parse_generation_config(const std::string& text, const std::string& path) {
  GenerationConfig g;
  HERD_ASSIGN_OR_RETURN(json j, parse_json(text, path));
  if (!j.is_object()) return make_error("{}: not a JSON object", path);
  Reader r{j, path};
  double d = 0;
  if (r.has("temperature")) {
    HERD_TRY(r.num_field("temperature", &d, false));
    g.temperature = float(d);
  }
  if (r.has("top_p")) {
    HERD_TRY(r.num_field("top_p", &d, false));
    g.top_p = float(d);
  }
  if (r.has("min_p")) {
    HERD_TRY(r.num_field("min_p", &d, false));
    g.min_p = float(d);
  }
  int64_t i = 0;
  if (r.has("top_k")) {
    HERD_TRY(r.int_field("top_k", &i, false));
    g.top_k = int(i);
  }
  if (r.has("do_sample")) {
    bool b = false;
    HERD_TRY(r.bool_field("do_sample", &b));
    g.do_sample = b;
  }
  HERD_TRY(r.int_list("eos_token_id", &g.eos_token_id));
  if (r.has("bos_token_id")) {
    HERD_TRY(r.int_field("bos_token_id", &i, false));
    g.bos_token_id = i;
  }
  if (r.has("pad_token_id")) {
    HERD_TRY(r.int_field("pad_token_id", &i, false));
    g.pad_token_id = i;
  }
  return g;
}

std::vector<float> llama3_rope_factors(const Llama4TextConfig& t) {
  if (!t.rope_scaling) return {};
  const RopeScaling& s = *t.rope_scaling;
  const int64_t dim = t.head_dim;
  // float32 throughout, as torch computes it in the converter (generate_extra_tensors).
  const float old_ctx = float(s.original_max_position_embeddings);
  const float low_wavelen = old_ctx / s.low_freq_factor;
  const float high_wavelen = old_ctx / s.high_freq_factor;
  std::vector<float> out;
  for (int64_t j = 0; j < dim; j += 2) {
    const float freq = 1.0f / std::pow(float(t.rope_theta), float(j) / float(dim));
    const float wavelen = 2.0f * float(M_PI) / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(s.factor);
    } else {
      const float smooth =
          (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      out.push_back(1.0f / ((1.0f - smooth) / s.factor + smooth));
    }
  }
  return out;
}

}  // namespace herd
