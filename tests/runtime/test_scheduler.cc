// Continuous batching (runtime/scheduler.h): sequences stepped together give bitwise the logits
// they give alone; joining, leaving, cancelling, admission and prefix reuse keep the page pools
// exact.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "herd/ops/weight.h"
#include "herd/runtime/scheduler.h"
#include "runtime/runtime_test_util.h"

namespace herd {
namespace {

using testutil::ModelCase;
using testutil::test_pool;

struct SeqRun {
  std::map<int64_t, std::vector<float>> logits;  // by position
  std::vector<int32_t> tokens;
  Completion done;
  bool finished = false;
};

// Request whose every logits row and token lands in `run`.
Request traced(std::vector<int32_t> prompt, int64_t max_tokens, int64_t V, SeqRun& run) {
  Request r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.on_logits = [&run, V](int64_t pos, const float* row) { run.logits[pos].assign(row, row + V); };
  r.on_token = [&run](int32_t t) {
    run.tokens.push_back(t);
    return true;
  };
  r.on_finish = [&run](const Completion& c) {
    run.done = c;
    run.finished = true;
  };
  return r;
}

SchedulerOptions options(const ModelCase& c, int64_t max_seqs, int64_t step_tokens) {
  SchedulerOptions o;
  o.max_seqs = max_seqs;
  o.step_tokens = step_tokens;
  o.kv_type = c.quant == "f32" ? KvType::kF32 : KvType::kBF16;
  o.page_rows = 16;
  o.context = 4096;
  return o;
}

void expect_same(const SeqRun& a, const SeqRun& b, const std::string& what) {
  ASSERT_TRUE(a.finished && b.finished) << what;
  EXPECT_EQ(a.tokens, b.tokens) << what;
  ASSERT_EQ(a.logits.size(), b.logits.size()) << what;
  for (const auto& [pos, row] : a.logits) {
    auto it = b.logits.find(pos);
    ASSERT_NE(it, b.logits.end()) << what << " position " << pos;
    ASSERT_EQ(std::memcmp(row.data(), it->second.data(), row.size() * sizeof(float)), 0)
        << what << ": logits differ at position " << pos;
  }
}

// `reused` against the same request run cold on a fresh scheduler (prefix reuse off): the same
// tokens, and bitwise the same logits from the first position `reused` evaluated.
void expect_same_as_cold(TextDecoder& dec, const ModelCase& c, const std::vector<int32_t>& prompt,
                         int64_t max_tokens, const SamplingParams& sampling, const SeqRun& reused,
                         const std::string& what) {
  SeqRun cold;
  Scheduler one(dec, options(c, 1, 512));
  Request r = traced(prompt, max_tokens, dec.vocab_size(), cold);
  r.sampling = sampling;
  r.reuse_prefix = false;
  ASSERT_TRUE(one.submit(std::move(r)).is_ok());
  ASSERT_TRUE(one.run_until_idle().is_ok());
  EXPECT_EQ(cold.done.reused_tokens, 0);
  for (auto it = cold.logits.begin(); it != cold.logits.end();)
    it = it->first < reused.done.reused_tokens ? cold.logits.erase(it) : std::next(it);
  expect_same(cold, reused, what);
}

class Batching : public ::testing::TestWithParam<std::string> {};

// 16 sequences of different prompt lengths (one longer than a slice, several crossing the chunk
// of 16), joining at different steps and finishing at different steps, on one scheduler: each
// one's logits (prompt rows asked for, and every decode step) and tokens are bitwise those of
// running it alone. Half of them sample (temperature, top-p, a repetition penalty, own seeds):
// the scheduler draws all sequences' tokens of a step in parallel, and they must be the draws
// of the sequence alone. "bf16-hd32" is `tiny` with heads of 32: the head dim at which the
// attention of a bf16 cache multiplies in bf16 pairs where the CPU has AVX512_BF16
// (ops/attention_tiled_pairs.h; tiny's 16 keeps the f32 products).
TEST_P(Batching, SixteenSequencesBitwiseEqualAlone) {
  const bool hd32 = GetParam() == "bf16-hd32";
  const ModelCase c{"tiny", 16, hd32 ? "bf16" : GetParam(), hd32 ? 32 : 0};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), testutil::precision_of(c));
  const int64_t V = dec.vocab_size(), slice = 24;
  struct Spec {
    int64_t prompt, max_tokens, join_step;
  };
  std::vector<Spec> specs;
  for (int i = 0; i < 16; ++i) specs.push_back({1 + (i * 13) % 61, 2 + (i * 7) % 11, (i % 4) * 3});
  specs[3].prompt = 70;  // longer than a slice (24) and crossing four chunk boundaries
  auto prompt_of = [&](int i) {
    return testutil::lcg_tokens(specs[size_t(i)].prompt, V, uint32_t(100 + i));
  };
  auto wanted = [&](int i) {  // a few prompt rows besides the last
    std::vector<int64_t> w;
    for (int64_t p = 0; p + 1 < specs[size_t(i)].prompt; p += 5) w.push_back(p);
    return w;
  };
  auto sampling = [](int i) {
    SamplingParams sp;
    if (i % 2 == 1) sp.temperature = 0.8f, sp.top_p = 0.9f, sp.seed = uint64_t(i);
    if (i % 4 == 1) sp.repetition_penalty = 1.1f;
    return sp;
  };

  std::vector<SeqRun> together(16);
  Scheduler sched(dec, options(c, 16, slice));
  int64_t step = 0;
  for (int joined = 0; joined < 16 || sched.running() + sched.waiting() > 0; ++step) {
    for (int i = 0; i < 16; ++i)
      if (specs[size_t(i)].join_step == step) {
        Request r = traced(prompt_of(i), specs[size_t(i)].max_tokens, V, together[size_t(i)]);
        r.logits_positions = wanted(i);
        r.sampling = sampling(i);
        ASSERT_TRUE(sched.submit(std::move(r)).is_ok());
        ++joined;
      }
    auto did = sched.step();
    ASSERT_TRUE(did.is_ok()) << did.status().message();
    ASSERT_LT(step, 1000);
  }
  EXPECT_EQ(sched.global_pool().in_use(), 0);

  for (int i = 0; i < 16; ++i) {
    SeqRun alone;
    Scheduler one(dec, options(c, 1, 512));
    Request r = traced(prompt_of(i), specs[size_t(i)].max_tokens, V, alone);
    r.logits_positions = wanted(i);
    r.sampling = sampling(i);
    ASSERT_TRUE(one.submit(std::move(r)).is_ok());
    ASSERT_TRUE(one.run_until_idle().is_ok());
    EXPECT_EQ(alone.done.reason, together[size_t(i)].done.reason);
    expect_same(alone, together[size_t(i)], "sequence " + std::to_string(i));
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, Batching,
                         ::testing::Values("f32", "bf16", "int8", "int4-all", "bf16-hd32"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

TEST(Scheduler, CancelMidPrefillAndMidDecodeReturnsEveryPage) {
  const ModelCase c{"tiny", 16, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size();
  Scheduler sched(dec, options(c, 4, 16));
  const int64_t free0 = sched.global_pool().free_pages() + sched.global_pool().cached();
  SeqRun a, b, keep;
  auto ia = sched.submit(traced(testutil::lcg_tokens(100, V, 1), 50, V, a));  // long prefill
  auto ib = sched.submit(traced(testutil::lcg_tokens(5, V, 2), 50, V, b));
  auto ik = sched.submit(traced(testutil::lcg_tokens(7, V, 3), 6, V, keep));
  ASSERT_TRUE(ia.is_ok() && ib.is_ok() && ik.is_ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sched.step().is_ok());
  EXPECT_LT(a.logits.size(), 1u);  // still prefilling (100 tokens at ≤ 16 per step)
  EXPECT_GT(b.tokens.size(), 0u);  // decoding
  EXPECT_GT(sched.global_pool().in_use(), 0);
  sched.cancel(*ia);
  sched.cancel(*ib);
  ASSERT_TRUE(sched.step().is_ok());
  EXPECT_TRUE(a.finished && b.finished);
  EXPECT_EQ(a.done.reason, FinishReason::kCancelled);
  EXPECT_EQ(b.done.reason, FinishReason::kCancelled);
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(keep.done.reason, FinishReason::kLength);
  EXPECT_EQ(keep.tokens.size(), 6u);
  EXPECT_EQ(sched.global_pool().in_use(), 0);
  EXPECT_EQ(sched.global_pool().free_pages() + sched.global_pool().cached(), free0);
  ASSERT_NE(sched.chunked_pool(), nullptr);
  EXPECT_EQ(sched.chunked_pool()->in_use(), 0);
}

TEST(Scheduler, OversizeRequestsFailClearlyAndOthersAreUnaffected) {
  const ModelCase c{"tiny", 16, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size();
  SchedulerOptions o = options(c, 4, 32);
  o.context = 256;
  o.global_pages = 10;  // 160 tokens of global-layer KV
  Scheduler sched(dec, o);
  SeqRun ok_run, alone;
  ASSERT_TRUE(sched.submit(traced(testutil::lcg_tokens(20, V, 5), 8, V, ok_run)).is_ok());
  SeqRun r1, r2, r3;
  auto over_ctx = sched.submit(traced(testutil::lcg_tokens(250, V, 6), 10, V, r1));
  ASSERT_FALSE(over_ctx.is_ok());
  EXPECT_NE(over_ctx.status().message().find("exceeds the context of 256"), std::string::npos)
      << over_ctx.status().message();
  auto over_pool = sched.submit(traced(testutil::lcg_tokens(150, V, 7), 50, V, r2));
  ASSERT_FALSE(over_pool.is_ok());
  EXPECT_NE(over_pool.status().message().find("KV pages"), std::string::npos)
      << over_pool.status().message();
  std::vector<int32_t> bad = testutil::lcg_tokens(5, V, 8);
  bad[2] = int32_t(V + 3);
  auto bad_token = sched.submit(traced(bad, 4, V, r3));
  ASSERT_FALSE(bad_token.is_ok());
  EXPECT_NE(bad_token.status().message().find("index 2"), std::string::npos);
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  Scheduler one(dec, options(c, 1, 512));
  ASSERT_TRUE(one.submit(traced(testutil::lcg_tokens(20, V, 5), 8, V, alone)).is_ok());
  ASSERT_TRUE(one.run_until_idle().is_ok());
  expect_same(alone, ok_run, "the valid request");
  EXPECT_FALSE(r1.finished || r2.finished || r3.finished);
}

// Requests that fit only one at a time wait in the queue and run in turn.
TEST(Scheduler, RequestThatFitsLaterWaits) {
  const ModelCase c{"tiny", 16, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size();
  SchedulerOptions o = options(c, 4, 32);
  o.global_pages = 6;  // one 80-token sequence at a time
  Scheduler sched(dec, o);
  SeqRun a, b;
  ASSERT_TRUE(sched.submit(traced(testutil::lcg_tokens(60, V, 1), 20, V, a)).is_ok());
  ASSERT_TRUE(sched.submit(traced(testutil::lcg_tokens(60, V, 2), 20, V, b)).is_ok());
  ASSERT_TRUE(sched.step().is_ok());
  EXPECT_EQ(sched.running(), 1);
  EXPECT_EQ(sched.waiting(), 1);
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(a.tokens.size(), 20u);
  EXPECT_EQ(b.tokens.size(), 20u);
  EXPECT_EQ(sched.global_pool().in_use(), 0);
}

// A second request sharing a 2,000-token prefix evaluates only its own tokens, and its output is
// bitwise that of a cold run; the first request's pages come back from the cache.
TEST(Scheduler, PrefixReuseEvaluatesOnlyNewTokensAndMatchesColdRun) {
  const ModelCase c{"tiny", 256, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size();
  std::vector<int32_t> shared = testutil::lcg_tokens(2000, V, 42);
  auto with_tail = [&](uint32_t seed, int64_t n) {
    std::vector<int32_t> p = shared;
    auto tail = testutil::lcg_tokens(n, V, seed);
    p.insert(p.end(), tail.begin(), tail.end());
    return p;
  };
  Scheduler sched(dec, options(c, 2, 512));
  SeqRun first, second;
  ASSERT_TRUE(sched.submit(traced(with_tail(1, 37), 4, V, first)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(first.done.reused_tokens, 0);
  ASSERT_TRUE(sched.submit(traced(with_tail(2, 23), 6, V, second)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(second.done.reused_tokens, 2000);  // 2000 = 125 pages of 16
  EXPECT_EQ(second.done.prompt_tokens, 2023);
  expect_same_as_cold(dec, c, with_tail(2, 23), 6, {}, second, "reused vs cold");
  EXPECT_EQ(sched.global_pool().in_use(), 0);
  EXPECT_GT(sched.global_pool().cached(), 0);

  // Diverging inside a page: the first request's tokens 2000..2008 are shared too (2009 is not
  // a page boundary); those rows are copied into a page of the third request's own.
  std::vector<int32_t> third = with_tail(1, 9);
  auto tail3 = testutil::lcg_tokens(20, V, 3);
  third.insert(third.end(), tail3.begin(), tail3.end());
  SeqRun t3;
  ASSERT_TRUE(sched.submit(traced(third, 5, V, t3)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(t3.done.reused_tokens, 2009);
  expect_same_as_cold(dec, c, third, 5, {}, t3, "reused inside a page vs cold");
  EXPECT_EQ(sched.global_pool().in_use(), 0);
}

// A global pool with room for one request's pages plus a little (what `herd bench -d` sizes with
// --ctx): a request that reuses a finished one's prefix is admitted. Its cached CHUNKED pages are
// part of its window reservation and must not count against the global pool.
TEST(Scheduler, PrefixReuseFitsATightGlobalPool) {
  const ModelCase c{"tiny", 256, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size();
  SchedulerOptions o = options(c, 1, 64);
  o.context = 224;
  o.global_pages = 14;  // 224 tokens of 16-row pages
  Scheduler sched(dec, o);
  const std::vector<int32_t> base = testutil::lcg_tokens(128, V, 5);
  SeqRun first, second;
  ASSERT_TRUE(sched.submit(traced(base, 0, V, first)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  std::vector<int32_t> more = base;
  const auto tail = testutil::lcg_tokens(64, V, 6);
  more.insert(more.end(), tail.begin(), tail.end());
  ASSERT_TRUE(sched.submit(traced(more, 4, V, second)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(second.done.reason, FinishReason::kLength) << second.done.error.message();
  EXPECT_EQ(second.done.reused_tokens, 128);
  expect_same_as_cold(dec, c, more, 4, {}, second, "reused on a tight pool vs cold");
}

// cache_prompt = false: the request still reuses cached pages, but publishes none of its own;
// they return to the free list (taken first by the next request, already resident) and a
// later identical request finds only what was cached before.
TEST(Scheduler, UncachedRequestReusesThePrefixButPublishesNothing) {
  const ModelCase c{"tiny", 256, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size();
  Scheduler sched(dec, options(c, 1, 64));
  const std::vector<int32_t> base = testutil::lcg_tokens(128, V, 7);
  SeqRun first, second, third;
  ASSERT_TRUE(sched.submit(traced(base, 0, V, first)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  const int64_t cached0 = sched.global_pool().cached(), free0 = sched.global_pool().free_pages();
  EXPECT_EQ(cached0, 8);  // 128 tokens of 16-row pages

  std::vector<int32_t> more = base;
  const auto tail = testutil::lcg_tokens(64, V, 8);
  more.insert(more.end(), tail.begin(), tail.end());
  Request r = traced(more, 5, V, second);
  r.cache_prompt = false;
  ASSERT_TRUE(sched.submit(std::move(r)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(second.done.reused_tokens, 128);
  expect_same_as_cold(dec, c, more, 5, {}, second, "uncached request vs cold");
  EXPECT_EQ(sched.global_pool().in_use(), 0);
  EXPECT_EQ(sched.global_pool().cached(), cached0);
  EXPECT_EQ(sched.global_pool().free_pages(), free0);

  ASSERT_TRUE(sched.submit(traced(more, 0, V, third)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(third.done.reused_tokens, 128);  // the tail's pages were not published
}

// n choices of one prompt submitted together: the first prefills it, the others wait for its
// pages and reuse them, and every choice equals its own cold run.
TEST(Scheduler, ChoicesOfOnePromptPrefillItOnce) {
  const ModelCase c{"tiny", 64, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size();
  const auto prompt = testutil::lcg_tokens(300, V, 31);
  Scheduler sched(dec, options(c, 4, 64));
  std::vector<SeqRun> runs(3);
  for (int i = 0; i < 3; ++i) {
    Request r = traced(prompt, 6, V, runs[size_t(i)]);
    r.sampling.temperature = 0.8f;
    r.sampling.seed = uint64_t(i + 1);
    ASSERT_TRUE(sched.submit(std::move(r)).is_ok());
  }
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  EXPECT_EQ(runs[0].done.reused_tokens, 0);
  for (int i = 1; i < 3; ++i) EXPECT_EQ(runs[size_t(i)].done.reused_tokens, 288) << i;  // 18 pages
  for (int i = 0; i < 3; ++i) {
    SamplingParams sp;
    sp.temperature = 0.8f;
    sp.seed = uint64_t(i + 1);
    expect_same_as_cold(dec, c, prompt, 6, sp, runs[size_t(i)], "choice " + std::to_string(i));
  }
}

// The next turn of a chat: the new prompt is the previous prompt, the reply and new text. Every
// full page of the previous turn (prompt and evaluated reply tokens) is reused.
TEST(Scheduler, NextChatTurnReusesPreviousTurn) {
  const ModelCase c{"tiny", 64, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size();
  Scheduler sched(dec, options(c, 1, 64));
  SeqRun t1, t2;
  auto p1 = testutil::lcg_tokens(150, V, 77);
  ASSERT_TRUE(sched.submit(traced(p1, 20, V, t1)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  ASSERT_EQ(t1.tokens.size(), 20u);
  std::vector<int32_t> p2 = p1;
  p2.insert(p2.end(), t1.tokens.begin(), t1.tokens.end());
  auto more = testutil::lcg_tokens(30, V, 78);
  p2.insert(p2.end(), more.begin(), more.end());
  ASSERT_TRUE(sched.submit(traced(p2, 5, V, t2)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  // 150 + 19 evaluated reply tokens (the last reply token was sampled, never evaluated) = 169:
  // 10 full pages of 16.
  EXPECT_EQ(t2.done.reused_tokens, 160);
}

// A batch position can carry an embedding row instead of a token id: the embeddings of real
// tokens give bitwise the logits of the tokens.
TEST(Scheduler, EmbeddingInputEqualsTokenInput) {
  const ModelCase c{"tiny", 16, "int8"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kAuto);
  const int64_t V = dec.vocab_size(), H = dec.config().hidden_size;
  auto prompt = testutil::lcg_tokens(30, V, 9);
  SeqRun by_token, by_embed;
  Scheduler sched(dec, options(c, 2, 512));
  Request a = traced(prompt, 5, V, by_token);
  Request b = traced(prompt, 5, V, by_embed);
  for (int64_t p : {3, 4, 5, 17}) {
    b.embedding_positions.push_back(p);
    std::vector<float> row(static_cast<size_t>(H));
    dequantize_row(m.run.embed, prompt[size_t(p)], row.data());
    b.embeddings.insert(b.embeddings.end(), row.begin(), row.end());
    b.prompt[size_t(p)] = 0;  // the id no longer decides the input
  }
  a.logits_positions = b.logits_positions = {2, 3, 10, 20};
  ASSERT_TRUE(sched.submit(std::move(a)).is_ok());
  ASSERT_TRUE(sched.submit(std::move(b)).is_ok());
  ASSERT_TRUE(sched.run_until_idle().is_ok());
  expect_same(by_token, by_embed, "embedding input");
}

}  // namespace
}  // namespace herd
