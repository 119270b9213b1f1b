// GGUF import: a llama.cpp `llama4` GGUF (one file or split parts) opened as a LoadedModel with
// no conversion pass. Every weight is a view into the mapping: GGUF matrices are row-major
// [out][in] (ne[0] = in), which is herd's run layout, so m.run and m.text are the same views:
//   - the routed experts are per-expert out-major (ffn_{gate,up}_exps [E][I][H],
//     ffn_down_exps [E][H][I]) with gate and up in two tensors: LayerWeights::experts_up is set
//     and experts_gate_up holds the gate rows only (model/text.cc reads both layouts);
//   - Q/K are not permuted (llama.cpp's converter keeps HF's interleaved pairs), the router is
//     ffn_gate_inp [E][H], norms are converted to f32 (they are tiny).
// Hyperparameters come from the llama4.* keys; where llama.cpp's llama4 model hard-codes a
// value (spec §2.5: chunk 8192, NoPE every 4th layer, temperature tuning 8192 / 0.1, QK-norm
// iff the expert count is not 128; attention.sliding_window = 0 turns chunking and NoPE off)
// herd takes the same literal, so both engines compute the same function of the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "herd/base/dtype.h"
#include "herd/base/status.h"
#include "herd/io/gguf_files.h"
#include "herd/model/config.h"
#include "herd/model/weights.h"

namespace herd {

// run_format of a model loaded from GGUF: its weights are what the file holds.
inline constexpr const char* kGgufRunFormat = "gguf";

// DType of a ggml tensor type, for the types herd maps (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS); nullopt for the rest (the other
// IQ types, TQ*, Q8_1, MXFP4, ...).
std::optional<DType> dtype_for_ggml_type(uint32_t ggml_type);
// Whether the fast path (--precision auto) has kernels for `t` in this build. F32 and BF16
// today; the GGUF block formats and F16 when their kernels land (ops/ format table).
bool fast_kernels_for(DType t);
// Whether the f32 reference (--precision f32) can read `t`: F32, BF16, F16 today; the block
// formats when ops/ dequantizes them.
bool reference_reads(DType t);

// Llama4Config from the metadata of `files` (general.architecture must be llama4).
Result<Llama4Config> gguf_llama4_config(const gguf::Files& files);

// Opens `path` (any part of a split set) and views every text tensor; errors name the file, the
// tensor and what was expected.
Result<LoadedModel> load_gguf_model(const std::string& path);

// prepare_run_weights' (fast) and prepare_reference_weights' (reference) check for GGUF models:
// every weight is readable by that path, else one error naming the first tensor and its type.
Status check_gguf_run_weights(const LoadedModel& m, bool fast = true);

// Engine::open on a GGUF: herd's chat always renders the Llama 4 format; warns when the file's
// tokenizer.chat_template is another one.
void check_gguf_chat_template(const gguf::Files& files);

// `herd info` on a GGUF: what herd does with each tensor.
struct GgufTensorUse {
  std::string name;
  std::string type;  // ggml type name
  uint64_t bytes = 0;
  std::string use;  // "as-is: BF16 kernels", "f32 copy (norm)", "unsupported: ..."
};
struct GgufSummary {
  std::vector<GgufTensorUse> tensors;
  std::vector<std::pair<std::string, uint64_t>> bytes_by_type;  // sorted by type name
};
GgufSummary summarize_gguf(const gguf::Files& files);

}  // namespace herd
