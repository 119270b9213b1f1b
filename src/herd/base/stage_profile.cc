#include "herd/base/stage_profile.h"

namespace herd {

namespace {

std::array<std::atomic<int64_t>, kStageCount> g_ns{}, g_calls{};

}  // namespace

namespace stage_detail {

std::atomic<bool> g_on{false};

void add(Stage s, int64_t ns) {
  g_ns[size_t(s)].fetch_add(ns, std::memory_order_relaxed);
  g_calls[size_t(s)].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace stage_detail

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::kForward:
      return "forward";
    case Stage::kEmbed:
      return "embed";
    case Stage::kNorm:
      return "norm";
    case Stage::kQkv:
      return "qkv";
    case Stage::kRopeQkNorm:
      return "rope_qk_norm";
    case Stage::kKvStore:
      return "kv_store";
    case Stage::kAttention:
      return "attention";
    case Stage::kWo:
      return "wo";
    case Stage::kResidual:
      return "residual";
    case Stage::kMoe:
      return "ffn";
    case Stage::kMoeProducts:
      return "ffn_products";
    case Stage::kLmHead:
      return "lm_head";
    case Stage::kCount:
      break;
  }
  return "?";
}

void StageTotals::add(const StageTotals& o) {
  for (size_t i = 0; i < kStageCount; ++i) ns[i] += o.ns[i], calls[i] += o.calls[i];
}

void stage_profile_enable(bool on) {
  stage_profile_take();
  stage_detail::g_on.store(on, std::memory_order_relaxed);
}

StageTotals stage_profile_take() {
  StageTotals t;
  for (size_t i = 0; i < kStageCount; ++i) {
    t.ns[i] = g_ns[i].exchange(0, std::memory_order_relaxed);
    t.calls[i] = g_calls[i].exchange(0, std::memory_order_relaxed);
  }
  return t;
}

}  // namespace herd
