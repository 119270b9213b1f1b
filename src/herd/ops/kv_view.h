// How a sequence's KV cache is laid out for the attention kernels (ops/attention*.h) and the
// decoder (model/kv_interface.h). Keys and values live in fixed-size PAGES of `page_rows` token
// slots; a page holds those slots for every layer of one kind (chunked RoPE layers, or NoPE
// global layers), so one page table per kind serves all its layers. Chunked layers see only a
// sliding window of pages (what a query of the current chunk can attend to plus one prefill
// slice); NoPE layers see every page. Attention kernels read the pages in place, in their stored
// type (KvType), through KvView — no gathering copy of the cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace herd {

// Element type of stored K/V. kInt8 and kFp8E4M3 carry one f32 scale per (token, kv head) for K
// and for V: the row of head h is x[h*head_dim + d] ≈ scale[h] · code[h*head_dim + d].
enum class KvType : uint8_t { kF32, kBF16, kInt8, kFp8E4M3 };

inline size_t kv_type_bytes(KvType t) {
  return t == KvType::kF32 ? 4 : t == KvType::kBF16 ? 2 : 1;
}
inline bool kv_type_scaled(KvType t) {
  return t == KvType::kInt8 || t == KvType::kFp8E4M3;
}
const char* kv_type_name(KvType t);                      // "f32", "bf16", "int8", "fp8-e4m3"
bool parse_kv_type(std::string_view name, KvType* out);  // false for an unknown name

// A slot whose position is kKvEmpty is masked for every query (never filled, or stale).
inline constexpr int64_t kKvEmpty = std::numeric_limits<int64_t>::max();

// Byte layout of one page (every array 64-byte aligned, offsets from the page base):
//   pos      int64[page_rows]                              absolute position of each slot
//   then for each layer j of the kind (j = 0 .. layers-1), one block of `layer_bytes`:
//     K        type[page_rows / 16][kv_dim][16]   key blocks: element c of slot s at
//                                                  [s / 16][c][s % 16]
//     V        type[page_rows][kv_dim]
//     K scales f32[page_rows][n_kv_heads]   (only when kv_type_scaled)
//     V scales f32[page_rows][n_kv_heads]   (only when kv_type_scaled)
// K is kept by blocks of 16 slots, each block's rows transposed, because the attention kernels
// score 16 keys at once as vertical FMAs over [head_dim][16]: stored that way, a decode step
// only widens each block to f32 instead of transposing every cached key again at every step.
// V stays row-major (the kernels add whole V rows).
inline constexpr int64_t kKvKeyBlock = 16;

struct KvPageLayout {
  KvType type = KvType::kF32;
  int64_t page_rows = 0;  // a multiple of 16 (the attention kernels' key block)
  int64_t kv_dim = 0;     // n_kv_heads * head_dim
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t layers = 0;  // layers of this kind

  static size_t align(size_t b) { return (b + 63) / 64 * 64; }
  size_t pos_bytes() const { return align(size_t(page_rows) * sizeof(int64_t)); }
  // Whole key blocks, should page_rows not be a multiple of 16 (no fast attention reads it then).
  size_t kv_bytes() const {
    const int64_t rows = (page_rows + kKvKeyBlock - 1) / kKvKeyBlock * kKvKeyBlock;
    return align(size_t(rows * kv_dim) * kv_type_bytes(type));
  }
  size_t scale_bytes() const {
    return kv_type_scaled(type) ? align(size_t(page_rows * n_kv_heads) * sizeof(float)) : 0;
  }
  size_t layer_bytes() const { return 2 * kv_bytes() + 2 * scale_bytes(); }
  size_t page_bytes() const { return pos_bytes() + size_t(layers) * layer_bytes(); }
  // Offsets of layer j's arrays (j counts layers of this kind only).
  size_t k_off(int64_t j) const { return pos_bytes() + size_t(j) * layer_bytes(); }
  size_t v_off(int64_t j) const { return k_off(j) + kv_bytes(); }
  size_t ks_off(int64_t j) const { return v_off(j) + kv_bytes(); }
  size_t vs_off(int64_t j) const { return ks_off(j) + scale_bytes(); }
  // Offset of element 0 of slot s's K row in layer j; its element c is kKvKeyBlock elements on.
  size_t k_row_off(int64_t j, int64_t s) const {
    const int64_t b = s / kKvKeyBlock, i = s % kKvKeyBlock;
    return k_off(j) + size_t(b * kv_dim * kKvKeyBlock + i) * kv_type_bytes(type);
  }
};

// One layer's keys and values for one sequence: rows r in [0, n_pages * page_rows), row r in
// page pages[r / page_rows] at slot r % page_rows. Rows are in ascending position order (masked
// slots may sit anywhere); a row's position is pos(r), kKvEmpty when masked.
struct KvView {
  KvPageLayout layout;
  const uint8_t* const* pages = nullptr;
  int64_t n_pages = 0;
  int64_t layer = 0;  // index among the layers of this kind (selects the offsets above)

  int64_t n_rows() const { return n_pages * layout.page_rows; }
  const uint8_t* page(int64_t r) const { return pages[r / layout.page_rows]; }
  int64_t slot(int64_t r) const { return r % layout.page_rows; }
  int64_t pos(int64_t r) const { return reinterpret_cast<const int64_t*>(page(r))[slot(r)]; }
  const int64_t* page_pos(int64_t p) const { return reinterpret_cast<const int64_t*>(pages[p]); }
  // Raw K row r: kv_dim elements of layout.type, kKvKeyBlock elements apart (see KvPageLayout).
  // For r a multiple of kKvKeyBlock, the key block of rows [r, r + 16): [kv_dim][16] contiguous.
  const void* k_row(int64_t r) const { return page(r) + layout.k_row_off(layer, slot(r)); }
  // Raw V row r (kv_dim contiguous elements of layout.type) and K / V per-head scales (null if
  // unscaled).
  const void* v_row(int64_t r) const {
    return page(r) + layout.v_off(layer) +
           size_t(slot(r) * layout.kv_dim) * kv_type_bytes(layout.type);
  }
  const float* k_scales(int64_t r) const {
    if (!kv_type_scaled(layout.type)) return nullptr;
    return reinterpret_cast<const float*>(page(r) + layout.ks_off(layer)) +
           slot(r) * layout.n_kv_heads;
  }
  const float* v_scales(int64_t r) const {
    if (!kv_type_scaled(layout.type)) return nullptr;
    return reinterpret_cast<const float*>(page(r) + layout.vs_off(layer)) +
           slot(r) * layout.n_kv_heads;
  }
};

}  // namespace herd
