// Which weights each --quant mode converts to which format (spec §2.3), and row encoders from
// f32 into a run-format dtype. The packed layouts themselves are in formats.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "herd/base/dtype.h"

namespace herd {

enum class QuantMode : uint8_t {
  kBF16,     // everything bf16 (FP8 checkpoints keep their FP8 weights)
  kInt8,     // every Linear (attention, experts, shared, dense, lm_head) Q8G
  kInt4,     // Meta's int4_mixed: routed + shared experts of MoE layers Q4G, the rest bf16
  kInt4All,  // int4 + attention, dense FFN and lm_head Q4G
  // ggml's block formats (32 per block, f16 scale: 8.5 and 4.5 bits per weight) on every Linear,
  // as llama-quantize's Q8_0 and `--pure` Q4_0 lay them out, with herd's least-error scales
  // (quant/gguf_blocks.h); run by the GGUF kernels.
  kQ8_0,
  kQ4_0,
};

// The names --quant takes, for flag checks and messages: "bf16, int8, int4, int4-all, q8_0, q4_0".
inline constexpr std::string_view kQuantModeNames[] = {"bf16",     "int8", "int4",
                                                       "int4-all", "q8_0", "q4_0"};
inline constexpr std::string_view kQuantModeList = "bf16, int8, int4, int4-all, q8_0 or q4_0";
std::optional<QuantMode> parse_quant_mode(std::string_view name);  // one of kQuantModeNames
std::string_view quant_mode_name(QuantMode m);

// What a weight is to the quantization policy (model/ maps tensor roles onto these).
enum class WeightClass : uint8_t {
  kEmbedding,  // row lookups: always bf16
  kRouter,     // tiny and decides routing: always bf16
  kExpert,     // routed experts of MoE layers
  kShared,     // shared expert of MoE layers
  kAttention,  // q, k, v, o
  kDense,      // dense FFN of non-MoE layers
  kLmHead,
};

// The run dtype for a weight: BF16, Q8G, Q4G, GGUF_Q8_0 or GGUF_Q4_0. (A stored FP8 weight under
// kBF16 stays FP8: the caller decides that, since bf16 would double its size without adding
// precision.)
DType run_dtype(QuantMode m, WeightClass c);

// Encodes one row of `cols` floats as `to` (BF16, F32, Q8G or Q4G). For packed formats `scales`
// receives quant_groups(cols) values; dst receives the row's bytes (packed_row_bytes or
// cols * dtype_size).
void encode_row(const float* x, int64_t cols, DType to, uint8_t* dst, float* scales);
// Bit-identical to quantize_row_q8g / quantize_row_q4g (formats.h), written to vectorize
// (no libm call per element): what the load-time conversion uses.
void quantize_row_q8g_fast(const float* x, int64_t cols, uint8_t* q, float* scales);
void quantize_row_q4g_fast(const float* x, int64_t cols, uint8_t* q, float* scales);

// Bytes one encoded row occupies (packed or plain).
int64_t encoded_row_bytes(DType t, int64_t cols);

}  // namespace herd
