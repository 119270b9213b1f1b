// Expert parallelism at load time: a rank keeps views of its own share of the routed experts
// only, so conversion (prepare_run_weights) reads and converts only those and the other experts'
// pages of the mmap are never touched. Everything else of the model stays whole.
#pragma once

#include <cstdint>

#include "herd/model/weights.h"

namespace herd {

// Narrows m (after load_model, before prepare_run_weights; or a pre-quantized model's run
// weights) to experts [share.first, share.first + share.count) of every MoE layer.
Status narrow_experts(LoadedModel& m, ExpertShare share);

// Routed experts m holds per MoE layer.
int64_t held_experts(const LoadedModel& m);
bool holds_expert(const LoadedModel& m, int64_t e);

// Weight bytes resident in this process: owned (converted) buffers plus the resident pages of
// its mappings of the model's safetensors files (/proc/self/smaps Rss; pages only in the page
// cache, e.g. touched by another rank, do not count).
int64_t resident_weight_bytes(const LoadedModel& m);

}  // namespace herd
