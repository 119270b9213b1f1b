// Expert parallelism without MPI: N "ranks" as N threads in one process, each with a model
// narrowed to its share of the routed experts (model/expert_shard.h) and an in-process
// exchange, must give the logits of the whole model bit for bit, on the f32 path and the fast
// path; a narrowed model without an exchange refuses to run. (tests/integration/mpi_cli.sh does
// the same through mpirun.)
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <thread>

#include "herd/convert/synth.h"
#include "herd/model/expert_shard.h"
#include "herd/model/run_weights.h"
#include "herd/model/text.h"
#include "herd/runtime/sequence.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

// The ranks' meeting point: a reusable barrier and each rank's exchange buffer.
class Group {
 public:
  explicit Group(int n) : n_(n), data_(size_t(n)) {}
  int size() const { return n_; }
  void arrive() {
    std::unique_lock<std::mutex> lk(mu_);
    const int64_t gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return gen_ != gen; });
    }
  }
  std::vector<float*>& data() { return data_; }

 private:
  int n_;
  std::vector<float*> data_;
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
  int64_t gen_ = 0;
};

// start(): every rank publishes its buffer, then copies the others' blocks; wait(): no rank
// reuses its buffer before all have copied from it.
class ThreadExchange final : public ExpertExchange {
 public:
  ThreadExchange(Group& g, int rank) : g_(g), rank_(rank) {}
  int ranks() const override { return g_.size(); }
  int rank() const override { return rank_; }
  Status start(float* data, std::span<const int64_t> offsets, int) override {
    g_.data()[size_t(rank_)] = data;
    g_.arrive();
    for (int r = 0; r < g_.size(); ++r)
      if (r != rank_)
        std::memcpy(data + offsets[size_t(r)], g_.data()[size_t(r)] + offsets[size_t(r)],
                    size_t(offsets[size_t(r) + 1] - offsets[size_t(r)]) * sizeof(float));
    return Status::ok();
  }
  Status wait() override {
    g_.arrive();
    return Status::ok();
  }

 private:
  Group& g_;
  int rank_;
};

std::string synth_dir() {
  static const std::string dir = [] {
    const fs::path d =
        fs::temp_directory_path() / ("herd_test_expert_split_" + std::to_string(::getpid()));
    SynthOptions opt;
    opt.preset = "tiny-interleaved";  // 128 experts
    opt.out_dir = d.string();
    opt.seed = 11;
    EXPECT_TRUE(synth_model(opt).is_ok());
    return d.string();
  }();
  return dir;
}

std::vector<int32_t> tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t((i * 37 + 5) % vocab);
  return t;
}

// Logits at every position of one prompt; `share` narrows the model when count > 0.
std::vector<float> run(Precision p, ExpertShare share, ExpertExchange* x, Status* st) {
  auto m = load_model(synth_dir());
  EXPECT_TRUE(m.is_ok());
  ThreadPool pool(1);
  if (share.count > 0) {
    EXPECT_TRUE(narrow_experts(*m, share).is_ok());
  }
  if (p == Precision::kAuto) {
    EXPECT_TRUE(prepare_run_weights(*m, {}, pool).is_ok());
  }
  TextDecoder dec(*m, pool, p);
  dec.set_expert_exchange(x);
  const int64_t n = 21, V = dec.vocab_size();
  const auto t = tokens(n, V);
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  std::vector<float> out(size_t(n * V));
  Sequence s(dec, 8);  // prefill in slices of 8: decode-sized and prefill-sized batches
  *st = s.append(t, all, out.data());
  return out;
}

class ExpertSplit : public ::testing::TestWithParam<Precision> {};

TEST_P(ExpertSplit, RanksGiveTheWholeModelsLogitsBitwise) {
  Status st;
  const std::vector<float> whole = run(GetParam(), {}, nullptr, &st);
  ASSERT_TRUE(st.is_ok()) << st.message();
  for (int n : {2, 3}) {  // 3: an uneven split (43 + 43 + 42 of 128)
    Group g(n);
    std::vector<std::vector<float>> out(static_cast<size_t>(n));
    std::vector<Status> sts(static_cast<size_t>(n));
    std::vector<std::thread> ranks;
    for (int r = 0; r < n; ++r)
      ranks.emplace_back([&, r] {
        ThreadExchange x(g, r);
        out[size_t(r)] = run(GetParam(), expert_share(128, n, r), &x, &sts[size_t(r)]);
      });
    for (auto& th : ranks) th.join();
    for (int r = 0; r < n; ++r) {
      ASSERT_TRUE(sts[size_t(r)].is_ok()) << sts[size_t(r)].message();
      ASSERT_EQ(out[size_t(r)].size(), whole.size());
      EXPECT_EQ(std::memcmp(out[size_t(r)].data(), whole.data(), whole.size() * sizeof(float)), 0)
          << n << " ranks, rank " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, ExpertSplit, ::testing::Values(Precision::kF32, Precision::kAuto));

TEST(ExpertSplit, NarrowedModelWithoutExchangeRefusesToRun) {
  Status st;
  run(Precision::kF32, expert_share(128, 2, 1), nullptr, &st);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("routed experts 64..127 of 128"), std::string::npos) << st.message();
}

TEST(ExpertSplit, NarrowingChecksTheShare) {
  auto m = load_model(synth_dir());
  ASSERT_TRUE(m.is_ok());
  EXPECT_FALSE(narrow_experts(*m, {120, 9}).is_ok());
  ASSERT_TRUE(narrow_experts(*m, {64, 64}).is_ok());
  EXPECT_EQ(held_experts(*m), 64);
  EXPECT_TRUE(holds_expert(*m, 64));
  EXPECT_FALSE(holds_expert(*m, 63));
  EXPECT_FALSE(narrow_experts(*m, {0, 64}).is_ok());  // already narrowed
}

}  // namespace
}  // namespace herd
