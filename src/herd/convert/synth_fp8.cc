// `herd synth --fp8`: the compressed-tensors FP8 layout (spec §2.4) with Meta's per-row recipe
// (spec §2.3 quantize_fp8_per_row: scale = rowmax / 448), applied to the BF16 values the plain
// synth would write, so an FP8 model and its BF16 twin differ only by the quantization.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "herd/convert/synth.h"
#include "herd/quant/fp8.h"

namespace herd {

std::string synth_fp8_quantization_json() {
  // What the Maverick FP8 release's config is known to say (spec §2.4): compressed-tensors,
  // float-quantized, static per-channel weights, dynamic per-token activations. The ignore list
  // is ours: everything but the routed experts.
  nlohmann::ordered_json scheme = {{"targets", {"Linear"}},
                                   {"weights",
                                    {{"num_bits", 8},
                                     {"type", "float"},
                                     {"strategy", "channel"},
                                     {"symmetric", true},
                                     {"dynamic", false}}},
                                   {"input_activations",
                                    {{"num_bits", 8},
                                     {"type", "float"},
                                     {"strategy", "token"},
                                     {"symmetric", true},
                                     {"dynamic", true}}}};
  nlohmann::ordered_json q = {{"quant_method", "compressed-tensors"},
                              {"format", "float-quantized"},
                              {"quantization_status", "compressed"},
                              {"config_groups", {{"group_0", scheme}}},
                              {"ignore",
                               {"re:.*self_attn.*", "re:.*router", "re:.*shared_expert.*",
                                "re:.*feed_forward\\.(gate|up|down)_proj", "re:.*lm_head",
                                "re:vision_model.*", "re:multi_modal_projector.*"}}};
  return q.dump();
}

void synth_fill_fp8(uint64_t seed, const TensorSpec& spec, const Llama4Config& cfg, uint8_t* q,
                    uint8_t* scales_bf16) {
  const int64_t rows = spec.shape[0], cols = spec.shape[1];
  std::vector<uint8_t> bf(size_t(rows * cols) * 2);
  synth_fill_bf16(seed, spec, cfg, bf.data());
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c) {
      uint16_t b;
      std::memcpy(&b, &bf[size_t(r * cols + c) * 2], 2);
      row[size_t(c)] = bf16_to_f32(b);
      amax = std::max(amax, std::fabs(row[size_t(c)]));
    }
    // The scale is stored as BF16: round it up to a BF16 value so rowmax / scale <= 448 and
    // nothing saturates.
    uint16_t sb = f32_to_bf16(amax / kFp8E4M3Max);
    if (bf16_to_f32(sb) < amax / kFp8E4M3Max) ++sb;
    if (scales_bf16) std::memcpy(scales_bf16 + 2 * r, &sb, 2);
    if (q) quantize_row_fp8(row.data(), cols, bf16_to_f32(sb), q + r * cols);
  }
}

}  // namespace herd
