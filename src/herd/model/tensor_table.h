// The one tensor table (gemma.cpp's ForEachTensor idea): every tensor of a Llama 4 checkpoint
// with its Hugging Face name (spec §2.1), its shape computed from the config, stored dtype and
// whether it must exist. Loading, validation, quantization, saving, `herd synth`, `herd info`,
// GGUF export and tests all walk this same list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "herd/base/dtype.h"
#include "herd/model/config.h"

namespace herd {

enum class TensorRole : uint8_t {
  kEmbedding,      // [V, H]
  kAttnNorm,       // input_layernorm [H]
  kAttnQ,          // [nh*hd, H]
  kAttnK,          // [nkv*hd, H]
  kAttnV,          // [nkv*hd, H]
  kAttnO,          // [H, nh*hd]
  kFfnNorm,        // post_attention_layernorm [H]
  kRouter,         // [E, H]
  kExpertsGateUp,  // [E, H, 2I]  input-major, no ".weight"; gate = first I columns
  kExpertsDown,    // [E, I, H]   input-major, no ".weight"
  kSharedGate,     // [I, H]
  kSharedUp,       // [I, H]
  kSharedDown,     // [H, I]
  kDenseGate,      // [Imlp, H]
  kDenseUp,        // [Imlp, H]
  kDenseDown,      // [H, Imlp]
  kFinalNorm,      // [H]
  kLmHead,         // [V, H]
  kVision,         // vision encoder / adapter / projector tensor (spec §2.1 second table)
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::BF16;
  bool required = true;
  TensorRole role = TensorRole::kEmbedding;
  int layer = -1;  // decoder (or vision encoder) layer index, -1 for global tensors
  // Per-expert tensors (text_tensor_table_per_expert only): expert index and which projection
  // (0 gate_proj, 1 up_proj: role kExpertsGateUp; 2 down_proj: role kExpertsDown). -1 otherwise.
  int expert = -1;
  int expert_part = -1;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Text tensors in file order (embedding, layers 0..L-1, final norm, lm_head).
std::vector<TensorSpec> text_tensor_table(const Llama4Config& cfg);
// The same list for checkpoints that store routed experts unfused, one nn.Linear per expert
// (the compressed-tensors FP8 release, spec §2.4): each fused experts.gate_up_proj /
// experts.down_proj entry is replaced by, for e = 0..E-1,
//   experts.{e}.gate_proj.weight [I, H], experts.{e}.up_proj.weight [I, H] (role kExpertsGateUp)
//   experts.{e}.down_proj.weight [H, I]                                     (role kExpertsDown)
// Stored dtypes are decided by the file (FP8 with a ".weight_scale" companion, or BF16).
std::vector<TensorSpec> text_tensor_table_per_expert(const Llama4Config& cfg);
// Vision tensors; empty when cfg.vision is absent.
std::vector<TensorSpec> vision_tensor_table(const Llama4Config& cfg);
// Both.
std::vector<TensorSpec> tensor_table(const Llama4Config& cfg);

}  // namespace herd
