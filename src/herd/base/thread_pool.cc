#include "herd/base/thread_pool.h"

#include "herd/base/log.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <utility>

namespace herd {

int ThreadPool::physical_cores() {
  // Count distinct (physical id, core id) pairs; SMT siblings share a core's FPU and bandwidth.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int phys = 0;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    int v = std::atoi(line.c_str() + colon + 1);
    if (key == "physical id") phys = v;
    if (key == "core id") cores.insert({phys, v});
  }
  int n = int(cores.size());
  if (n <= 0) n = int(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = std::min(n_threads > 0 ? n_threads : physical_cores(), kMaxThreads);
  for (int i = 1; i < n_threads_; ++i) {
    try {
      threads_.emplace_back([this, i] { worker(i); });
    } catch (const std::system_error& e) {
      // Workers only ever see indices below n_threads_, so shrinking here is safe: none has
      // been handed a job yet.
      log(LogLevel::kWarn, "thread pool: could not start thread {} of {} ({}); using {}", i + 1,
          n_threads_, e.what(), i);
      n_threads_ = i;
      break;
    }
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  { std::lock_guard<std::mutex> lk(mu_); }
  cv_start_.notify_all();
  for (auto& t : threads_) t.join();
}

namespace {
// About a millisecond of polling: long enough to bridge the gaps between the parallel sections
// of one forward pass, short enough that an idle server's workers sleep.
constexpr int kSpinIterations = 1 << 15;
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      // Yield now and then: on an oversubscribed machine the thread we wait for may need our core.
      if ((spin & 1023) == 1023)
        std::this_thread::yield();
      else
        cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      sleepers_.fetch_add(1);
      std::unique_lock<std::mutex> lk(mu_);
      cv_start_.wait(lk, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    (*job_.load(std::memory_order_acquire))(index, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run_on_all(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_.store(&fn, std::memory_order_release);
  pending_.store(n_threads_ - 1, std::memory_order_release);
  generation_.fetch_add(1);  // seq_cst: pairs with the sleeper count (Dekker)
  if (sleepers_.load() > 0) {
    // Taking the lock orders this wake-up after a sleeper's last check of the generation.
    std::lock_guard<std::mutex> lk(mu_);
    cv_start_.notify_all();
  }
  fn(0, n_threads_);
  for (int spin = 1; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if ((spin & 255) == 0)
      std::this_thread::yield();
    else
      cpu_relax();
  }
}

void ThreadPool::parallel_for(size_t n, size_t grain,
                              const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  std::atomic<size_t> next{0};
  run_on_all([&](int ith, int) {
    for (;;) {
      size_t b = next.fetch_add(grain);
      if (b >= n) break;
      fn(b, std::min(n, b + grain), ith);
    }
  });
}

namespace {
// A share [front, back) packed in one word, so the owner's take and a thief's split are one CAS.
struct alignas(64) Share {
  std::atomic<uint64_t> fb{0};
};
constexpr uint64_t pack(uint64_t f, uint64_t b) {
  return f << 32 | b;
}
}  // namespace

void ThreadPool::parallel_ranges(size_t n, const std::function<void(size_t, int)>& fn) {
  if (n == 0) return;
  if (n_threads_ == 1 || n == 1) {
    for (size_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  if (n >= (uint64_t(1) << 32)) {  // beyond the packed share: plain chunks
    parallel_for(n, 1, [&](size_t b, size_t e, int t) {
      for (size_t i = b; i < e; ++i) fn(i, t);
    });
    return;
  }
  const int nth = n_threads_;
  std::vector<Share> shares(static_cast<size_t>(nth));
  for (int t = 0; t < nth; ++t)
    shares[size_t(t)].fb.store(pack(n * size_t(t) / size_t(nth), n * size_t(t + 1) / size_t(nth)),
                               std::memory_order_relaxed);
  run_on_all([&](int me, int) {
    std::atomic<uint64_t>& mine = shares[size_t(me)].fb;
    for (;;) {
      uint64_t s = mine.load(std::memory_order_acquire);
      const uint64_t f = s >> 32, b = s & 0xffffffffu;
      if (f < b) {
        if (mine.compare_exchange_weak(s, pack(f + 1, b), std::memory_order_acq_rel)) fn(f, me);
        continue;
      }
      // Out of work: split the largest share left (the victim keeps the lower half it is
      // walking into). None left, or a race lost: look again or stop.
      int victim = -1;
      uint64_t most = 0, vs = 0;
      for (int t = 0; t < nth; ++t) {
        const uint64_t v = shares[size_t(t)].fb.load(std::memory_order_acquire);
        const uint64_t left = (v & 0xffffffffu) - std::min(v >> 32, v & 0xffffffffu);
        if (left > most) most = left, victim = t, vs = v;
      }
      if (victim < 0) return;
      const uint64_t vf = vs >> 32, vb = vs & 0xffffffffu, mid = vf + (vb - vf) / 2;
      if (shares[size_t(victim)].fb.compare_exchange_strong(vs, pack(vf, mid),
                                                            std::memory_order_acq_rel))
        mine.store(pack(mid, vb), std::memory_order_release);
    }
  });
}

}  // namespace herd
