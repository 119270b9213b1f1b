#include "herd/runtime/memory_plan.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "herd/model/tensor_table.h"
#include "herd/runtime/kv_cache.h"

namespace herd {

namespace {

constexpr int64_t kGiB = int64_t(1) << 30;
constexpr int64_t kGroup = 128;  // inputs per scale of the grouped int8 / int4 formats

// Scout and Maverick text_config as released (spec §1.1); vision_config is the same for both.
nlohmann::json released_config(bool maverick) {
  nlohmann::json text = {{"hidden_size", 5120},
                         {"num_hidden_layers", 48},
                         {"num_attention_heads", 40},
                         {"num_key_value_heads", 8},
                         {"head_dim", 128},
                         {"vocab_size", 202048},
                         {"num_local_experts", maverick ? 128 : 16},
                         {"num_experts_per_tok", 1},
                         {"intermediate_size", 8192},
                         {"intermediate_size_mlp", 16384},
                         {"interleave_moe_layer_step", maverick ? 2 : 1},
                         {"attention_chunk_size", 8192},
                         {"rope_theta", 500000.0},
                         {"max_position_embeddings", maverick ? 1048576 : 10485760},
                         {"use_qk_norm", !maverick},
                         {"attn_temperature_tuning", true},
                         {"floor_scale", 8192},
                         {"attn_scale", 0.1},
                         {"rms_norm_eps", 1e-5},
                         {"bos_token_id", 200000},
                         {"eos_token_id", {200001, 200007, 200008}},
                         {"pad_token_id", 200018}};
  if (!maverick)
    text["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 16.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 1.0},
                            {"original_max_position_embeddings", 8192}};
  const nlohmann::json vision = {{"hidden_size", 1408},
                                 {"num_hidden_layers", 34},
                                 {"num_attention_heads", 16},
                                 {"intermediate_size", 5632},
                                 {"image_size", 336},
                                 {"patch_size", 14},
                                 {"num_channels", 3},
                                 {"pixel_shuffle_ratio", 0.5},
                                 {"projector_input_dim", 4096},
                                 {"projector_output_dim", 4096},
                                 {"vision_output_dim", 4096},
                                 {"rope_theta", 10000},
                                 {"norm_eps", 1e-5}};
  return {{"architectures", {"Llama4ForConditionalGeneration"}},
          {"model_type", "llama4"},
          {"text_config", text},
          {"vision_config", vision},
          {"image_token_index", 200092},
          {"boi_token_index", 200080},
          {"eoi_token_index", 200081},
          {"torch_dtype", "bfloat16"}};
}

// Rows and inputs of a linear weight as stored: [out, in] for nn.Linear, [E, in, out] for the
// fused input-major expert tensors (spec §2.1).
void rows_and_inputs(const TensorSpec& s, int64_t* rows, int64_t* k) {
  if (s.shape.size() == 3) {
    *k = s.shape[1];
    *rows = s.shape[0] * s.shape[2];
  } else {
    *rows = s.shape.empty() ? 1 : s.shape[0];
    *k = s.shape.size() > 1 ? s.shape[1] : 1;
  }
}

bool is_routed(TensorRole r) {
  return r == TensorRole::kExpertsGateUp || r == TensorRole::kExpertsDown;
}
bool is_shared(TensorRole r) {
  return r == TensorRole::kSharedGate || r == TensorRole::kSharedUp || r == TensorRole::kSharedDown;
}
bool is_linear(TensorRole r) {
  switch (r) {
    case TensorRole::kAttnQ:
    case TensorRole::kAttnK:
    case TensorRole::kAttnV:
    case TensorRole::kAttnO:
    case TensorRole::kDenseGate:
    case TensorRole::kDenseUp:
    case TensorRole::kDenseDown:
    case TensorRole::kLmHead:
      return true;
    default:
      return is_routed(r) || is_shared(r);
  }
}

// Bytes of one tensor in `f`; *quantized is set when it is stored in the low-bit format.
int64_t tensor_bytes(const TensorSpec& s, WeightFormat f, int64_t n_layers, bool* quantized) {
  const int64_t n = s.numel();
  int64_t rows = 0, k = 0;
  rows_and_inputs(s, &rows, &k);
  const int64_t groups = rows * ((k + kGroup - 1) / kGroup);
  *quantized = true;
  switch (f) {
    case WeightFormat::kFP8:  // routed experts, not in the first or last layer
      if (is_routed(s.role) && s.layer != 0 && s.layer != n_layers - 1) return n + rows * 4;
      break;
    case WeightFormat::kInt8:
      if (is_linear(s.role)) return n + groups * 4;
      break;
    case WeightFormat::kInt4:
      if (is_routed(s.role) || is_shared(s.role)) return rows * ((k + 1) / 2) + groups * 4;
      break;
    case WeightFormat::kBF16:
      break;
  }
  *quantized = false;
  return 2 * n;
}

// Largest n in [0, 2^40] with cost(n) <= budget (cost is non-decreasing).
template <typename F>
int64_t largest_fitting(int64_t budget, F cost) {
  if (budget < 0 || cost(0) > budget) return 0;
  int64_t lo = 0, hi = int64_t(1) << 40;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (cost(mid) <= budget)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

}  // namespace

int64_t plan_tensor_bytes(const TensorSpec& s, WeightFormat f, int64_t n_layers) {
  bool q = false;
  return tensor_bytes(s, f, n_layers, &q);
}

bool plan_is_routed(TensorRole r) {
  return is_routed(r);
}

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kBF16:
      return "bf16";
    case WeightFormat::kFP8:
      return "fp8";
    case WeightFormat::kInt8:
      return "int8";
    case WeightFormat::kInt4:
      return "int4";
  }
  return "?";
}

bool parse_weight_format(const std::string& s, WeightFormat* out) {
  for (WeightFormat f :
       {WeightFormat::kBF16, WeightFormat::kFP8, WeightFormat::kInt8, WeightFormat::kInt4})
    if (s == weight_format_name(f)) {
      *out = f;
      return true;
    }
  return false;
}

Result<Llama4Config> known_model_config(const std::string& name) {
  if (name != "scout" && name != "maverick")
    return make_error("unknown model '{}' (scout, maverick, or a model directory)", name);
  return parse_config(released_config(name == "maverick").dump(), "built-in " + name + " config");
}

Result<PlanTarget> gpu_target(const std::string& gpu, int64_t count) {
  PlanTarget t;
  t.gpu = true;
  t.name = gpu;
  if (gpu == "h100")
    t.device_bytes = 80 * kGiB;
  else if (gpu == "h200")
    t.device_bytes = 141 * kGiB;
  else
    return make_error("--gpu {}: expected h100 or h200", gpu);
  if (count < 1 || count > 4096) return make_error("--count {}: must be in 1..4096", count);
  t.count = count;
  t.usable_fraction = 0.9;
  t.reserve_bytes = count * kGpuReserveBytes;
  return t;
}

PlanTarget ram_target(int64_t ram_bytes) {
  PlanTarget t;
  t.name = "ram";
  t.device_bytes = ram_bytes;
  return t;
}

int64_t cpu_activation_bytes(const Llama4TextConfig& t, int64_t ubatch) {
  const int64_t H = t.hidden_size, I = t.intermediate_size;
  const int64_t F = std::max(2 * I, t.intermediate_size_mlp);
  // f32 buffers of TextDecoder::resize: h, xn, ffn_out, xe, ye (H); q, attn (q_dim); k, v
  // (kv_dim); gate, up (F); router (E); experts' gate|up (2I) and hidden (I).
  const int64_t floats =
      ubatch * (5 * H + 2 * t.q_dim() + 2 * t.kv_dim() + 2 * F + t.num_local_experts + 3 * I);
  // Prepared (bf16 / int8) activations: the shared input and the per-expert copies of it, for
  // the up and the down projections (2 bytes per element at most).
  const int64_t prepared = ubatch * 2 * (H + std::max(I, t.intermediate_size_mlp)) * 2;
  const int64_t logits = t.vocab_size * 4;  // the last position's row
  return floats * 4 + prepared + logits;
}

int64_t KvLayoutPlan::kv_bytes(int64_t n) const {
  const int64_t pages = (n + page_rows - 1) / page_rows;
  return pages * page_bytes + std::min(pages, window_pages) * window_page_bytes;
}

int64_t MemoryPlan::bytes_at(int64_t n) const {
  return weights_bytes + reserve_bytes +
         in.sequences * (herd.kv_bytes(n) + outside_kv_per_token * n);
}

Result<MemoryPlan> plan_memory(const PlanInput& in) {
  MemoryPlan p;
  p.in = in;
  const Llama4TextConfig& t = in.cfg.text;
  if (in.ubatch < 1) return make_error("--ubatch {}: must be >= 1", in.ubatch);
  if (in.sequences < 1) return make_error("--parallel {}: must be >= 1", in.sequences);
  if (in.target.device_bytes <= 0) return make_error("the machine's memory must be positive");
  const auto tensors = in.count_vision ? tensor_table(in.cfg) : text_tensor_table(in.cfg);
  for (const TensorSpec& s : tensors) {
    bool q = false;
    p.weights_bytes += tensor_bytes(s, in.format, t.num_hidden_layers, &q);
    p.params += s.numel();
    if (q) p.quantized_params += s.numel();
  }
  p.usable_bytes =
      int64_t(double(in.target.device_bytes) * in.target.usable_fraction) * in.target.count;
  p.reserve_bytes = in.target.reserve_bytes;
  if (!in.target.gpu) {
    p.reserve_bytes = kCpuRuntimeBytes + cpu_activation_bytes(t, in.ubatch);
    p.outside_kv_per_token = kCpuBytesPerTokenOutsideKv;
  }
  p.kv_budget_bytes = p.usable_bytes - p.weights_bytes - p.reserve_bytes;
  p.max_position_embeddings = t.max_position_embeddings;
  const int64_t per_seq_budget =
      p.kv_budget_bytes >= 0 ? p.kv_budget_bytes / in.sequences : p.kv_budget_bytes;

  // herd: the runtime's pages. Global pages grow with the context; the chunked pool is the
  // scheduler's (the window of one slice plus as many again for the prefix cache), touched
  // page by page as the context grows.
  const KvCacheSpec spec = KvCacheSpec::make(t, in.kv_type, in.page_rows, in.ubatch);
  KvLayoutPlan& h = p.herd;
  h.page_rows = spec.page_rows();
  h.page_bytes = int64_t(spec.global.page_bytes());
  if (spec.chunked.layers > 0) {
    h.window_pages = 2 * spec.window_pages();
    h.window_page_bytes = int64_t(spec.chunked.page_bytes());
  }
  h.kv_bytes_per_token = h.page_bytes / h.page_rows;
  h.kv_fixed_bytes = h.window_pages * h.window_page_bytes;
  h.layers_growing = spec.global.layers;
  const int64_t outside = p.outside_kv_per_token;
  h.max_context_tokens =
      largest_fitting(per_seq_budget, [&](int64_t n) { return h.kv_bytes(n) + outside * n; });

  // Full KV: every layer keeps every token, as an engine without chunk-aware caching does (no
  // page overhead counted: K and V, plus per-head f32 scales for the 8-bit types).
  KvLayoutPlan& f = p.full_kv;
  f.page_bytes =
      t.num_hidden_layers * (2 * t.kv_dim() * int64_t(kv_type_bytes(in.kv_type)) +
                             (kv_type_scaled(in.kv_type) ? 2 * t.num_key_value_heads * 4 : 0));
  f.kv_bytes_per_token = f.page_bytes;
  f.layers_growing = t.num_hidden_layers;
  f.max_context_tokens =
      largest_fitting(per_seq_budget, [&](int64_t n) { return f.kv_bytes(n) + outside * n; });
  p.fits = p.kv_budget_bytes >= 0 && p.herd.max_context_tokens >= 1;
  return p;
}

}  // namespace herd
