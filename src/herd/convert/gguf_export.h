// `herd export-gguf`: a checkpoint directory -> one llama.cpp `llama4` GGUF file, so that
// llama.cpp (node-llama-cpp) can serve as an independent reference for herd's logits.
//
// Follows llama.cpp's own converter (convert_hf_to_gguf.py, class Llama4Model; spec §2.5):
// tensor names token_embd / blk.N.* / output_norm / output / rope_freqs, fused experts split
// and transposed to ffn_{gate,up,down}_exps, Q/K not permuted, 1-D tensors and the router kept
// F32, vocabulary as a `gpt2` BPE with pre-tokenizer `llama4`. Vision tensors are not exported.
#pragma once

#include <string>
#include <vector>

#include "herd/base/status.h"
#include "herd/io/gguf.h"
#include "herd/model/config.h"
#include "herd/model/tensor_table.h"

namespace herd {

enum class GgufDtype { kF32, kF16, kBF16 };
bool parse_gguf_dtype(const std::string& s, GgufDtype* out);  // "f32", "f16", "bf16"

struct GgufExportOptions {
  std::string model_dir;
  std::string out_path;
  GgufDtype dtype = GgufDtype::kF32;  // F32 holds BF16 weights exactly
};

struct GgufExportReport {
  size_t tensors = 0;
  uint64_t bytes = 0;
  // Config facts llama.cpp cannot express (it hard-codes chunk 8192, NoPE every 4th layer,
  // temperature tuning 8192 / 0.1, QK-norm iff experts != 128): llama.cpp will compute
  // something else than herd for such a model. Empty when the export is faithful.
  std::vector<std::string> llama_cpp_differences;
};

Result<GgufExportReport> export_gguf(const GgufExportOptions& opt);

// --- pieces, exposed for tests ---

// What llama.cpp's llama4 graph will do with `cfg` that HF would not (see the report above).
std::vector<std::string> llama_cpp_differences(const Llama4TextConfig& cfg);

// GGUF metadata for the model itself (general.*, llama4.*); tokenizer keys come separately.
void add_llama4_metadata(const Llama4Config& cfg, GgufDtype dtype, const std::string& name,
                         gguf::Writer& w);


// GGUF name, GGML ne and element type of one table tensor as exported (the fused expert
// tensor gives two outputs: gate and up). Empty for tensors that are not exported.
struct GgufTensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  gguf::GgmlType type;
};
std::vector<GgufTensorPlan> gguf_tensor_plan(const TensorSpec& spec, const Llama4TextConfig& cfg,
                                             GgufDtype dtype);

// The tokenizer of `model_dir` as GGUF tokenizer.* keys, padded with unused "[PADi]" tokens to
// `vocab_size` rows (llama.cpp's vocabulary size must equal token_embd's rows).
Status add_tokenizer_metadata(const std::string& model_dir, const Llama4Config& cfg,
                              gguf::Writer& w);

}  // namespace herd
