#include "herd/base/progress.h"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

namespace herd {

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      active_(enabled && stderr_is_tty()),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  finish();
}

bool Progress::stderr_is_tty() {
  return ::isatty(STDERR_FILENO) == 1;
}

void Progress::set_detail(const std::string& detail) {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(mu_);
  detail_ = detail;
}

void Progress::add(uint64_t n) {
  const uint64_t done = done_.fetch_add(n, std::memory_order_relaxed) + n;
  if (!active_) return;
  // Redraw only when the per-mille value moves: a few hundred writes for a whole model.
  const int permille = int(std::min<uint64_t>(done, total_) * 1000 / total_);
  int last = last_permille_.load(std::memory_order_relaxed);
  if (permille <= last) return;
  if (!last_permille_.compare_exchange_strong(last, permille)) return;
  draw(done);
}

void Progress::draw(uint64_t done) {
  std::lock_guard<std::mutex> lock(mu_);
  constexpr int kWidth = 30;
  const double frac = double(std::min(done, total_)) / double(total_);
  const int filled = int(frac * kWidth);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = 0;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string rate;
  if (!unit_.empty() && secs > 0 && done > 0) {
    const double per_s = double(done) / secs;
    const double left = double(total_ - std::min(done, total_)) / per_s;
    rate = fmt::format(" {:.1f} {}/s, ETA {:.0f}s", per_s, unit_, left);
  }
  std::fprintf(stderr, "\r%s [%s] %5.1f%% %6.1fs%s %s\033[K", label_.c_str(), bar, frac * 100.0,
               secs, rate.c_str(), detail_.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (!active_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!drawn_) return;
  }
  draw(total_);
  std::lock_guard<std::mutex> lock(mu_);
  std::fputc('\n', stderr);
  active_ = false;
}

}  // namespace herd
