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

// parallel_ranges: every index once, each thread starting on its own contiguous share in order,
// and a thread whose share is slow gets helped (the others split what it has left).
TEST(ThreadPool, RangesEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (size_t n : {0, 1, 2, 7, 64, 1000, 20000}) {
      std::vector<std::atomic<int>> hits(n);
      std::vector<std::vector<size_t>> order(size_t(pool.size()));
      pool.parallel_ranges(n, [&](size_t i, int ith) {
        ASSERT_GE(ith, 0);
        ASSERT_LT(ith, pool.size());
        hits[i].fetch_add(1);
        order[size_t(ith)].push_back(i);  // each thread writes only its own list
      });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " i " << i;
      // Every thread's first index is the start of its share or a stolen upper half: in either
      // case its indices come in increasing runs, one run per share it worked on. With work this
      // even, few steals happen: far fewer runs than indices.
      size_t runs = 0, total = 0;
      for (const auto& o : order) {
        for (size_t k = 0; k < o.size(); ++k) runs += k == 0 || o[k] != o[k - 1] + 1;
        total += o.size();
      }
      EXPECT_EQ(total, n);
      if (n >= 1000) {
        EXPECT_LT(runs, n / 10) << "threads " << threads << " n " << n;
      }
    }
  }
}

TEST(ThreadPool, RangesRebalanceASlowShare) {
  ThreadPool pool(2);
  if (pool.size() < 2) GTEST_SKIP() << "one thread";
  // Indices of the first half are slow: the thread that owns them must be helped, so the
  // second thread ends up running some of them.
  constexpr size_t n = 64;
  std::vector<int> who(n, -1);
  pool.parallel_ranges(n, [&](size_t i, int ith) {
    if (i < n / 2) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    who[i] = ith;
  });
  const int owner = who[0];
  int helped = 0;
  for (size_t i = 0; i < n / 2; ++i) helped += who[i] != owner;
  EXPECT_GT(helped, 4);
}

}  // namespace
}  // namespace herd
