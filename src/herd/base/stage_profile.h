// Wall time per stage of the decoder's forward step, for `herd bench --profile`: where a prefill
// or a decode step goes without a sampling profiler (perf attributes a parallel section to
// whichever kernel each thread runs, not to the step it belongs to). Off by default; off, a stage
// costs one relaxed atomic load. Stages are timed on the thread that calls forward().
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace herd {

enum class Stage : uint8_t {
  kForward,      // a whole forward() step: the total the others are shares of
  kEmbed,        // embedding rows and the step's RoPE cos / sin
  kNorm,         // RMSNorm before attention and MLP (with the residual add before it), final norm
  kQkv,          // q / k / v activation preparation and products
  kRopeQkNorm,   // RoPE, QK-norm and the temperature of NoPE layers
  kKvStore,      // K / V rows into the cache
  kAttention,    // the attention kernel over the cache
  kWo,           // the output projection
  kResidual,     // the last layer's residual addition (the others run with the next norm)
  kMoe,          // the feed-forward block: router, experts, shared expert (dense MLP too)
  kMoeProducts,  // inside kMoe: the experts' and shared expert's products
  kLmHead,       // logits
  kCount,
};
inline constexpr size_t kStageCount = size_t(Stage::kCount);
const char* stage_name(Stage s);

struct StageTotals {
  std::array<int64_t, kStageCount> ns{};
  std::array<int64_t, kStageCount> calls{};
  void add(const StageTotals& o);
};

void stage_profile_enable(bool on);
// The totals since the previous take (or the enable), and resets them.
StageTotals stage_profile_take();

namespace stage_detail {
extern std::atomic<bool> g_on;
void add(Stage s, int64_t ns);
}  // namespace stage_detail

// Times a stage from construction to destruction. Consecutive stages of one function share one:
// to() ends the current stage and starts the next; stop() or the destructor ends the last.
class StageScope {
 public:
  explicit StageScope(Stage s) : s_(s), on_(stage_detail::g_on.load(std::memory_order_relaxed)) {
    if (on_) t0_ = std::chrono::steady_clock::now();
  }
  void to(Stage next) {
    if (on_) {
      const auto t = std::chrono::steady_clock::now();
      stage_detail::add(s_, std::chrono::duration_cast<std::chrono::nanoseconds>(t - t0_).count());
      t0_ = t;
    }
    s_ = next;
  }
  void stop() {  // ends the current stage; nothing more is timed
    to(s_);
    on_ = false;
  }
  ~StageScope() { to(s_); }
  StageScope(const StageScope&) = delete;
  StageScope& operator=(const StageScope&) = delete;

 private:
  Stage s_;
  bool on_;
  std::chrono::steady_clock::time_point t0_{};
};

}  // namespace herd
