// A one-line progress bar on stderr for long conversions (quantization at load, `herd quantize`)
// and long prefills (with show_rate: units per second and the time left).
// Thread-safe: workers call add() from the pool; the line is redrawn at most once per percent.
// Silent unless enabled and stderr is a terminal, so logs and CI output stay clean.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace herd {

class Progress {
 public:
  // `total` in any unit (bytes here); `enabled` = false keeps it silent (--quiet).
  Progress(std::string label, uint64_t total, bool enabled);
  ~Progress();  // finishes the line if anything was drawn
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t n);
  void set_detail(const std::string& detail);  // e.g. "layer 3/16"
  // Also print the rate so far in `unit`s per second and the ETA at that rate ("tok").
  void show_rate(std::string unit) { unit_ = std::move(unit); }
  void finish();
  bool active() const { return active_; }

  // What the default `enabled` should be: stderr is a TTY.
  static bool stderr_is_tty();

 private:
  void draw(uint64_t done);

  std::string label_, detail_, unit_;
  uint64_t total_;
  bool active_;
  bool drawn_ = false;
  std::atomic<uint64_t> done_{0};
  std::atomic<int> last_permille_{-1};
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace herd
