// One persistent pool, passed explicitly (DESIGN.md). parallel_for hands out chunks through an
// atomic counter so uneven work balances; the calling thread works too. A decode step issues a
// few hundred parallel sections of tens of microseconds each, so waking workers through a
// condition variable (~30 µs a round trip) would cost more than the work: workers spin on an
// atomic generation counter for a while (kSpinIterations) before they go to sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace herd {

class ThreadPool {
 public:
  // The most threads a pool starts, whatever is asked (the CLI's --threads documents it): far
  // above any machine herd targets, low enough that a typo cannot exhaust the process limit.
  static constexpr int kMaxThreads = 1024;

  // n_threads <= 0: physical cores; above kMaxThreads: kMaxThreads. When the system refuses a
  // thread (EAGAIN: process or memory limits) the pool keeps the ones it got and warns.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over [0, n) in chunks of `grain`; blocks until done.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t, int)>& fn);
  // Calls fn(i, thread_index) once for every i in [0, n). Thread t starts on the t-th
  // contiguous share and walks it in order, so each thread streams one run of memory that the
  // hardware prefetchers follow (parallel_for's shared counter interleaves the threads' chunks,
  // and every chunk restarts a stream). A thread that runs out takes the upper half of the
  // largest share left, so uneven work still balances. Which thread runs i never depends on
  // anything but timing; callers whose results must not depend on it keep i's work fixed.
  void parallel_ranges(size_t n, const std::function<void(size_t, int)>& fn);
  // Calls fn(ith, nth) once on every thread.
  void run_on_all(const std::function<void(int, int)>& fn);

  static int physical_cores();

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_start_;
  std::atomic<const std::function<void(int, int)>*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace herd
