// The paged KV cache (runtime/kv_pool.h, runtime/kv_cache.h): page states and the prefix index;
// chunked layers bounded by their window for every slice size; bytes equal to the formula; and
// logits on pages equal to a plain full-KV cache.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "herd/ops/kv_quant.h"
#include "herd/runtime/kv_cache.h"
#include "herd/runtime/sequence.h"
#include "runtime/runtime_test_util.h"

namespace herd {
namespace {

using testutil::ModelCase;
using testutil::test_pool;

KvPageLayout layout(int64_t rows, int64_t layers, KvType t = KvType::kF32) {
  KvPageLayout l;
  l.type = t;
  l.page_rows = rows;
  l.n_kv_heads = 2;
  l.head_dim = 8;
  l.kv_dim = 16;
  l.layers = layers;
  return l;
}

TEST(KvPool, PagesMoveBetweenFreeInUseAndCached) {
  KvPagePool pool(layout(16, 2), 3);
  EXPECT_EQ(pool.capacity(), 3);
  const int32_t a = pool.take(), b = pool.take(), c = pool.take();
  EXPECT_EQ(pool.take(), -1);  // all in use, not growable
  EXPECT_EQ(pool.in_use(), 3);
  for (int64_t s = 0; s < 16; ++s)
    EXPECT_EQ(reinterpret_cast<const int64_t*>(pool.data(a))[s], kKvEmpty);
  std::vector<int32_t> toks(16, 7);
  const PageKey k = page_key(0, toks);
  pool.publish(a, k, toks);
  pool.unref(a);  // indexed: cached
  pool.unref(b);  // not indexed: free
  EXPECT_EQ(pool.in_use(), 1);
  EXPECT_EQ(pool.cached(), 1);
  EXPECT_EQ(pool.free_pages(), 1);
  // Found only with the same parent and tokens.
  EXPECT_EQ(pool.peek(k, toks), a);
  std::vector<int32_t> other(16, 8);
  EXPECT_EQ(pool.peek(k, other), -1);
  EXPECT_EQ(pool.peek(page_key(1, toks), toks), -1);
  EXPECT_EQ(pool.acquire(k, toks), a);  // back in use
  EXPECT_EQ(pool.cached(), 0);
  EXPECT_EQ(pool.in_use(), 2);
  pool.unref(a);
  // The free page goes first; then the cached one is evicted (and leaves the index).
  EXPECT_EQ(pool.take(), b);
  EXPECT_EQ(pool.take(), a);
  EXPECT_EQ(pool.peek(k, toks), -1);
  pool.unref(c);
}

TEST(KvPool, SpecLayoutBytes) {
  // One page = positions + per layer K and V (+ per-head scales when quantized).
  const KvPageLayout f = layout(32, 3, KvType::kBF16), q = layout(32, 3, KvType::kInt8);
  EXPECT_EQ(f.page_bytes(), 32 * 8 + 3 * (2 * 32 * 16 * 2));
  EXPECT_EQ(q.page_bytes(), 32 * 8 + 3 * (2 * 32 * 16 * 1 + 2 * 32 * 2 * 4));
}

// A plain cache: every layer keeps every token in one f32 page (the pre-paging behaviour).
class FullKvCache final : public KvCache {
 public:
  FullKvCache(const Llama4TextConfig& cfg, int64_t capacity) {
    lay_.type = KvType::kF32;
    lay_.page_rows = (capacity + 15) / 16 * 16;
    lay_.kv_dim = cfg.kv_dim();
    lay_.n_kv_heads = cfg.num_key_value_heads;
    lay_.head_dim = cfg.head_dim;
    lay_.layers = 1;
    for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
      mem_.emplace_back(lay_.page_bytes() / 8 + 1, 0);
      int64_t* pos = reinterpret_cast<int64_t*>(mem_.back().data());
      std::fill_n(pos, lay_.page_rows, kKvEmpty);
      ptr_.push_back(reinterpret_cast<uint8_t*>(mem_.back().data()));
    }
  }
  void store(int layer, int64_t pos, const float* k, const float* v) override {
    uint8_t* base = ptr_[size_t(layer)];
    reinterpret_cast<int64_t*>(base)[pos] = pos;
    kv_store_row(KvType::kF32, k, lay_.n_kv_heads, lay_.head_dim, base + lay_.k_row_off(0, pos),
                 nullptr, kKvKeyBlock);
    std::memcpy(base + lay_.v_off(0) + size_t(pos * lay_.kv_dim) * 4, v, size_t(lay_.kv_dim) * 4);
  }
  KvView view(int layer) const override {
    KvView v;
    v.layout = lay_;
    v.pages = &ptr_[size_t(layer)];
    v.n_pages = 1;
    return v;
  }

 private:
  KvPageLayout lay_;
  std::vector<std::vector<uint64_t>> mem_;
  std::vector<uint8_t*> ptr_;
};

std::vector<float> full_kv_logits(TextDecoder& dec, const std::vector<int32_t>& tokens) {
  const int64_t n = int64_t(tokens.size()), V = dec.vocab_size();
  FullKvCache cache(dec.config(), n);
  KvCache* caches[] = {&cache};
  std::vector<BatchToken> batch;
  for (int64_t i = 0; i < n; ++i) batch.push_back({tokens[size_t(i)], i, 0, true});
  std::vector<float> out(size_t(n * V));
  Status s = dec.forward(batch, caches, out.data());
  EXPECT_TRUE(s.is_ok()) << s.message();
  return out;
}

std::vector<float> paged_logits(TextDecoder& dec, const std::vector<int32_t>& tokens, int64_t slice,
                                KvType type) {
  const int64_t n = int64_t(tokens.size()), V = dec.vocab_size();
  Sequence seq(dec, slice, type, 16);
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
  std::vector<float> out(size_t(n * V));
  Status s = seq.append(tokens, all, out.data());
  EXPECT_TRUE(s.is_ok()) << s.message();
  return out;
}

// Pages and the chunked window against a plain full cache, on 4 × chunk tokens, for slices of 1,
// 7, chunk−1, chunk+3 and the whole prompt (f32 path, f32 KV).
TEST(PagedKv, MatchesFullKvForEverySliceSize) {
  const int64_t chunk = 16;
  const ModelCase c{"tiny", chunk, "f32"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kF32);
  const auto tokens = testutil::lcg_tokens(4 * chunk, dec.vocab_size(), 3);
  const auto ref = full_kv_logits(dec, tokens);
  for (int64_t slice : {int64_t(1), int64_t(7), chunk - 1, chunk + 3, 4 * chunk}) {
    const auto got = paged_logits(dec, tokens, slice, KvType::kF32);
    float worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(ref[i] - got[i]));
    EXPECT_LE(worst, 1e-5f) << "slice " << slice;
  }
}

// A Sequence's private pools grow: 600 tokens need 38 pages of 16 rows, more than the 16 it
// starts with (prepare() used to refuse instead of letting take() add memory).
TEST(PagedKv, SequenceGrowsPastItsFirstPages) {
  const ModelCase c{"tiny", 16, "f32"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kF32);
  const auto tokens = testutil::lcg_tokens(600, dec.vocab_size(), 4);
  const auto ref = full_kv_logits(dec, tokens);
  const auto got = paged_logits(dec, tokens, 128, KvType::kF32);
  float worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(ref[i] - got[i]));
  EXPECT_LE(worst, 1e-5f);
}

// Top-1 agreement and mean KL of the stored KV types against f32 KV (figures in BENCHMARKS.md).
TEST(PagedKv, QuantizedKvTypesStayCloseToF32) {
  const int64_t chunk = 16;
  const ModelCase c{"tiny", chunk, "bf16"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), testutil::precision_of(c));
  const int64_t V = dec.vocab_size(), n = 4 * chunk * 4;
  const auto tokens = testutil::lcg_tokens(n, V, 5);
  const auto ref = paged_logits(dec, tokens, 7, KvType::kF32);
  for (KvType t : {KvType::kBF16, KvType::kInt8, KvType::kFp8E4M3}) {
    const auto got = paged_logits(dec, tokens, 7, t);
    double kl = 0;
    int64_t agree = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float* p = &ref[size_t(i * V)];
      const float* q = &got[size_t(i * V)];
      const int64_t ap = std::max_element(p, p + V) - p, aq = std::max_element(q, q + V) - q;
      agree += ap == aq;
      const double mp = *std::max_element(p, p + V), mq = *std::max_element(q, q + V);
      double sp = 0, sq = 0;
      for (int64_t j = 0; j < V; ++j) sp += std::exp(p[j] - mp), sq += std::exp(q[j] - mq);
      for (int64_t j = 0; j < V; ++j) {
        const double a = p[j] - mp - std::log(sp), b = q[j] - mq - std::log(sq);
        kl += std::exp(a) * (a - b);
      }
    }
    const double top1 = double(agree) / double(n), mean_kl = kl / double(n);
    std::printf("kv %-8s vs f32 KV: top-1 %.2f%%, mean KL %.3g over %lld positions\n",
                kv_type_name(t), 100 * top1, mean_kl, (long long)n);
    // Bounds with a wide margin over what is measured (BENCHMARKS.md), so a broken conversion
    // (wrong scale, wrong rounding) fails while the rounding itself passes.
    EXPECT_GE(top1, t == KvType::kBF16 ? 0.97 : 0.90) << kv_type_name(t);
    EXPECT_LE(mean_kl, t == KvType::kBF16 ? 1e-3 : 2e-2) << kv_type_name(t);
  }
}

// Bytes held = global pages × page bytes + chunked pages × page bytes, where the chunked pages
// cover [floor(n/c)·c, n + s) while a slice [n, n+s) runs: in tokens, NoPE layers × tokens +
// chunked layers × min(tokens, c + s), rounded up to pages.
TEST(PagedKv, BytesFollowTheFormula) {
  const int64_t chunk = 32, P = 16;
  const ModelCase c{"tiny", chunk, "f32"};
  LoadedModel& m = testutil::runtime_model(c, test_pool());
  TextDecoder dec(m, test_pool(), Precision::kF32);
  const Llama4TextConfig& cfg = dec.config();
  int64_t nope = 0, chunked = 0;
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i)
    (cfg.layer_kind(i).chunked ? chunked : nope)++;
  ASSERT_GT(nope, 0);
  ASSERT_GT(chunked, 0);
  for (KvType t : {KvType::kF32, KvType::kBF16, KvType::kInt8}) {
    for (int64_t slice : {int64_t(16), int64_t(48)}) {
      const KvCacheSpec spec = KvCacheSpec::make(cfg, t, P, slice);
      // Per token and layer: K and V rows, plus one scale per kv head for each when quantized.
      const size_t per_token_layer =
          2 * size_t(cfg.kv_dim()) * kv_type_bytes(t) +
          (kv_type_scaled(t) ? 2 * size_t(cfg.num_key_value_heads) * 4 : 0);
      EXPECT_EQ(spec.global.page_bytes(), size_t(P) * 8 + size_t(nope * P) * per_token_layer);
      EXPECT_EQ(spec.chunked.page_bytes(), size_t(P) * 8 + size_t(chunked * P) * per_token_layer);
      KvPagePool g(spec.global, 64), ch(spec.chunked, 64);
      SequenceKv kv(spec, g, &ch, 1024);
      const auto toks = testutil::lcg_tokens(400, dec.vocab_size(), 1);
      int64_t peak_chunked = 0;
      for (int64_t n = 0; n + slice <= 400; n += slice) {
        ASSERT_TRUE(kv.prepare(slice).is_ok());
        const int64_t tokens = n + slice, lo = n / chunk * chunk;
        const int64_t want_c = spec.pages_for(tokens) - lo / P;
        EXPECT_EQ(kv.global_pages_held(), spec.pages_for(tokens));
        EXPECT_EQ(kv.chunked_pages_held(), want_c) << "n " << n;
        EXPECT_LE(want_c * P, std::min(tokens, chunk + slice) + P);
        EXPECT_EQ(kv.bytes(), size_t(kv.global_pages_held()) * spec.global.page_bytes() +
                                  size_t(want_c) * spec.chunked.page_bytes());
        peak_chunked = std::max(peak_chunked, kv.chunked_pages_held());
        kv.commit(std::span<const int32_t>(toks).subspan(size_t(n), size_t(slice)));
      }
      EXPECT_LE(peak_chunked, spec.window_pages());
      kv.release();
      EXPECT_EQ(g.in_use(), 0);
      EXPECT_EQ(ch.in_use(), 0);
    }
  }
}

}  // namespace
}  // namespace herd
