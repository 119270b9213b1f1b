// The run format of the fast path (LoadedModel::run, see weights.h): every matrix nn.Linear
// [out, in], experts repacked per expert, dtypes chosen by --quant (quant/quantize.h):
//
//   --quant    experts+shared   attention, dense, lm_head   router, embedding   norms
//   bf16       BF16             BF16                        BF16                f32
//   int8       Q8G              Q8G                         BF16                f32
//   int4       Q4G              BF16                        BF16                f32
//   int4-all   Q4G              Q4G                         BF16                f32
//
// BF16 stored weights are used in place (views into the mmap); everything else is converted
// layer by layer into owned memory, threaded over rows, and the source pages are released with
// madvise(MADV_DONTNEED) once copied, so peak RSS stays close to the run-format size.
// FP8 checkpoints (spec §2.4) keep their FP8 weights under --quant bf16 (run_format "fp8"); the
// int modes requantize them from the dequantized values.
//
// Pre-quantized directories (`herd quantize`, docs/prequantized.md) hold the run format itself:
// load_model maps them and fills `run` without any conversion; `text` stays empty.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "herd/base/status.h"
#include "herd/base/thread_pool.h"
#include "herd/model/tensor_table.h"
#include "herd/model/weights.h"
#include "herd/quant/quantize.h"

namespace herd {

struct QuantOptions {
  QuantMode mode = QuantMode::kBF16;
  bool progress = true;  // progress bar on stderr (only drawn when stderr is a terminal)
};

// Fills m.run (has_run, run_format). No-op when m.run already holds this format (pre-quantized
// model of the same format); a pre-quantized model of another format is an error, since its
// source weights are gone.
Status prepare_run_weights(LoadedModel& m, const QuantOptions& opt, ThreadPool& pool);

// What --precision f32 needs before a TextDecoder reads m.text: for FP8 checkpoints the routed
// experts are built once as f32 input-major copies (exact dequantization, 4 bytes per weight:
// meant for test-sized models); for pre-quantized models it is an error naming the model, since
// the reference needs the original checkpoint. No-op for ordinary BF16 checkpoints.
Status prepare_reference_weights(LoadedModel& m, ThreadPool& pool);

// Matrices converted (quantized, repacked or copied) by prepare_run_weights since the process
// started; a pre-quantized model adds none. For tests and `herd bench`'s load report.
uint64_t run_weight_conversions();

// ---- Pre-quantized directories (run_weights_io.cc) ----

// config.json's quantization_config says quant_method "herd".
bool is_herd_prequantized(const Llama4Config& cfg);
// The directory layout, shared with its writer (convert/prequant_save.h): format version, and the
// stored name and shape of a table tensor's run weight.
inline constexpr int kPrequantFormatVersion = 1;
std::string prequant_tensor_name(const TensorSpec& s);
std::vector<int64_t> prequant_tensor_shape(const TensorSpec& s, const Llama4TextConfig& t);
// load_model's hook for pre-quantized directories: m.config and m.store are set; fills m.run.
Status load_prequantized(LoadedModel& m);

// ---- FP8 checkpoints (run_weights_fp8.cc) ----

// The checkpoint stores routed experts unfused per expert (compressed-tensors FP8 layout).
bool has_per_expert_tensors(const Llama4Config& cfg, const TensorStore& store);
// Per-expert tensors or any F8_E4M3 text tensor: load_model hands it to the loader below.
bool needs_fp8_loader(const Llama4Config& cfg, const TensorStore& store);
// load_model's hook for such checkpoints: m.config and m.store are set; fills m.text with views
// (FP8 Linears get f32 row_scale copies in m.owned). The routed experts are not viewable in the
// reference's input-major layout: m.text's experts stay empty until prepare_reference_weights.
Status load_per_expert_checkpoint(LoadedModel& m);

}  // namespace herd
