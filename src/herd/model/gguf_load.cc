// load_gguf_model: llama4 GGUF -> LoadedModel views (see gguf_load.h for the layout mapping).
#include "herd/model/gguf_load.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "herd/base/log.h"
#include "herd/quant/gguf_blocks.h"

namespace herd {
namespace {

using gguf::Files;
using gguf::TensorInfo;
using gguf::Value;

// llama.cpp's llama4 literals (src/models/llama4.cpp, load_arch_hparams).
constexpr int64_t kCppChunk = 8192;
constexpr int64_t kCppNoRopeStep = 4;
constexpr double kCppFloorScale = 8192;
constexpr double kCppAttnScale = 0.1;
constexpr int64_t kCppNoQkNormExperts = 128;

Result<int64_t> get_int(const Files& f, const std::string& key, std::optional<int64_t> fallback) {
  const Value* v = f.find(key);
  if (!v) {
    if (fallback) return *fallback;
    return make_error("{}: GGUF key {} is missing", f.path(), key);
  }
  int64_t out = 0;
  if (!v->get_int(&out))
    return make_error("{}: GGUF key {} must be an integer, got {}", f.path(), key, v->describe());
  return out;
}

Result<double> get_float(const Files& f, const std::string& key, std::optional<double> fallback) {
  const Value* v = f.find(key);
  if (!v) {
    if (fallback) return *fallback;
    return make_error("{}: GGUF key {} is missing", f.path(), key);
  }
  double out = 0;
  if (!v->get_float(&out))
    return make_error("{}: GGUF key {} must be a number, got {}", f.path(), key, v->describe());
  return out;
}

// llama3 scaling from the rope_freqs tensor (the converter writes the per-pair divisors, not
// the parameters). Per pair j of wavelength λ_j the divisor is 1 below original_ctx / high,
// `factor` above original_ctx / low, and between them 1 / ((1 − s) / factor + s) with
// s = (original_ctx / λ − low) / (high − low), which is linear in 1 / λ. So: factor is the largest
// divisor; original_ctx is llama4.rope.scaling.original_context_length (8192 when absent: only
// original_ctx / low and original_ctx / high matter, so any value gives the same divisors); and
// low / high follow from the divisors strictly between 1 and factor (the smooth band) by a line
// through s(1 / λ), or are 1 when there is no band (released Llama 4, spec §1.3). The result is
// checked by recomputing every divisor as the exporter does.
Result<std::optional<RopeScaling>> rope_scaling_from(const Files& f, Llama4TextConfig t) {
  const TensorInfo* rf = f.find_tensor("rope_freqs.weight");
  if (!rf) return std::optional<RopeScaling>();
  if (rf->type != 0 || rf->ne.size() != 1 || rf->ne[0] != t.head_dim / 2)
    return make_error("{}: rope_freqs.weight must be F32 [{}], got {} {}", f.path(), t.head_dim / 2,
                      gguf::ggml_type_name(rf->type), shape_str(rf->ne));
  std::vector<float> got(size_t(rf->ne[0]));
  std::memcpy(got.data(), rf->data, got.size() * 4);
  RopeScaling s;
  s.factor = *std::max_element(got.begin(), got.end());
  s.low_freq_factor = s.high_freq_factor = 1.0f;
  HERD_ASSIGN_OR_RETURN(s.original_max_position_embeddings,
                        get_int(f, "llama4.rope.scaling.original_context_length", 8192));
  if (const Value* v = f.find("llama4.rope.scaling.factor")) {
    double x = 0;
    if (v->get_float(&x) && x > 0) s.factor = float(x);
  }
  // The smooth band: s against original_ctx / λ, a line whose zero is `low` and whose one is
  // `high`; fitted through the band's first and last pair (in double).
  std::vector<std::pair<double, double>> band;  // (original_ctx / λ, s)
  for (size_t j = 0; j < got.size(); ++j) {
    const double g = got[j], fac = s.factor;
    if (g > 1.0 + 1e-6 && g < fac * (1.0 - 1e-6) && fac > 1.0) {
      const double freq = 1.0 / std::pow(t.rope_theta, double(2 * j) / double(t.head_dim));
      const double x = double(s.original_max_position_embeddings) * freq / (2.0 * M_PI);
      band.emplace_back(x, (1.0 / g - 1.0 / fac) / (1.0 - 1.0 / fac));
    }
  }
  if (band.size() >= 2 && band.back().first != band.front().first) {
    const double a =
        (band.back().second - band.front().second) / (band.back().first - band.front().first);
    const double b = band.front().second - a * band.front().first;
    if (a != 0) {
      s.low_freq_factor = float(-b / a);
      s.high_freq_factor = float((1.0 - b) / a);
    }
  }
  t.rope_scaling = s;
  // Within f32 rounding: another converter may compute the factors in float64, and the band's
  // parameters come back through a fit.
  const std::vector<float> want = llama3_rope_factors(t);
  bool same = want.size() == got.size();
  for (size_t j = 0; same && j < got.size(); ++j)
    same = std::fabs(want[j] - got[j]) <= 1e-5f * std::fabs(want[j]);
  if (!same)
    return make_error(
        "{}: rope_freqs.weight is not a llama3 scaling herd can express (factor {}, low {}, "
        "high {}, original context {})",
        f.path(), s.factor, s.low_freq_factor, s.high_freq_factor,
        s.original_max_position_embeddings);
  if (s.factor == 1.0f) return std::optional<RopeScaling>();  // all ones: no scaling
  return std::optional<RopeScaling>(s);
}

}  // namespace

std::optional<DType> dtype_for_ggml_type(uint32_t type) {
  switch (type) {
    case 0:
      return DType::F32;
    case 1:
      return DType::F16;
    case 30:
      return DType::BF16;
    case 8:
      return DType::GGUF_Q8_0;
    case 2:
      return DType::GGUF_Q4_0;
    case 3:
      return DType::GGUF_Q4_1;
    case 6:
      return DType::GGUF_Q5_0;
    case 7:
      return DType::GGUF_Q5_1;
    case 13:
      return DType::GGUF_Q5_K;
    case 12:
      return DType::GGUF_Q4_K;
    case 14:
      return DType::GGUF_Q6_K;
    case 10:
      return DType::GGUF_Q2_K;
    case 11:
      return DType::GGUF_Q3_K;
    case 20:
      return DType::GGUF_IQ4_NL;
    case 23:
      return DType::GGUF_IQ4_XS;
    case 15:
      return DType::GGUF_Q8_K;
    default:
      return std::nullopt;
  }
}

bool fast_kernels_for(DType t) {
  // F16 and the GGUF block types run in their own layout (quant/gguf_blocks, ops/gemm_gguf*).
  return t == DType::F32 || t == DType::BF16 || is_gguf_kernel_type(t);
}

Result<Llama4Config> gguf_llama4_config(const Files& f) {
  const Value* arch = f.find("general.architecture");
  const std::string* name = arch ? arch->get_string() : nullptr;
  if (!name) return make_error("{}: GGUF has no general.architecture string", f.path());
  if (*name != "llama4")
    return make_error("{}: GGUF architecture '{}' is not supported (herd reads llama4)", f.path(),
                      *name);
  Llama4Config cfg;
  cfg.architecture = "Llama4ForCausalLM";
  cfg.multimodal = false;
  Llama4TextConfig& t = cfg.text;
  auto i = [&](const char* key, std::optional<int64_t> fb = std::nullopt) {
    return get_int(f, fmt::format("llama4.{}", key), fb);
  };
  HERD_ASSIGN_OR_RETURN(t.hidden_size, i("embedding_length"));
  HERD_ASSIGN_OR_RETURN(t.num_hidden_layers, i("block_count"));
  HERD_ASSIGN_OR_RETURN(t.num_attention_heads, i("attention.head_count"));
  HERD_ASSIGN_OR_RETURN(t.num_key_value_heads, i("attention.head_count_kv", t.num_attention_heads));
  const int64_t default_hd = t.num_attention_heads > 0 ? t.hidden_size / t.num_attention_heads : 0;
  HERD_ASSIGN_OR_RETURN(t.head_dim, i("attention.key_length", default_hd));
  HERD_ASSIGN_OR_RETURN(int64_t value_length, i("attention.value_length", t.head_dim));
  HERD_ASSIGN_OR_RETURN(int64_t rope_dims, i("rope.dimension_count", t.head_dim));
  if (value_length != t.head_dim || rope_dims != t.head_dim)
    return make_error(
        "{}: key_length {}, value_length {} and rope.dimension_count {} must be equal (llama4)",
        f.path(), t.head_dim, value_length, rope_dims);
  // llama.cpp's meanings are swapped against HF's (spec §7.8).
  HERD_ASSIGN_OR_RETURN(t.intermediate_size_mlp, i("feed_forward_length"));
  HERD_ASSIGN_OR_RETURN(t.intermediate_size, i("expert_feed_forward_length"));
  HERD_ASSIGN_OR_RETURN(t.num_local_experts, i("expert_count"));
  HERD_ASSIGN_OR_RETURN(t.num_experts_per_tok, i("expert_used_count", 1));
  HERD_ASSIGN_OR_RETURN(t.interleave_moe_layer_step, i("interleave_moe_layer_step"));
  const TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->ne.size() != 2)
    return make_error("{}: tensor token_embd.weight is missing or not 2-D", f.path());
  HERD_ASSIGN_OR_RETURN(t.vocab_size, i("vocab_size", embd->ne[1]));
  HERD_ASSIGN_OR_RETURN(t.max_position_embeddings, i("context_length", 131072));
  HERD_ASSIGN_OR_RETURN(t.rope_theta, get_float(f, "llama4.rope.freq_base", 10000.0));
  HERD_ASSIGN_OR_RETURN(t.rms_norm_eps,
                        get_float(f, "llama4.attention.layer_norm_rms_epsilon", std::nullopt));
  if (const Value* v = f.find("llama4.rope.freq_base_swa")) {
    double b = 0;
    if (!v->get_float(&b) || b != t.rope_theta)
      return make_error(
          "{}: llama4.rope.freq_base_swa {} differs from rope.freq_base {}: herd "
          "has one RoPE base",
          f.path(), v->describe(), t.rope_theta);
  }
  if (f.find("llama4.attention.sliding_window_pattern"))
    return make_error(
        "{}: llama4.attention.sliding_window_pattern is not supported (herd follows "
        "llama.cpp's fixed llama4 layout: 3 chunked layers, then 1 NoPE layer)",
        f.path());
  // llama.cpp: sliding_window present and 0 -> no chunking, RoPE everywhere (spec §2.5);
  // otherwise the released layout whatever the key says.
  HERD_ASSIGN_OR_RETURN(int64_t swa, i("attention.sliding_window", -1));
  const int64_t L = t.num_hidden_layers;
  if (swa == 0) {
    t.attention_chunk_size = 0;
    t.no_rope_layers.assign(size_t(std::max<int64_t>(L, 0)), 1);
    t.attn_temperature_tuning = false;
  } else {
    t.attention_chunk_size = kCppChunk;
    t.no_rope_layers.clear();
    for (int64_t l = 0; l < L; ++l) t.no_rope_layers.push_back((l + 1) % kCppNoRopeStep != 0);
    t.attn_temperature_tuning = true;
    t.floor_scale = kCppFloorScale;
    t.attn_scale = kCppAttnScale;
  }
  t.use_qk_norm = t.num_local_experts != kCppNoQkNormExperts;
  t.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  HERD_ASSIGN_OR_RETURN(int64_t bos, get_int(f, "tokenizer.ggml.bos_token_id", -1));
  if (bos >= 0) t.bos_token_id = {bos};
  // Generation stops on eos, eot and eom (spec §4.2; llama.cpp's end-of-generation set).
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    HERD_ASSIGN_OR_RETURN(int64_t id, get_int(f, key, -1));
    if (id >= 0 &&
        std::find(t.eos_token_id.begin(), t.eos_token_id.end(), id) == t.eos_token_id.end())
      t.eos_token_id.push_back(id);
  }
  HERD_ASSIGN_OR_RETURN(t.rope_scaling, rope_scaling_from(f, t));
  HERD_TRY(finalize_config(cfg, f.path()));
  return cfg;
}

namespace {

// GGML ne of each text tensor herd reads, from the config.
struct Expected {
  std::string name;
  std::vector<int64_t> ne;
  bool norm = false;  // 1-D gain, kept as f32
};

std::vector<Expected> expected_tensors(const Llama4TextConfig& t) {
  const int64_t H = t.hidden_size, V = t.vocab_size, I = t.intermediate_size,
                F = t.intermediate_size_mlp, E = t.num_local_experts;
  std::vector<Expected> out = {{"token_embd.weight", {H, V}}, {"output_norm.weight", {H}, true}};
  if (!t.tie_word_embeddings) out.push_back({"output.weight", {H, V}});
  for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    out.push_back({b + "attn_norm.weight", {H}, true});
    out.push_back({b + "attn_q.weight", {H, t.q_dim()}});
    out.push_back({b + "attn_k.weight", {H, t.kv_dim()}});
    out.push_back({b + "attn_v.weight", {H, t.kv_dim()}});
    out.push_back({b + "attn_output.weight", {t.q_dim(), H}});
    out.push_back({b + "ffn_norm.weight", {H}, true});
    if (t.layer_kind(l).moe) {
      out.push_back({b + "ffn_gate_inp.weight", {H, E}});
      out.push_back({b + "ffn_gate_exps.weight", {H, I, E}});
      out.push_back({b + "ffn_up_exps.weight", {H, I, E}});
      out.push_back({b + "ffn_down_exps.weight", {I, H, E}});
      out.push_back({b + "ffn_gate_shexp.weight", {H, I}});
      out.push_back({b + "ffn_up_shexp.weight", {H, I}});
      out.push_back({b + "ffn_down_shexp.weight", {I, H}});
    } else {
      out.push_back({b + "ffn_gate.weight", {H, F}});
      out.push_back({b + "ffn_up.weight", {H, F}});
      out.push_back({b + "ffn_down.weight", {F, H}});
    }
  }
  return out;
}

// "F32, F16, ...": the ggml types dtype_for_ggml_type maps, for error messages.
std::string supported_ggml_types() {
  std::string s;
  for (uint32_t t = 0; t < 64; ++t)
    if (dtype_for_ggml_type(t)) s += (s.empty() ? "" : ", ") + std::string(gguf::ggml_type_name(t));
  return s;
}

// The view of one tensor: rows = product of ne[1..], cols = ne[0].
Result<WeightRef> view(const Files& f, const Expected& e) {
  size_t part = 0;
  const TensorInfo* ti = f.find_tensor(e.name, &part);
  if (!ti)
    return make_error("{}: missing tensor {} (expected ne {})", f.path(), e.name, shape_str(e.ne));
  const std::string& file = f.paths()[part];
  if (ti->ne != e.ne)
    return make_error("{}: tensor {} has ne {}, expected {}", file, e.name, shape_str(ti->ne),
                      shape_str(e.ne));
  const std::optional<DType> dt = dtype_for_ggml_type(ti->type);
  if (!dt)
    return make_error("{}: tensor {} has type {}, which herd does not support (supported: {})",
                      file, e.name, gguf::ggml_type_name(ti->type), supported_ggml_types());
  if (!ti->data) return make_error("{}: tensor {} has no data in the file", file, e.name);
  WeightRef w;
  w.dtype = *dt;
  w.data = ti->data;
  w.cols = e.ne[0];
  w.rows = 1;
  for (size_t d = 1; d < e.ne.size(); ++d) w.rows *= e.ne[d];
  return w;
}

Result<std::vector<float>> norm_gain(const Files& f, const Expected& e) {
  HERD_ASSIGN_OR_RETURN(WeightRef w, view(f, e));
  if (w.dtype != DType::F32 && w.dtype != DType::BF16 && w.dtype != DType::F16)
    return make_error("{}: norm {} is {}, expected a float type", f.path(), e.name,
                      dtype_name(w.dtype));
  std::vector<float> out(size_t(w.cols));
  dequantize_row(WeightRef{w.dtype, w.data, 1, w.cols, nullptr, nullptr}, 0, out.data());
  return out;
}

}  // namespace

Result<LoadedModel> load_gguf_model(const std::string& path) {
  auto files = std::make_shared<Files>();
  HERD_ASSIGN_OR_RETURN(*files, Files::open(path));
  const Files& f = *files;
  LoadedModel m;
  m.dir = path;
  HERD_ASSIGN_OR_RETURN(m.config, gguf_llama4_config(f));
  const Llama4TextConfig& t = m.config.text;
  TextWeights& w = m.text;
  w.layers.resize(size_t(t.num_hidden_layers));
  for (const Expected& e : expected_tensors(t)) {
    // "blk.N.rest" -> layer N and rest; global tensors have layer -1.
    int layer = -1;
    std::string rest = e.name;
    if (e.name.rfind("blk.", 0) == 0) {
      const size_t dot = e.name.find('.', 4);
      layer = std::stoi(e.name.substr(4, dot - 4));
      rest = e.name.substr(dot + 1);
    }
    if (e.norm) {
      HERD_ASSIGN_OR_RETURN(std::vector<float> g, norm_gain(f, e));
      if (layer < 0)
        w.final_norm = std::move(g);
      else
        (rest == "attn_norm.weight" ? w.layers[size_t(layer)].attn_norm
                                    : w.layers[size_t(layer)].ffn_norm) = std::move(g);
      continue;
    }
    HERD_ASSIGN_OR_RETURN(WeightRef v, view(f, e));
    if (layer < 0) {
      (rest == "token_embd.weight" ? w.embed : w.lm_head) = v;
      continue;
    }
    LayerWeights& L = w.layers[size_t(layer)];
    static const std::map<std::string, WeightRef LayerWeights::*> kSlots = {
        {"attn_q.weight", &LayerWeights::wq},
        {"attn_k.weight", &LayerWeights::wk},
        {"attn_v.weight", &LayerWeights::wv},
        {"attn_output.weight", &LayerWeights::wo},
        {"ffn_gate_inp.weight", &LayerWeights::router},
        {"ffn_gate_exps.weight", &LayerWeights::experts_gate_up},  // gate rows only
        {"ffn_up_exps.weight", &LayerWeights::experts_up},
        {"ffn_down_exps.weight", &LayerWeights::experts_down},
        {"ffn_gate_shexp.weight", &LayerWeights::shared_gate},
        {"ffn_up_shexp.weight", &LayerWeights::shared_up},
        {"ffn_down_shexp.weight", &LayerWeights::shared_down},
        {"ffn_gate.weight", &LayerWeights::dense_gate},
        {"ffn_up.weight", &LayerWeights::dense_up},
        {"ffn_down.weight", &LayerWeights::dense_down},
    };
    L.*kSlots.at(rest) = v;
  }
  if (t.tie_word_embeddings) w.lm_head = w.embed;
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    // The experts' gate and up share one prepared activation (model/text.cc moe_fast).
    if (L.experts_up.data && L.experts_up.dtype != L.experts_gate_up.dtype)
      return make_error(
          "{}: blk.{}: ffn_gate_exps is {} but ffn_up_exps is {}; herd needs one "
          "type for both",
          path, l, dtype_name(L.experts_gate_up.dtype), dtype_name(L.experts_up.dtype));
  }
  // The run format is the file itself: the fast path reads the same views.
  m.run = m.text;
  m.has_run = true;
  m.run_format = kGgufRunFormat;
  m.gguf = std::move(files);
  return m;
}

bool reference_reads(DType t) {
  // The f32 reference dequantizes rows (ops/weight.cc), which knows every GGUF block type.
  return t == DType::F32 || t == DType::BF16 || is_gguf_kernel_type(t);
}

Status check_gguf_run_weights(const LoadedModel& m, bool fast) {
  const TextWeights& r = m.run;
  auto check = [&](const WeightRef& w, const std::string& name) -> Status {
    if (!w.data || (fast ? fast_kernels_for(w.dtype) : reference_reads(w.dtype)))
      return Status::ok();
    if (fast && reference_reads(w.dtype))
      return make_error(
          "{}: tensor {} is {}, which this build of herd has no fast kernels for; use "
          "--precision f32, or a GGUF with F32 / BF16 weights",
          m.dir, name, dtype_name(w.dtype));
    return make_error("{}: tensor {} is {}, which this build of herd has no kernels for yet", m.dir,
                      name, dtype_name(w.dtype));
  };
  HERD_TRY(check(r.embed, "token_embd.weight"));
  HERD_TRY(check(r.lm_head, "output.weight"));
  for (size_t l = 0; l < r.layers.size(); ++l) {
    const LayerWeights& L = r.layers[l];
    const std::pair<const WeightRef*, const char*> ws[] = {{&L.wq, "attn_q"},
                                                           {&L.wk, "attn_k"},
                                                           {&L.wv, "attn_v"},
                                                           {&L.wo, "attn_output"},
                                                           {&L.router, "ffn_gate_inp"},
                                                           {&L.experts_gate_up, "ffn_gate_exps"},
                                                           {&L.experts_up, "ffn_up_exps"},
                                                           {&L.experts_down, "ffn_down_exps"},
                                                           {&L.shared_gate, "ffn_gate_shexp"},
                                                           {&L.shared_up, "ffn_up_shexp"},
                                                           {&L.shared_down, "ffn_down_shexp"},
                                                           {&L.dense_gate, "ffn_gate"},
                                                           {&L.dense_up, "ffn_up"},
                                                           {&L.dense_down, "ffn_down"}};
    for (const auto& [w, n] : ws) HERD_TRY(check(*w, fmt::format("blk.{}.{}.weight", l, n)));
  }
  return Status::ok();
}

void check_gguf_chat_template(const Files& f) {
  const Value* v = f.find("tokenizer.chat_template");
  const std::string* tmpl = v ? v->get_string() : nullptr;
  // herd renders the Llama 4 format itself (tokenizer/chat_format.h), statement by statement
  // of the official template; a file whose template is something else is said so once.
  if (tmpl && tmpl->find("<|header_start|>") == std::string::npos)
    log(LogLevel::kWarn,
        "{}: tokenizer.chat_template is not the Llama 4 template; herd's chat uses the Llama 4 "
        "format regardless",
        f.path());
}

GgufSummary summarize_gguf(const Files& f) {
  GgufSummary s;
  std::map<std::string, uint64_t> by_type;
  for (size_t p = 0; p < f.parts().size(); ++p)
    for (const TensorInfo& ti : f.parts()[p].tensors()) {
      GgufTensorUse u;
      u.name = ti.name;
      u.type = gguf::ggml_type_name(ti.type);
      u.bytes = ti.nbytes;
      by_type[u.type] += ti.nbytes;
      const std::optional<DType> dt = dtype_for_ggml_type(ti.type);
      const bool one_d = ti.ne.size() == 1;
      if (ti.name == "rope_freqs.weight")
        u.use = "read once: llama3 rope scaling";
      else if (ti.name.rfind("blk.", 0) != 0 && ti.name.rfind("token_embd", 0) != 0 &&
               ti.name.rfind("output", 0) != 0)
        u.use = "ignored (not a llama4 text tensor)";
      else if (!dt)
        u.use = fmt::format("unsupported: herd has no {} format", u.type);
      else if (one_d)
        u.use = "copied to f32 (norm gain)";
      else if (ti.name.rfind("token_embd", 0) == 0)
        u.use = fmt::format("as-is: {} rows looked up", dtype_name(*dt));
      else if (fast_kernels_for(*dt))
        u.use = fmt::format("as-is: {} kernels", dtype_name(*dt));
      else if (reference_reads(*dt))
        u.use = fmt::format("as-is: {} (no fast kernels in this build: --precision f32 only)",
                            dtype_name(*dt));
      else
        u.use = fmt::format("as-is: {} (no kernels in this build yet: refused at run)",
                            dtype_name(*dt));
      s.tensors.push_back(std::move(u));
    }
  s.bytes_by_type.assign(by_type.begin(), by_type.end());
  return s;
}

}  // namespace herd
