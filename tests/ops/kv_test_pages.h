// Hand-made KV pages (ops/kv_view.h) for the attention tests: tokens stored through kv_store_row
// into pages of a given layout, rows in ascending position order with empty slots (kKvEmpty)
// wherever the test puts them. Every byte the tokens do not fill (empty slots, other layers,
// scales of empty slots, padding) is 0xFF: NaN as f32, bf16 and fp8, a NaN scale for int8, so a
// kernel that reads a masked row poisons its result.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "herd/ops/kv_quant.h"
#include "herd/ops/kv_view.h"

namespace herd::test {

struct TestKv {
  KvPageLayout layout;
  int64_t layer = 0;
  std::vector<std::unique_ptr<uint8_t, decltype(&std::free)>> owned;
  std::vector<const uint8_t*> pages;
  std::vector<int64_t> pos;  // per row
  std::vector<float> k, v;  // per row: what kv_load_row reads back ([n_rows][kv_dim]; NaN if empty)

  KvView view() const {
    KvView v;
    v.layout = layout;
    v.pages = pages.data();
    v.n_pages = int64_t(pages.size());
    v.layer = layer;
    return v;
  }
  int64_t n_rows() const { return int64_t(pos.size()); }
  uint8_t* page(int64_t r) { return owned[size_t(r / layout.page_rows)].get(); }
  // Overwrites row r's stored K, V and scales with 0xFF (NaN) and gives it position p.
  void poison(int64_t r, int64_t p) {
    const int64_t s = r % layout.page_rows, e = int64_t(kv_type_bytes(layout.type));
    uint8_t* pg = page(r);
    for (int64_t c = 0; c < layout.kv_dim; ++c)  // a K row's elements are kKvKeyBlock apart
      std::memset(pg + layout.k_row_off(layer, s) + c * kKvKeyBlock * e, 0xFF, size_t(e));
    std::memset(pg + layout.v_off(layer) + s * layout.kv_dim * e, 0xFF, size_t(layout.kv_dim * e));
    if (kv_type_scaled(layout.type)) {
      std::memset(pg + layout.ks_off(layer) + s * layout.n_kv_heads * 4, 0xFF,
                  size_t(layout.n_kv_heads * 4));
      std::memset(pg + layout.vs_off(layer) + s * layout.n_kv_heads * 4, 0xFF,
                  size_t(layout.n_kv_heads * 4));
    }
    reinterpret_cast<int64_t*>(pg)[s] = p;
    pos[size_t(r)] = p;
  }
};

// Row positions: `lead` empty pages, then tokens 0..n_tokens-1 in order with one empty slot after
// every `hole_every`-th token (0: none), the last page padded with empty slots, then `trail` empty
// pages. The result has a multiple of page_rows entries.
inline std::vector<int64_t> test_positions(int64_t n_tokens, int64_t page_rows, int64_t lead,
                                           int64_t hole_every, int64_t trail) {
  std::vector<int64_t> pos(size_t(lead * page_rows), kKvEmpty);
  for (int64_t p = 0; p < n_tokens; ++p) {
    pos.push_back(p);
    if (hole_every > 0 && p % hole_every == hole_every - 1) pos.push_back(kKvEmpty);
  }
  while (pos.size() % size_t(page_rows) != 0) pos.push_back(kKvEmpty);
  pos.insert(pos.end(), size_t(trail * page_rows), kKvEmpty);
  return pos;
}

// Pages of `layout` (layer `layer` of layout.layers filled) holding, at each row r with
// pos[r] != kKvEmpty, the token pos[r] of tok_k / tok_v ([tokens][kv_dim] f32, by position).
inline TestKv make_test_kv(const KvPageLayout& layout, int64_t layer,
                           const std::vector<int64_t>& pos, const std::vector<float>& tok_k,
                           const std::vector<float>& tok_v) {
  TestKv t;
  t.layout = layout;
  t.layer = layer;
  t.pos = pos;
  const int64_t kvd = layout.kv_dim, nkv = layout.n_kv_heads, hd = layout.head_dim;
  const int64_t e = int64_t(kv_type_bytes(layout.type));
  t.k.assign(pos.size() * size_t(kvd), std::numeric_limits<float>::quiet_NaN());
  t.v = t.k;
  for (size_t p = 0; p < pos.size() / size_t(layout.page_rows); ++p) {
    auto* pg = static_cast<uint8_t*>(std::aligned_alloc(64, layout.page_bytes()));
    std::memset(pg, 0xFF, layout.page_bytes());
    t.owned.emplace_back(pg, &std::free);
    t.pages.push_back(pg);
  }
  for (int64_t r = 0; r < int64_t(pos.size()); ++r) {
    const int64_t s = r % layout.page_rows, p = pos[size_t(r)];
    uint8_t* pg = t.page(r);
    reinterpret_cast<int64_t*>(pg)[s] = p;
    if (p == kKvEmpty) continue;
    const bool sc = kv_type_scaled(layout.type);
    auto* ks = sc ? reinterpret_cast<float*>(pg + layout.ks_off(layer)) + s * nkv : nullptr;
    auto* vs = sc ? reinterpret_cast<float*>(pg + layout.vs_off(layer)) + s * nkv : nullptr;
    uint8_t* kd = pg + layout.k_row_off(layer, s);
    uint8_t* vd = pg + layout.v_off(layer) + s * kvd * e;
    kv_store_row(layout.type, &tok_k[size_t(p * kvd)], nkv, hd, kd, ks, kKvKeyBlock);
    kv_store_row(layout.type, &tok_v[size_t(p * kvd)], nkv, hd, vd, vs);
    kv_load_row(layout.type, kd, ks, nkv, hd, &t.k[size_t(r * kvd)], kKvKeyBlock);
    kv_load_row(layout.type, vd, vs, nkv, hd, &t.v[size_t(r * kvd)]);
  }
  return t;
}

inline KvPageLayout test_layout(KvType type, int64_t page_rows, int64_t n_kv_heads,
                                int64_t head_dim, int64_t layers = 2) {
  return KvPageLayout{type, page_rows, n_kv_heads * head_dim, n_kv_heads, head_dim, layers};
}

inline constexpr KvType kAllKvTypes[] = {KvType::kF32, KvType::kBF16, KvType::kInt8,
                                         KvType::kFp8E4M3};

}  // namespace herd::test
