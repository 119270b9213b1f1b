// Writing a prepared model's run weights as a pre-quantized model directory (`herd quantize`).
#pragma once

#include <string>

#include "herd/base/status.h"
#include "herd/model/weights.h"

namespace herd {

// Writes m.run (prepared) as a pre-quantized model directory: config.json (+quantization_config),
// generation_config.json and tokenizer files copied from m.dir, the run tensors in safetensors
// (vision tensors copied as stored). `shards` = 0 picks about 4 GB per file.
Status save_prequantized(const LoadedModel& m, const std::string& out_dir, int shards = 0);

}  // namespace herd
