// `herd quantize`'s writer: the run format of a prepared model saved as a pre-quantized model
// directory (docs/prequantized.md), which model/run_weights_io.cc maps back without conversion.
#include "herd/convert/prequant_save.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "herd/base/mapped_file.h"
#include "herd/io/model_dir.h"
#include "herd/io/safetensors.h"
#include "herd/model/run_weights.h"
#include "herd/model/tensor_table.h"
#include "herd/model/weight_slots.h"
#include "herd/quant/formats.h"

namespace herd {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

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

}  // namespace

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
      {"version", kPrequantFormatVersion},
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
    if (const auto* n = norm_slot(m.run, s)) {
      add(s.name, DType::F32, {int64_t(n->size())}, n->data());
      continue;
    }
    const WeightRef* w = weight_slot(m.run, s);
    if (!w || !w->data) return make_error("quantize: run weight for '{}' is missing", s.name);
    const std::string name = prequant_tensor_name(s);
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

}  // namespace herd
