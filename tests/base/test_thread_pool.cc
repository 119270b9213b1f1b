// The persistent pool: every index exactly once, many back-to-back sections (the spinning
// path), and sections after the workers fell asleep (the condition-variable path).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "herd/base/thread_pool.h"

namespace herd {
namespace {

void expect_each_index_once(ThreadPool& pool, size_t n, size_t grain) {
  std::vector<std::atomic<int>> hits(n);
  pool.parallel_for(n, grain, [&](size_t b, size_t e, int ith) {
    EXPECT_GE(ith, 0);
    EXPECT_LT(ith, pool.size());
    for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
  });
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
}

TEST(ThreadPool, EveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (size_t n : {0, 1, 7, 64, 1000}) expect_each_index_once(pool, n, 3);
  }
}

TEST(ThreadPool, ManyBackToBackSections) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int r = 0; r < 20000; ++r)
    pool.run_on_all([&](int ith, int nth) { sum.fetch_add(ith + 1); });
  EXPECT_EQ(sum.load(), 20000 * 3);
}

TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(2);
  for (int r = 0; r < 3; ++r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // workers give up spinning
    std::atomic<int> ran{0};
    pool.run_on_all([&](int, int) { ran.fetch_add(1); });
    EXPECT_EQ(ran.load(), 2);
  }
}

}  // namespace
}  // namespace herd
