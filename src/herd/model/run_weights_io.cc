// Pre-quantized model directories (`herd quantize`; format in docs/prequantized.md): the run
// format written as safetensors with herd's packed dtypes, mapped back without conversion.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "herd/base/mapped_file.h"
#include "herd/io/model_dir.h"
#include "herd/io/safetensors.h"
#include "herd/model/run_weights.h"
#include "herd/model/run_weights_internal.h"
#include "herd/model/tensor_table.h"
#include "herd/quant/formats.h"

namespace herd {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr int kFormatVersion = 1;

// Stored name of a run tensor. Fused experts get new names: their layout changed
// ("...experts.gate_up_proj" [E, H, 2I] -> "...experts.run_gate_up.weight" [E*2I, H]).
std::string run_name(const TensorSpec& s) {
  if (s.role == TensorRole::kExpertsGateUp || s.role == TensorRole::kExpertsDown) {
    const std::string base = s.name.substr(0, s.name.rfind('.') + 1);
    return base + (s.role == TensorRole::kExpertsGateUp ? "run_gate_up.weight" : "run_down.weight");
  }
  return s.name;
}

std::vector<int64_t> run_shape(const TensorSpec& s, const Llama4TextConfig& t) {
  const int64_t E = t.num_local_experts, H = t.hidden_size, I = t.intermediate_size;
  if (s.role == TensorRole::kExpertsGateUp) return {E * 2 * I, H};
  if (s.role == TensorRole::kExpertsDown) return {E * H, I};
  return s.shape;
}

// The same accessors run_weights_fp8.cc has, over the run weights (const and not).
template <typename TW>
auto* run_weight(TW& tw, const TensorSpec& s) {
  auto& L = tw.layers;
  const size_t l = size_t(std::max(s.layer, 0));
  switch (s.role) {
    case TensorRole::kEmbedding:
      return &tw.embed;
    case TensorRole::kAttnQ:
      return &L[l].wq;
    case TensorRole::kAttnK:
      return &L[l].wk;
    case TensorRole::kAttnV:
      return &L[l].wv;
    case TensorRole::kAttnO:
      return &L[l].wo;
    case TensorRole::kRouter:
      return &L[l].router;
    case TensorRole::kExpertsGateUp:
      return &L[l].experts_gate_up;
    case TensorRole::kExpertsDown:
      return &L[l].experts_down;
    case TensorRole::kSharedGate:
      return &L[l].shared_gate;
    case TensorRole::kSharedUp:
      return &L[l].shared_up;
    case TensorRole::kSharedDown:
      return &L[l].shared_down;
    case TensorRole::kDenseGate:
      return &L[l].dense_gate;
    case TensorRole::kDenseUp:
      return &L[l].dense_up;
    case TensorRole::kDenseDown:
      return &L[l].dense_down;
    case TensorRole::kLmHead:
      return &tw.lm_head;
    default:
      return static_cast<decltype(&tw.embed)>(nullptr);
  }
}

Status copy_side_files(const std::string& from, const std::string& to) {
  // Everything but the weights and config.json (rewritten): generation config, tokenizer and
  // processor files, and Meta's tokenizer.model under original/ if that is where it is.
  std::vector<std::pair<fs::path, fs::path>> files;
  for (const auto& e : fs::directory_iterator(from)) {
    if (!e.is_regular_file()) continue;
    const std::string n = e.path().filename().string();
    if (n == "config.json" || n == kSafetensorsIndexName || e.path().extension() == ".safetensors")
      continue;
    files.emplace_back(e.path(), fs::path(to) / n);
  }
  if (auto tm = find_tokenizer_model(from); tm && fs::path(*tm).parent_path() != fs::path(from))
    files.emplace_back(*tm, fs::path(to) / fs::relative(*tm, from));
  for (const auto& [src, dst] : files) {
    std::error_code ec;
    fs::create_directories(dst.parent_path(), ec);
    fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
    if (ec)
      return make_error("quantize: cannot copy {} to {}: {}", src.string(), dst.string(),
                        ec.message());
  }
  return Status::ok();
}

Result<const TensorView*> find_checked(const LoadedModel& m, const std::string& name,
                                       const std::vector<int64_t>& shape) {
  const TensorView* v = m.store->find(name);
  if (!v)
    return make_error("pre-quantized model {}: missing tensor '{}' (expected shape {})", m.dir,
                      name, shape_str(shape));
  if (v->shape != shape)
    return make_error("pre-quantized model {}: tensor '{}' ({}) has shape {}, expected {}", m.dir,
                      name, v->file, shape_str(v->shape), shape_str(shape));
  return v;
}

// The f32 scales beside a packed or FP8 tensor: "<name>.scales".
Result<const float*> find_scales(const LoadedModel& m, const std::string& name,
                                 const std::vector<int64_t>& shape) {
  HERD_ASSIGN_OR_RETURN(const TensorView* s, find_checked(m, name + ".scales", shape));
  if (s->dtype != DType::F32)
    return make_error("pre-quantized model {}: tensor '{}' ({}) has dtype {}, expected F32", m.dir,
                      s->name, s->file, dtype_name(s->dtype));
  if (reinterpret_cast<uintptr_t>(s->data) % 4 != 0)
    return make_error("pre-quantized model {}: tensor '{}' ({}) is not 4-byte aligned", m.dir,
                      s->name, s->file);
  return reinterpret_cast<const float*>(s->data);
}

}  // namespace

bool is_herd_prequantized(const Llama4Config& cfg) {
  if (cfg.quantization_json.empty()) return false;
  auto q = nlohmann::json::parse(cfg.quantization_json, nullptr, false);
  return q.is_object() && q.value("quant_method", "") == "herd";
}

Status save_prequantized(const LoadedModel& m, const std::string& out_dir, int shards) {
  if (!m.has_run) return make_error("quantize: model {} has no run weights prepared", m.dir);
  std::error_code ec;
  if (fs::equivalent(m.dir, out_dir, ec))
    return make_error("quantize: output {} is the input directory", out_dir);
  fs::create_directories(out_dir, ec);
  if (ec) return make_error("{}: cannot create directory: {}", out_dir, ec.message());
  for (const std::string& p : list_safetensors(out_dir)) fs::remove(p, ec);
  fs::remove(fs::path(out_dir) / kSafetensorsIndexName, ec);

  const std::string cfg_path = (fs::path(m.dir) / "config.json").string();
  HERD_ASSIGN_OR_RETURN(std::string cfg_text, read_text_file(cfg_path));
  json cfg = json::parse(cfg_text, nullptr, false);
  if (!cfg.is_object()) return make_error("{}: not a JSON object", cfg_path);
  cfg["quantization_config"] = {
      {"quant_method", "herd"},
      {"format", m.run_format},
      {"group_size", kQuantGroup},
      {"version", kFormatVersion},
      {"packed_dtypes", {"HERD_Q8G", "HERD_Q4G", "HERD_BF16T"}},
      {"expert_layout",
       "per expert nn.Linear: run_gate_up [E*2I, H] = [gate; up] per expert, "
       "run_down [E*H, I]"}};
  HERD_TRY(write_text_file((fs::path(out_dir) / "config.json").string(), cfg.dump(2) + "\n"));
  HERD_TRY(copy_side_files(m.dir, out_dir));

  const Llama4TextConfig& t = m.config.text;
  std::vector<TensorToWrite> tensors;
  // Q8GI / Q4GI matrices turned back into Q8G / Q4G for the file; kept alive until written.
  std::vector<std::vector<uint8_t>> codes;
  std::vector<std::vector<float>> scales;
  auto row_major = [&](const WeightRef& w) {
    const DType ct = code_format(w.dtype);
    const int64_t rb = packed_row_bytes(ct, w.cols), G = quant_groups(w.cols);
    codes.emplace_back(size_t(w.rows * rb));
    scales.emplace_back(size_t(w.rows * G));
    const auto* d = static_cast<const uint8_t*>(w.data);
    for (int64_t r = 0; r < w.rows; ++r)
      deinterleave_row(d, w.dtype, w.cols, r, codes.back().data() + r * rb,
                       scales.back().data() + r * G);
    return WeightRef{ct, codes.back().data(), w.rows, w.cols, nullptr, scales.back().data()};
  };
  uint64_t total = 0;
  auto add = [&](std::string name, DType dt, std::vector<int64_t> shape, const void* data) {
    TensorToWrite w{std::move(name), dt, std::move(shape), data, {}};
    total += w.nbytes();
    tensors.push_back(std::move(w));
  };
  for (const TensorSpec& s : text_tensor_table(m.config)) {
    if (const auto* n = run_internal::norm_of(m.run, s)) {
      add(s.name, DType::F32, {int64_t(n->size())}, n->data());
      continue;
    }
    const WeightRef* w = run_weight(m.run, s);
    if (!w || !w->data) return make_error("quantize: run weight for '{}' is missing", s.name);
    const std::string name = run_name(s);
    if (is_interleaved(w->dtype)) {  // a machine's layout: files hold the portable Q8G / Q4G
      const WeightRef p = row_major(*w);
      add(name, p.dtype, {p.rows, p.cols}, p.data);
      add(name + ".scales", DType::F32, {p.rows, quant_groups(p.cols)}, p.group_scale);
      continue;
    }
    add(name, w->dtype, {w->rows, w->cols}, w->data);
    if (is_packed(w->dtype))
      add(name + ".scales", DType::F32, {w->rows, quant_groups(w->cols)}, w->group_scale);
    else if (w->dtype == DType::F8_E4M3)
      add(name + ".scales", DType::F32, {w->rows}, w->row_scale);
  }
  // Tied embeddings: a head that is not the embedding's own view (quantized) is stored too.
  if (t.tie_word_embeddings && m.run.lm_head.data != m.run.embed.data) {
    const WeightRef& w = m.run.lm_head;
    const std::string name = m.config.text_prefix() + "lm_head.weight";
    const WeightRef p = is_interleaved(w.dtype) ? row_major(w) : w;
    add(name, p.dtype, {p.rows, p.cols}, p.data);
    if (is_packed(p.dtype))
      add(name + ".scales", DType::F32, {p.rows, quant_groups(p.cols)}, p.group_scale);
  }
  for (const TensorSpec& s : vision_tensor_table(m.config)) {  // copied as stored
    const TensorView* v = m.store ? m.store->find(s.name) : nullptr;
    if (!v) return make_error("quantize: vision tensor '{}' is missing in {}", s.name, m.dir);
    add(s.name, v->dtype, v->shape, v->data);
  }
  if (shards <= 0) shards = int(std::max<uint64_t>(1, (total + (4ull << 30) - 1) / (4ull << 30)));
  const std::map<std::string, std::string> meta = {{"format", "pt"},
                                                   {"herd_quantized", m.run_format}};
  return write_sharded_safetensors(out_dir, tensors, shards, meta);
}

Status load_prequantized(LoadedModel& m) {
  auto q = nlohmann::json::parse(m.config.quantization_json, nullptr, false);
  const std::string format = q.value("format", "");
  if (q.value("group_size", int64_t(0)) != kQuantGroup)
    return make_error("pre-quantized model {}: quantization_config.group_size must be {}", m.dir,
                      kQuantGroup);
  if (q.value("version", 0) != kFormatVersion)
    return make_error("pre-quantized model {}: format version {} (this herd reads {})", m.dir,
                      q.value("version", 0), kFormatVersion);
  m.text.layers.resize(size_t(m.config.text.num_hidden_layers));  // left empty: no reference
  m.run.layers.resize(size_t(m.config.text.num_hidden_layers));
  const Llama4TextConfig& t = m.config.text;
  for (const TensorSpec& s : text_tensor_table(m.config)) {
    if (auto* n = run_internal::norm_of(m.run, s)) {
      HERD_ASSIGN_OR_RETURN(const TensorView* v, find_checked(m, s.name, s.shape));
      n->resize(size_t(v->numel()));
      dequantize_row(WeightRef{v->dtype, v->data, 1, v->numel(), nullptr, nullptr}, 0, n->data());
      continue;
    }
    WeightRef* w = run_weight(m.run, s);
    const std::string name = run_name(s);
    const std::vector<int64_t> shape = run_shape(s, t);
    HERD_ASSIGN_OR_RETURN(const TensorView* v, find_checked(m, name, shape));
    *w = WeightRef{v->dtype, v->data, shape[0], shape[1], nullptr, nullptr};
    if (is_packed(v->dtype)) {
      HERD_ASSIGN_OR_RETURN(w->group_scale,
                            find_scales(m, name, {shape[0], quant_groups(shape[1])}));
    } else if (v->dtype == DType::F8_E4M3) {
      HERD_ASSIGN_OR_RETURN(w->row_scale, find_scales(m, name, {shape[0]}));
    } else if (v->dtype == DType::BF16T) {
      if (shape[0] % kTileRows != 0)
        return make_error(
            "pre-quantized model {}: tensor '{}' ({}) is {} with {} rows (not a "
            "multiple of {})",
            m.dir, name, v->file, dtype_name(v->dtype), shape[0], kTileRows);
    } else if (v->dtype != DType::BF16 && v->dtype != DType::F32) {
      return make_error("pre-quantized model {}: tensor '{}' ({}) has dtype {}", m.dir, name,
                        v->file, dtype_name(v->dtype));
    } else if (reinterpret_cast<uintptr_t>(v->data) % dtype_size(v->dtype) != 0) {
      return make_error("pre-quantized model {}: tensor '{}' ({}) is misaligned", m.dir, name,
                        v->file);
    }
  }
  if (t.tie_word_embeddings) {
    const std::string head = m.config.text_prefix() + "lm_head.weight";
    m.run.lm_head = m.run.embed;
    if (const TensorView* v = m.store->find(head)) {
      m.run.lm_head =
          WeightRef{v->dtype, v->data, v->shape.at(0), v->shape.back(), nullptr, nullptr};
      if (is_packed(v->dtype)) {
        HERD_ASSIGN_OR_RETURN(m.run.lm_head.group_scale,
                              find_scales(m, head, {v->shape[0], quant_groups(v->shape.back())}));
      }
    }
  }
  m.has_run = true;
  m.run_format = format;
  return Status::ok();
}

}  // namespace herd
