// Correctness at length (issue "Long context"): the logits after a 64k-token prompt on the tiny
// preset (chunk 8192, so 7 chunk boundaries and 8 key segments on the NoPE layer), prefilled in
// 512-token slices with herd's KV layout (chunked layers keep a window), agree with ONE forward
// over the whole prompt with full KV on every layer. Both on the fast path with f32 KV; the
// difference comes only from how attention is sliced, so the bound is tight. Then bf16 and fp8
// KV against f32 KV: mean KL and top-1 agreement over the last positions, printed.
// HERD_LONG_TOKENS overrides the length (default 65536).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "herd/runtime/kv_cache.h"
#include "herd/runtime/sequence.h"
#include "runtime/runtime_test_util.h"

namespace herd {
namespace {

using testutil::ModelCase;

int64_t long_tokens() {
  const char* e = std::getenv("HERD_LONG_TOKENS");
  return e ? std::max<int64_t>(std::atoll(e), 64) : 65536;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// KL(p || q) of the softmaxes of two logits rows, in nats.
double kl(const float* p_logits, const float* q_logits, int64_t V) {
  auto log_softmax = [V](const float* x, std::vector<double>& out) {
    double m = x[0];
    for (int64_t i = 1; i < V; ++i) m = std::max(m, double(x[i]));
    double s = 0;
    for (int64_t i = 0; i < V; ++i) s += std::exp(double(x[i]) - m);
    out.resize(size_t(V));
    for (int64_t i = 0; i < V; ++i) out[size_t(i)] = double(x[i]) - m - std::log(s);
  };
  std::vector<double> lp, lq;
  log_softmax(p_logits, lp);
  log_softmax(q_logits, lq);
  double d = 0;
  for (int64_t i = 0; i < V; ++i) d += std::exp(lp[size_t(i)]) * (lp[size_t(i)] - lq[size_t(i)]);
  return d;
}

int64_t argmax(const float* x, int64_t V) {
  return std::max_element(x, x + V) - x;
}

// Decode steps past 8192 keys take the decoder's split path (one work item per key segment,
// folded afterwards); the same positions inside a prefill slice take one pass over the
// segments. Both must give the same bits (batch invariance of ops/attention_fast.h).
TEST(LongContext, DecodeSplitBySegmentsEqualsPrefill) {
  ThreadPool& pool = testutil::test_pool();
  const ModelCase mc{"tiny", 8192, "bf16"};
  LoadedModel& model = testutil::runtime_model(mc, pool);
  TextDecoder dec(model, pool, Precision::kAuto);
  const int64_t N = 8192 + 300, V = dec.vocab_size(), kSteps = 4;
  const std::vector<int32_t> tokens = testutil::lcg_tokens(N, V, 9);
  std::vector<int64_t> want;
  for (int64_t i = N - kSteps; i < N; ++i) want.push_back(i);
  std::vector<float> prefill(size_t(kSteps * V)), decode(size_t(kSteps * V));
  Sequence a(dec, 512, KvType::kBF16);
  ASSERT_TRUE(a.append(tokens, want, prefill.data()).is_ok());
  Sequence b(dec, 512, KvType::kBF16);
  const std::span<const int32_t> all(tokens);
  ASSERT_TRUE(b.append(all.first(size_t(N - kSteps)), {}, nullptr).is_ok());
  for (int64_t k = 0; k < kSteps; ++k)
    ASSERT_TRUE(
        b.append_last(all.subspan(size_t(N - kSteps + k), 1), &decode[size_t(k * V)]).is_ok());
  EXPECT_EQ(std::memcmp(prefill.data(), decode.data(), prefill.size() * sizeof(float)), 0);
}

TEST(LongContext, SlicedHerdLayoutMatchesOneForwardWithFullKv) {
  ThreadPool& pool = testutil::test_pool();
  const ModelCase mc{"tiny", 8192, "bf16"};
  LoadedModel& model = testutil::runtime_model(mc, pool);
  TextDecoder dec(model, pool, Precision::kAuto);
  const int64_t N = long_tokens(), V = dec.vocab_size(), kLast = 16;
  const std::vector<int32_t> tokens = testutil::lcg_tokens(N, V, 7);
  std::vector<int64_t> want;
  for (int64_t i = N - kLast; i < N; ++i) want.push_back(i);

  // herd: 512-token slices, chunked layers in a window, logits of the asked rows only.
  auto sliced = [&](KvType type) {
    std::vector<float> out(size_t(kLast * V));
    Sequence seq(dec, 512, type);
    const auto t0 = std::chrono::steady_clock::now();
    Status st = seq.append(tokens, want, out.data());
    EXPECT_TRUE(st.is_ok()) << st.message();
    std::printf("sliced prefill of %lld tokens, %s KV: %.1f s, chunked pages held %lld\n",
                (long long)N, kv_type_name(type), seconds_since(t0),
                (long long)seq.cache().chunked_pages_held());
    return out;
  };
  const std::vector<float> f32 = sliced(KvType::kF32);

  // Full KV: every layer in the global pages (one page table for all), one forward.
  KvCacheSpec spec = KvCacheSpec::make(dec.config(), KvType::kF32, 32, N);
  const int64_t L = dec.config().num_hidden_layers;
  for (int64_t i = 0; i < L; ++i) {
    spec.chunked_layer[size_t(i)] = 0;
    spec.kind_index[size_t(i)] = int32_t(i);
  }
  spec.global.layers = L;
  spec.chunked.layers = 0;
  KvPagePool pages(spec.global, spec.global_pages(N), /*growable=*/false);
  SequenceKv full(spec, pages, nullptr, N);
  ASSERT_TRUE(full.prepare(N).is_ok());
  std::vector<BatchToken> batch;
  for (int64_t i = 0; i < N; ++i) batch.push_back({tokens[size_t(i)], i, 0, i >= N - kLast});
  std::vector<float> ref(size_t(kLast * V));
  KvCache* caches[] = {&full};
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(dec.forward(batch, caches, ref.data()).is_ok());
  std::printf("one forward of %lld tokens with full KV: %.1f s\n", (long long)N, seconds_since(t0));

  double max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    max_diff = std::max(max_diff, double(std::fabs(ref[i] - f32[i])));
  std::printf("max |logit difference| over the last %lld positions: %.3g\n", (long long)kLast,
              max_diff);
  // The last position is the criterion; the 15 before it come with it.
  for (int64_t v = 0; v < V; ++v)
    ASSERT_NEAR(ref[size_t((kLast - 1) * V + v)], f32[size_t((kLast - 1) * V + v)], 1e-4f);
  EXPECT_LE(max_diff, 1e-4);

  // Lower-precision KV against f32 KV (the same sliced path).
  for (KvType type : {KvType::kBF16, KvType::kFp8E4M3}) {
    const std::vector<float> out = sliced(type);
    double sum_kl = 0;
    int agree = 0;
    for (int64_t r = 0; r < kLast; ++r) {
      sum_kl += kl(&f32[size_t(r * V)], &out[size_t(r * V)], V);
      agree += argmax(&f32[size_t(r * V)], V) == argmax(&out[size_t(r * V)], V);
    }
    std::printf("%s KV vs f32 KV at %lld tokens: mean KL %.3g nats, top-1 %d/%lld\n",
                kv_type_name(type), (long long)N, sum_kl / double(kLast), agree, (long long)kLast);
    ::testing::Test::RecordProperty(std::string(kv_type_name(type)) + "_mean_kl",
                                    std::to_string(sum_kl / double(kLast)));
    // Loose bounds that still catch a broken dequantization (which gives KL of order 1).
    EXPECT_LT(sum_kl / double(kLast), 0.05) << kv_type_name(type);
    EXPECT_GE(agree, kLast / 2) << kv_type_name(type);
  }
}

}  // namespace
}  // namespace herd
