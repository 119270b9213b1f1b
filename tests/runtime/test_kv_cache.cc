// KV cache layout by layer kind: chunked layers keep a bounded ring, NoPE layers keep all.
#include <gtest/gtest.h>

#include <set>

#include "herd/ops/attention.h"
#include "herd/runtime/kv_cache.h"

namespace herd {
namespace {

Llama4TextConfig small_config(int64_t chunk) {
  Llama4TextConfig c;
  c.hidden_size = 8;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 4;
  c.vocab_size = 10;
  c.num_local_experts = 2;
  c.intermediate_size = 4;
  c.attention_chunk_size = chunk;
  c.layers.resize(4);
  for (int i = 0; i < 4; ++i) {
    c.layers[size_t(i)].rope = (i + 1) % 4 != 0;
    c.layers[size_t(i)].chunked = c.layers[size_t(i)].rope && chunk > 0;
  }
  return c;
}

TEST(KvCache, ChunkedLayerIsBoundedNoPELayerKeepsAll) {
  const int64_t chunk = 16, ubatch = 4;
  auto cfg = small_config(chunk);
  SequenceKvCache cache(cfg, ubatch);
  std::vector<float> k(4), v(4);
  for (int64_t p = 0; p < 100; ++p) {
    k.assign(4, float(p));
    v.assign(4, float(-p));
    for (int l = 0; l < 4; ++l) cache.store(l, p, k.data(), v.data());
  }
  EXPECT_EQ(cache.ring_capacity(0), chunk + ubatch);
  EXPECT_EQ(cache.ring_capacity(3), 0);
  // The stopgap cache rounds its one page up to a multiple of 16 slots.
  EXPECT_LE(cache.view(0).n_rows(), (chunk + ubatch + 15) / 16 * 16);
  int64_t filled = 0;
  for (int64_t r = 0; r < cache.view(3).n_rows(); ++r) filled += cache.view(3).pos(r) != kKvEmpty;
  EXPECT_EQ(filled, 100);
  // Every key of the last query's chunk is still present on the chunked layer, with its values.
  const KvView view = cache.view(0);
  std::set<int64_t> present;
  for (int64_t r = 0; r < view.n_rows(); ++r) {
    present.insert(view.pos(r));
    if (view.pos(r) != kKvEmpty) {
      EXPECT_EQ(static_cast<const float*>(view.k_row(r))[0], float(view.pos(r)));
      EXPECT_EQ(static_cast<const float*>(view.v_row(r))[0], float(-view.pos(r)));
    }
  }
  for (int64_t p = 96; p < 100; ++p) EXPECT_TRUE(present.count(p)) << p;
}

TEST(KvCache, BatchSpanningChunkBoundaryKeepsOlderChunkForEarlierQueries) {
  // A batch of `ubatch` tokens written before any attends: queries at the end of chunk 0 must
  // still find all of chunk 0 although chunk 1's first keys are already stored.
  const int64_t chunk = 8, ubatch = 4;
  auto cfg = small_config(chunk);
  SequenceKvCache cache(cfg, ubatch);
  std::vector<float> kv(4);
  for (int64_t p = 0; p < 10; ++p) cache.store(0, p, kv.data(), kv.data());
  const KvView view = cache.view(0);
  for (int64_t q = 6; q < 10; ++q) {
    int64_t visible = 0;
    for (int64_t r = 0; r < view.n_rows(); ++r) visible += attention_allowed(q, view.pos(r), chunk);
    EXPECT_EQ(visible, q < 8 ? q + 1 : q - 8 + 1) << "query " << q;
  }
}

TEST(KvCache, ClearForgets) {
  auto cfg = small_config(16);
  SequenceKvCache cache(cfg, 2);
  std::vector<float> kv(4);
  cache.store(3, 0, kv.data(), kv.data());
  cache.clear();
  EXPECT_EQ(cache.view(3).n_rows(), 0);
}

}  // namespace
}  // namespace herd
