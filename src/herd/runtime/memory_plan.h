// `herd plan`: does a Llama 4 model fit a machine, and how many tokens of context fit beside it,
// for herd's KV layout (spec §6: NoPE layers keep every token, chunked layers only a window of
// the current chunk) and for a full-KV-on-every-layer layout. Pure arithmetic from the config:
// weights from the tensor table's shapes (model/param_count) in the chosen format, KV from the
// page layout the runtime really allocates (runtime/kv_cache). Every assumption is a field here,
// so `herd plan` prints it and tests check it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "herd/base/status.h"
#include "herd/model/config.h"
#include "herd/model/tensor_table.h"
#include "herd/ops/kv_view.h"

namespace herd {

// How weights are stored (spec §2.3 for Meta's recipes):
//   bf16  every tensor 2 bytes;
//   fp8   Meta's fp8_mixed: routed experts of MoE layers other than the first and last decoder
//         layer as fp8 e4m3 (1 byte) with one f32 scale per output row; the rest bf16;
//   int8  herd's int8: every linear layer (attention, experts, dense FFN, lm_head) 1 byte plus
//         one f32 scale per 128 inputs; embedding, router, norms and vision bf16;
//   int4  Meta's int4_mixed: routed and shared experts 4 bits plus one f32 scale per 128
//         inputs; the rest bf16.
enum class WeightFormat { kBF16, kFP8, kInt8, kInt4 };
const char* weight_format_name(WeightFormat f);
bool parse_weight_format(const std::string& s, WeightFormat* out);

// Scout / Maverick as released (spec §1.1, Instruct: max_position_embeddings 10485760 / 1048576),
// with the vision tower. Error for any other name.
Result<Llama4Config> known_model_config(const std::string& name);

struct PlanTarget {
  bool gpu = false;
  std::string name;              // "h100", "h200", "ram"
  int64_t count = 1;             // GPUs (tensor parallel: weights and KV split evenly)
  int64_t device_bytes = 0;      // per GPU, or the RAM size
  double usable_fraction = 1.0;  // GPUs: 0.9
  int64_t reserve_bytes = 0;     // activations and workspace, all devices together
};
// GPUs: 80 GiB per H100, 141 GiB per H200, 90% usable, kGpuReserveBytes per GPU reserved.
Result<PlanTarget> gpu_target(const std::string& gpu, int64_t count);
// A CPU machine with `ram_bytes` of memory for herd (all of it usable); the reserve is computed
// by plan_memory from the decoder's activation buffers (memory_plan.cc).
PlanTarget ram_target(int64_t ram_bytes);

// Per GPU: CUDA context and libraries (~1 GiB), activations and attention workspace of one
// prefill slice, communication buffers. An assumption, printed with every plan.
inline constexpr int64_t kGpuReserveBytes = int64_t(4) << 30;
// CPU: what a herd process holds besides weights, KV and activations (binary, libraries, thread
// stacks, allocator arenas), measured: `herd bench -m tiny -t 1 -p 32 -n 4 -r 1 --ctx 64` peaks
// at 11.8 MB RSS, of which 0.7 MB are the tiny preset's weights (2026-12-04).
inline constexpr int64_t kCpuRuntimeBytes = int64_t(11) << 20;
// CPU: bytes per context token outside the KV pages. Token ids (int32): the request's prompt,
// the sequence's history, the cache's token list, the caller's copy (16 B). The page pool's
// bookkeeping, per 32-token page of its capacity (runtime/kv_pool.cc): data pointer 8, Meta 40,
// the page's tokens 128, index and children buckets 16, their nodes once published 64 (256 B,
// 8 B per token). The pool is sized to --ctx, so it counts per context token.
inline constexpr int64_t kCpuBytesPerTokenOutsideKv = 24;

struct PlanInput {
  Llama4Config cfg;
  WeightFormat format = WeightFormat::kBF16;
  KvType kv_type = KvType::kBF16;
  PlanTarget target;
  int64_t ubatch = 512;    // prompt tokens per forward: activations, chunked-layer window
  int64_t page_rows = 32;  // the runtime's KV page size
  int64_t sequences = 1;   // every sequence at the same context
  // CPU: the vision tower is not resident (the text path never reads it); GPUs: counted.
  bool count_vision = true;
};

struct KvLayoutPlan {
  int64_t kv_bytes_per_token = 0;  // per sequence, KV that grows with the context
  int64_t kv_fixed_bytes = 0;      // per sequence, KV that does not (chunked-layer windows)
  int64_t max_context_tokens = 0;  // per sequence; 0 when nothing fits
  int64_t layers_growing = 0;      // layers whose KV grows with the context
  // Allocation granularity: KV grows by pages of page_rows tokens (page_bytes each); the fixed
  // part is window_pages pages of window_page_bytes, taken one by one as the context grows.
  int64_t page_rows = 1, page_bytes = 0, window_pages = 0, window_page_bytes = 0;
  // KV bytes of one sequence at n tokens.
  int64_t kv_bytes(int64_t n) const;
};

struct MemoryPlan {
  PlanInput in;
  int64_t params = 0;            // counted parameters (vision included when counted)
  int64_t quantized_params = 0;  // parameters stored in the low-bit format
  int64_t weights_bytes = 0;
  int64_t usable_bytes = 0;          // count × device × usable fraction
  int64_t reserve_bytes = 0;         // activations / workspace
  int64_t outside_kv_per_token = 0;  // CPU only: token lists, per sequence
  int64_t kv_budget_bytes = 0;       // usable − weights − reserve (may be negative)
  bool fits = false;                 // the weights, the reserve and one token of context fit
  KvLayoutPlan herd, full_kv;
  int64_t max_position_embeddings = 0;
  // Predicted bytes in use (weights + reserve + every sequence's KV and token lists) at n tokens.
  int64_t bytes_at(int64_t n) const;
};

Result<MemoryPlan> plan_memory(const PlanInput& in);

// One tensor's bytes in format f (the rule above), and whether it is a routed expert tensor
// (runtime/expert_plan.h splits those over ranks).
int64_t plan_tensor_bytes(const TensorSpec& s, WeightFormat f, int64_t n_layers);
bool plan_is_routed(TensorRole r);

// Decoder activation and workspace bytes for one forward of `ubatch` tokens on a CPU (the
// buffers TextDecoder::resize sizes, the prepared activations and one logits row).
int64_t cpu_activation_bytes(const Llama4TextConfig& t, int64_t ubatch);

}  // namespace herd
