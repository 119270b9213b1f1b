// Typed per-layer views of a loaded checkpoint. BF16/F16/F32 weights are views into the mmap'd
// safetensors (never copied); norm gains are converted to f32 at load (they are tiny).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "herd/io/safetensors.h"
#include "herd/model/config.h"
#include "herd/model/expert_exchange.h"
#include "herd/ops/weight.h"

namespace herd {
namespace gguf {
class Files;
}

struct LayerWeights {
  std::vector<float> attn_norm;  // [H]   input_layernorm
  WeightRef wq;                  // [nh*hd, H]
  WeightRef wk;                  // [nkv*hd, H]
  WeightRef wv;                  // [nkv*hd, H]
  WeightRef wo;                  // [H, nh*hd]
  std::vector<float> ffn_norm;   // [H]   post_attention_layernorm
  // MoE layers (kind.moe)
  WeightRef router;              // [E, H]
  WeightRef experts_gate_up;     // [E*H, 2I]: expert e = rows [e*H, (e+1)*H), input-major;
                                 //   columns [0, I) = gate, [I, 2I) = up
  WeightRef experts_down;        // [E*I, H]: expert e = rows [e*I, (e+1)*I), input-major
  // GGUF files only (model/gguf_load.h): up rows [E*I, H] out-major; experts_gate_up then holds
  // the gate rows [E*I, H] and experts_down [E*H, I], out-major too. Empty otherwise.
  WeightRef experts_up;
  WeightRef shared_gate;         // [I, H]
  WeightRef shared_up;           // [I, H]
  WeightRef shared_down;         // [H, I]
  // Dense layers (!kind.moe)
  WeightRef dense_gate;          // [Imlp, H]
  WeightRef dense_up;            // [Imlp, H]
  WeightRef dense_down;          // [H, Imlp]
};

struct TextWeights {
  WeightRef embed;               // [V, H]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm; // [H]
  WeightRef lm_head;             // [V, H] (embed when tie_word_embeddings)
};

// A checkpoint opened for inference: config + mmap'd tensors + typed views.
// Memory a converted weight lives in (quantized or repacked at load, or a pre-quantized file).
struct OwnedBuffer {
  std::unique_ptr<uint8_t, void (*)(void*)> data{nullptr, nullptr};
  size_t bytes = 0;
  // Large buffers are their own mapping (2 MiB aligned, for transparent huge pages); this
  // unmaps it, and `data` then frees nothing.
  std::shared_ptr<void> mapping;
};

struct LoadedModel {
  std::string dir;
  Llama4Config config;
  std::unique_ptr<TensorStore> store;  // owns the mappings the views point into
  TextWeights text;                    // as stored: the --precision f32 reference reads these
  // The run format of the fast path (--precision auto), filled by prepare_run_weights
  // (model/run_weights.h). Every matrix is in nn.Linear layout [out, in]; in particular the
  // experts are repacked per expert e: experts_gate_up rows [e*2I, (e+1)*2I) = [gate (I rows);
  // up (I rows)] x H, experts_down rows [e*H, (e+1)*H) = H x I. Dtypes per --quant.
  TextWeights run;
  bool has_run = false;
  std::string run_format;  // "bf16", "int8", "int4", "int4-all", "fp8", ...
  std::vector<OwnedBuffer> owned;
  std::shared_ptr<const gguf::Files> gguf;  // GGUF models: the mapped files the views point into
  // Expert parallelism: the routed experts of every MoE layer this process holds, first..+count
  // (count < 0: all). narrow_experts (model/expert_shard.h) sets it; expert weights then hold
  // only these experts, local index e - first.
  ExpertShare experts{0, -1};
};

// Opens a model directory: config.json, the safetensors (single or sharded), every tensor of the
// tensor table checked for presence, dtype and shape (errors name the tensor and the expected
// shape). Vision tensors are checked only when present in the config.
Result<LoadedModel> load_model(const std::string& dir);

}  // namespace herd
