// GGUF export: walks the tensor table, checks each stored tensor against it, and streams the
// converted (and for the fused experts, split + transposed) data into the GGUF writer.
#include "herd/convert/gguf_export.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

#include "herd/base/dtype.h"
#include "herd/io/safetensors.h"
#include "herd/quant/format_table.h"

namespace herd {
namespace {

using gguf::GgmlType;

// `n` consecutive stored elements (F32, F16 or BF16: checked by the caller) as f32.
void load_f32(const uint8_t* src, DType t, size_t n, float* out) {
  format_traits(t).to_float(RowsView{src, int64_t(n), nullptr, nullptr}, 0, out);
}

void store(float v, GgmlType t, uint8_t* dst) {
  if (t == GgmlType::kF32) {
    std::memcpy(dst, &v, 4);
  } else {
    const uint16_t h = t == GgmlType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
    std::memcpy(dst, &h, 2);
  }
}

// Converts `n` consecutive elements (exact for BF16 -> F32 / BF16; F16 output rounds).
void convert(const uint8_t* src, DType st, size_t n, GgmlType dt, uint8_t* dst) {
  const size_t ds = gguf::ggml_type_size(dt);
  std::vector<float> f(n);
  load_f32(src, st, n, f.data());
  for (size_t i = 0; i < n; ++i) store(f[i], dt, dst + i * ds);
}

// The whole tensor, element by element, in blocks.
gguf::TensorFill copy_fill(const TensorView* v, GgmlType dt) {
  return [v, dt](gguf::TensorSink& out) -> Status {
    const size_t n = size_t(v->numel()), block = 1 << 16, ss = dtype_size(v->dtype);
    std::vector<uint8_t> buf(block * gguf::ggml_type_size(dt));
    for (size_t i = 0; i < n; i += block) {
      const size_t k = std::min(block, n - i);
      convert(v->data + i * ss, v->dtype, k, dt, buf.data());
      HERD_TRY(out.write(buf.data(), k * gguf::ggml_type_size(dt)));
    }
    return Status::ok();
  };
}

// For each of `batches` matrices src[b] of shape [rows, cols] (row-major), writes the
// transpose of its column range [c0, c0 + nc): out[b][c][r] = src[b][r][c0 + c], i.e. rows of
// length `rows`. Tiles of 64 output rows keep the source reads contiguous.
gguf::TensorFill transpose_fill(const TensorView* v, int64_t batches, int64_t rows, int64_t cols,
                                int64_t c0, int64_t nc, GgmlType dt) {
  return [=](gguf::TensorSink& out) -> Status {
    const size_t ss = dtype_size(v->dtype), ds = gguf::ggml_type_size(dt);
    const int64_t tile = 64;
    std::vector<uint8_t> buf(size_t(tile * rows) * ds);
    float f[tile];
    for (int64_t b = 0; b < batches; ++b) {
      const uint8_t* m = v->data + size_t(b * rows * cols) * ss;
      for (int64_t ct = 0; ct < nc; ct += tile) {
        const int64_t k = std::min(tile, nc - ct);
        for (int64_t r = 0; r < rows; ++r) {
          load_f32(m + size_t(r * cols + c0 + ct) * ss, v->dtype, size_t(k), f);
          for (int64_t c = 0; c < k; ++c) store(f[c], dt, buf.data() + size_t(c * rows + r) * ds);
        }
        HERD_TRY(out.write(buf.data(), size_t(k * rows) * ds));
      }
    }
    return Status::ok();
  };
}

bool float_dtype(DType t) {
  return format_traits(t).kind == FormatKind::kFloat;
}

}  // namespace

Result<GgufExportReport> export_gguf(const GgufExportOptions& opt) {
  HERD_ASSIGN_OR_RETURN(Llama4Config cfg, load_config(opt.model_dir));
  HERD_ASSIGN_OR_RETURN(std::unique_ptr<TensorStore> store, TensorStore::open_dir(opt.model_dir));
  const Llama4TextConfig& t = cfg.text;
  GgufExportReport report;
  report.llama_cpp_differences = llama_cpp_differences(t);

  gguf::Writer w;
  std::string name = std::filesystem::path(opt.model_dir).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::path(opt.model_dir).parent_path().filename().string();
  add_llama4_metadata(cfg, opt.dtype, name, w);
  HERD_TRY(add_tokenizer_metadata(opt.model_dir, cfg, w));

  for (const TensorSpec& spec : text_tensor_table(cfg)) {
    const TensorView* v = store->find(spec.name);
    if (!v) return make_error("{}: tensor {} not found", opt.model_dir, spec.name);
    if (v->shape != spec.shape || !float_dtype(v->dtype))
      return make_error("{}: tensor {} is {} {}, expected a float tensor of shape {}", v->file,
                        spec.name, dtype_name(v->dtype), shape_str(v->shape),
                        shape_str(spec.shape));
    const std::vector<GgufTensorPlan> plan = gguf_tensor_plan(spec, t, opt.dtype);
    const int64_t H = t.hidden_size, I = t.intermediate_size, E = t.num_local_experts;
    for (size_t k = 0; k < plan.size(); ++k) {
      gguf::TensorFill fill;
      if (spec.role == TensorRole::kExpertsGateUp)  // gate = columns [0, I), up = [I, 2I)
        fill = transpose_fill(v, E, H, 2 * I, int64_t(k) * I, I, plan[k].type);
      else if (spec.role == TensorRole::kExpertsDown)
        fill = transpose_fill(v, E, I, H, 0, H, plan[k].type);
      else
        fill = copy_fill(v, plan[k].type);
      HERD_TRY(w.add_tensor(plan[k].name, plan[k].ne, plan[k].type, std::move(fill)));
      ++report.tensors;
    }
  }
  // llama3 frequency factors (the converter's generate_extra_tensors), F32 [head_dim / 2].
  const std::vector<float> factors = llama3_rope_factors(t);
  if (!factors.empty()) {
    HERD_TRY(w.add_tensor("rope_freqs.weight", {int64_t(factors.size())}, GgmlType::kF32,
                          [factors](gguf::TensorSink& out) {
                            return out.write(factors.data(), factors.size() * sizeof(float));
                          }));
    ++report.tensors;
  }
  HERD_TRY(w.write(opt.out_path));
  report.bytes = w.data_bytes();
  return report;
}

}  // namespace herd
