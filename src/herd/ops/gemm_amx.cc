// AMX kernels (Sapphire Rapids and later). A tile product C[16 rows × 16 tokens] += A · B takes the
// weights as A straight from the nn.Linear layout (16 rows, 64 bytes of K each, row stride = the
// weight row) and the activations as B, prepared in the tile layout by prepare_acts.
//
// BF16T weights (quant/formats.h) are the B operand instead, as stored, with token rows as A.
//
// Batch invariance:
//  - BF16 / BF16T: each C element sees the same sequence of tile products whatever the batch:
//    rows and tokens never interact, K is walked in the same 32-element steps. Decode batches
//    (≤ kAmxVecTokens) take gemm_amx_vec.cc instead, which reproduces that arithmetic bit for
//    bit with vector loads (tile loads stream weights from DRAM more slowly).
//  - F8_E4M3: tiles for every n (the token block zero padded to 16 columns).
//  - Q8G / Q4G: a tile gives each group's exact integer dot, then q_group_fma as everywhere else,
//    so AMX (prefill) and VNNI (decode) agree bit for bit and both may be used.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "herd/ops/gemm_fp8.h"
#include "herd/ops/gemm_internal.h"
#include "herd/quant/formats.h"

#define HERD_AMX                                                              \
  __attribute__((                                                             \
      target("amx-tile,amx-bf16,amx-int8,avx512f,avx512bw,avx512vl,avx512dq," \
             "avx512bf16,fma")))

// Tile instructions as inline asm with a "memory" clobber: GCC 12's _tile_loadd has none, so
// stores into a packing buffer could legally be moved after the tile load that reads them.
#define HERD_TLOAD(t, p, s) \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(p), "r"(int64_t(s)) : "memory")
#define HERD_TSTORE(t, p, s) \
  __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(p), "r"(int64_t(s)) : "memory")
#define HERD_TZERO(t) __asm__ volatile("tilezero %%tmm" #t ::)
#define HERD_TDPBF16(c, a, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)
#define HERD_TDPBUSD(c, a, b) __asm__ volatile("tdpbusd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)

namespace herd::gemm_detail {

namespace {

// Int8 tiles pay a 16-token block and an epilogue per group; below this batch VNNI is as fast.
constexpr int64_t kAmxMinTokens = 8;

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Every tile is 16 rows × 64 bytes: C (f32 / i32, 16 tokens), A (32 bf16 or 64 u8 of K),
// B (16 pairs / quads of K × 16 tokens). tmm0-3: C, tmm4-5: A, tmm6-7: B.
HERD_AMX void load_config() {
  TileConfig cfg;
  for (int i = 0; i < 8; ++i) cfg.colsb[i] = 64, cfg.rows[i] = 16;
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
}

// Copies (bf16) or converts (fp8) `nr` ≤ 16 rows of K into dst [16][kp] bf16, zero padded.
HERD_AMX void pack_rows_bf16(const WeightRef& w, int64_t r, int64_t nr, int64_t kp, uint16_t* dst) {
  const bool fp8 = w.dtype == DType::F8_E4M3;
  for (int64_t i = 0; i < 16; ++i) {
    uint16_t* d = dst + i * kp;
    if (i >= nr) {
      std::memset(d, 0, size_t(kp) * 2);
      continue;
    }
    if (!fp8) {
      std::memcpy(d, static_cast<const uint16_t*>(w.data) + (r + i) * w.cols, size_t(w.cols) * 2);
    } else {
      const uint8_t* s = static_cast<const uint8_t*>(w.data) + (r + i) * w.cols;
      for (int64_t k = 0; k < w.cols; k += 32) {
        const __mmask32 m = w.cols - k >= 32 ? ~__mmask32(0) : (__mmask32(1) << (w.cols - k)) - 1;
        _mm512_mask_storeu_epi16(d + k, m, fp8x32_to_bf16(_mm256_maskz_loadu_epi8(m, s + k)));
      }
    }
    std::fill(d + w.cols, d + kp, uint16_t(0));
  }
}

// 16 rows × 32 E4M3 (K elements [k, k+32) of rows at `src`, stride wrb) -> bf16 [16][32].
HERD_AMX void fp8_step(const uint8_t* src, int64_t wrb, int64_t k, int64_t cols, uint16_t* dst) {
  const int64_t left = cols - k;
  const __mmask32 m = left >= 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
  for (int64_t i = 0; i < 16; ++i)
    _mm512_store_si512(dst + i * 32, fp8x32_to_bf16(_mm256_maskz_loadu_epi8(m, src + i * wrb + k)));
}

// Writes a C tile (c[i * 16 + j]: weight row r + i, token t + j) into y[t + j][r + i], scaled
// per row for fp8. The tile is transposed in registers so each token's 16 outputs are one masked
// store: element by element, the stores cost as much as a K=1024 tile product.
HERD_AMX void write_out(const float* c, int64_t r, int64_t nr, int64_t t, int64_t nt,
                        const float* row_scale, float* y, int64_t ys) {
  __m512i v[16], u[16];
  for (int i = 0; i < 16; ++i) v[i] = _mm512_loadu_si512(c + i * 16);
  for (int i = 0; i < 16; i += 2) {
    u[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    u[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    v[i] = _mm512_unpacklo_epi64(u[i], u[i + 2]);
    v[i + 1] = _mm512_unpackhi_epi64(u[i], u[i + 2]);
    v[i + 2] = _mm512_unpacklo_epi64(u[i + 1], u[i + 3]);
    v[i + 3] = _mm512_unpackhi_epi64(u[i + 1], u[i + 3]);
  }
  // v[4q + j], 128-bit lane L: rows 4q..4q+3 of column 4L + j.
  for (int j = 0; j < 4; ++j) {
    const __m512i ab_l = _mm512_shuffle_i32x4(v[j], v[4 + j], 0x88);
    const __m512i ab_h = _mm512_shuffle_i32x4(v[j], v[4 + j], 0xdd);
    const __m512i cd_l = _mm512_shuffle_i32x4(v[8 + j], v[12 + j], 0x88);
    const __m512i cd_h = _mm512_shuffle_i32x4(v[8 + j], v[12 + j], 0xdd);
    u[j] = _mm512_shuffle_i32x4(ab_l, cd_l, 0x88);
    u[8 + j] = _mm512_shuffle_i32x4(ab_l, cd_l, 0xdd);
    u[4 + j] = _mm512_shuffle_i32x4(ab_h, cd_h, 0x88);
    u[12 + j] = _mm512_shuffle_i32x4(ab_h, cd_h, 0xdd);
  }
  const __mmask16 rm = __mmask16((1u << nr) - 1);
  const __m512 sc = row_scale ? _mm512_maskz_loadu_ps(rm, row_scale + r) : _mm512_set1_ps(1.0f);
  for (int64_t j = 0; j < nt; ++j) {
    const __m512 col = _mm512_castsi512_ps(u[j]);
    _mm512_mask_storeu_ps(y + (t + j) * ys + r, rm, row_scale ? _mm512_mul_ps(col, sc) : col);
  }
}

// BF16T with tiles: activations rows are A (16 tokens × 32 K, straight from prepare_acts), the
// weight tiles are B as stored, C is [16 tokens][16 rows] — a token's outputs are contiguous,
// so whole tiles are stored into y directly. Per output the same tile products in the same K
// order as bf16_kernel (products commute exactly): bitwise the same results.
HERD_AMX void bf16t_tiles(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1,
                          int64_t t0, int64_t t1, float* y, int64_t ys) {
  load_config();
  const int64_t kp = a.kpad, steps = kp / 32, block = kp * 32;  // bytes per 16-row block
  const uint8_t* W = static_cast<const uint8_t*>(w.data);
  const uint8_t* X = reinterpret_cast<const uint8_t*>(a.bf16.data());
  alignas(64) float cbuf[256];
  for (int64_t rb = r0; rb < r1; rb += 32) {
    const bool two_r = r1 - rb > 16;
    const uint8_t* b0 = W + (rb / 16) * block;
    for (int64_t tb = t0; tb < t1; tb += 32) {
      const bool two_t = t1 - tb > 16;
      const uint8_t* a0 = X + tb * kp * 2;
      HERD_TZERO(0);
      HERD_TZERO(1);
      HERD_TZERO(2);
      HERD_TZERO(3);
      for (int64_t s = 0; s < steps; ++s) {
        HERD_TLOAD(4, a0 + s * 64, kp * 2);
        HERD_TLOAD(6, b0 + s * 1024, 64);
        HERD_TDPBF16(0, 4, 6);
        if (two_r) {
          HERD_TLOAD(7, b0 + block + s * 1024, 64);
          HERD_TDPBF16(1, 4, 7);
        }
        if (two_t) {
          HERD_TLOAD(5, a0 + 16 * kp * 2 + s * 64, kp * 2);
          HERD_TDPBF16(2, 5, 6);
          if (two_r) HERD_TDPBF16(3, 5, 7);
        }
      }
      // C tile (i, j): tokens tb + 16 i, rows rb + 16 j.
      auto put = [&](int i, int j, auto store_tile) {
        const int64_t t = tb + 16 * i, nt = std::min<int64_t>(16, t1 - t);
        float* dst = y + t * ys + rb + 16 * j;
        if (nt == 16) {
          store_tile(dst, ys * 4);
          return;
        }
        store_tile(cbuf, 64);
        for (int64_t k = 0; k < nt; ++k) std::memcpy(dst + k * ys, cbuf + k * 16, 64);
      };
      put(0, 0, [](float* p, int64_t s) { HERD_TSTORE(0, p, s); });
      if (two_r) put(0, 1, [](float* p, int64_t s) { HERD_TSTORE(1, p, s); });
      if (two_t) put(1, 0, [](float* p, int64_t s) { HERD_TSTORE(2, p, s); });
      if (two_t && two_r) put(1, 1, [](float* p, int64_t s) { HERD_TSTORE(3, p, s); });
    }
  }
  _tile_release();
}

HERD_AMX void bf16t_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1,
                           int64_t t0, int64_t t1, float* y, int64_t ys) {
  if (t1 - t0 > kAmxVecTokens)
    bf16t_tiles(a, w, r0, r1, t0, t1, y, ys);
  else
    amx_bf16_vec(a, w, r0, r1, t0, t1, y, ys);
}

HERD_AMX void bf16_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1,
                          int64_t t0, int64_t t1, float* y, int64_t ys) {
  if (w.dtype == DType::BF16 && t1 - t0 <= kAmxVecTokens) {
    amx_bf16_vec(a, w, r0, r1, t0, t1, y, ys);
    return;
  }
  load_config();
  const int64_t kp = a.kpad, steps = kp / 32, bstride = kp / 2 * 64;  // B bytes per token block
  const bool fp8 = w.dtype == DType::F8_E4M3;
  const int64_t wrb = w.cols * (fp8 ? 1 : 2);
  const int64_t direct_steps = fp8 ? 0 : w.cols / 32;  // K steps read in place (full 64 bytes)
  thread_local AlignedBuffer<uint16_t> pack;
  uint16_t* pk = pack.ensure(size_t(2 * 16 * kp));
  alignas(64) float cbuf[4][256];
  const uint8_t* B = a.amx.data();
  for (int64_t rb = r0; rb < r1; rb += 32) {
    const int64_t nr = std::min<int64_t>(32, r1 - rb), na = (nr + 15) / 16;
    // A source of half h at step s: in place (bf16, 16 whole rows, full step) or the packed copy.
    // FP8 read by one token pass (decode) converts 16 rows × 32 per step into an L1 buffer
    // instead of packing the whole block (one pass over the weights instead of three).
    const bool decode = t1 - t0 <= 32;
    const bool fp8_steps = fp8 && decode && nr == 32;
    alignas(64) uint16_t step_buf[2][16 * 32];
    bool direct[2];
    for (int64_t h = 0; h < na; ++h) {
      const int64_t rows = std::min<int64_t>(16, nr - 16 * h);
      direct[h] = !fp8 && rows == 16;
      if (fp8_steps) continue;
      if (!direct[h] || direct_steps < steps)
        pack_rows_bf16(w, rb + 16 * h, rows, kp, pk + h * 16 * kp);
    }
    auto a_src = [&](int64_t h, int64_t s, int64_t* stride) -> const void* {
      if (direct[h] && s < direct_steps) {
        *stride = wrb;
        return static_cast<const uint8_t*>(w.data) + (rb + 16 * h) * wrb + s * 64;
      }
      if (fp8_steps) {
        fp8_step(static_cast<const uint8_t*>(w.data) + (rb + 16 * h) * wrb, wrb, s * 32, w.cols,
                 step_buf[h]);
        *stride = 64;
        return step_buf[h];
      }
      *stride = kp * 2;
      return pk + h * 16 * kp + s * 32;
    };
    for (int64_t tb = t0; tb < t1; tb += 32) {
      const int64_t nb = std::min<int64_t>(2, (t1 - tb + 15) / 16);
      const uint8_t* b0 = B + (tb / 16) * bstride;
      HERD_TZERO(0);
      HERD_TZERO(1);
      HERD_TZERO(2);
      HERD_TZERO(3);
      for (int64_t s = 0; s < steps; ++s) {
        int64_t st0, st1 = 0;
        const void* a0 = a_src(0, s, &st0);
        const void* a1 = na > 1 ? a_src(1, s, &st1) : nullptr;
        // Decode: prefetch the next row block at the same position (see gemm_vnni.cc), one
        // line per row each time this step enters a new 64-byte line (2 steps per line for fp8).
        const int64_t eb = fp8 ? 1 : 2;
        if (decode && (s < direct_steps || fp8_steps) && (s * 32 * eb) % 64 == 0)
          for (int64_t i = 0; i < 32; ++i)
            _mm_prefetch(static_cast<const char*>(w.data) + (rb + 32 + i) * wrb + s * 32 * eb,
                         _MM_HINT_T1);
        HERD_TLOAD(6, b0 + s * 1024, 64);
        HERD_TLOAD(4, a0, st0);
        HERD_TDPBF16(0, 4, 6);
        if (na > 1) {
          HERD_TLOAD(5, a1, st1);
          HERD_TDPBF16(1, 5, 6);
        }
        if (nb > 1) {
          HERD_TLOAD(7, b0 + bstride + s * 1024, 64);
          HERD_TDPBF16(2, 4, 7);
          if (na > 1) HERD_TDPBF16(3, 5, 7);
        }
      }
      HERD_TSTORE(0, cbuf[0], 64);
      HERD_TSTORE(1, cbuf[1], 64);
      HERD_TSTORE(2, cbuf[2], 64);
      HERD_TSTORE(3, cbuf[3], 64);
      const float* rs = fp8 ? w.row_scale : nullptr;
      for (int64_t j = 0; j < nb; ++j)
        for (int64_t h = 0; h < na; ++h)
          write_out(cbuf[j * 2 + h], rb + 16 * h, std::min<int64_t>(16, nr - 16 * h), tb + 16 * j,
                    std::min<int64_t>(16, t1 - tb - 16 * j), rs, y, ys);
    }
  }
  _tile_release();
}

// Q4G group (64 bytes) of 16 rows -> two A tiles of unsigned codes: [2][16][64] (low / high half).
HERD_AMX void unpack_q4(const uint8_t* w, int64_t rb, int64_t nr, int64_t g, uint8_t* dst) {
  const __m512i nib = _mm512_set1_epi8(0x0F);
  for (int64_t i = 0; i < 16; ++i) {
    const __m512i b = i < nr ? _mm512_loadu_si512(w + i * rb + g * 64) : _mm512_setzero_si512();
    _mm512_store_si512(dst + i * 64, _mm512_and_si512(b, nib));
    _mm512_store_si512(dst + 1024 + i * 64, _mm512_and_si512(_mm512_srli_epi16(b, 4), nib));
  }
}

// One group's epilogue: acc[o][t] = fma(float(dot − bias·Σq_x), s_w[o]·s_x[t], acc) (q_group_fma).
template <int kShift>
// Rows o >= nr of a tail block do not exist: their scale is taken as 0 (never read past the
// weight's scale array) and write_out drops them.
HERD_AMX inline void group_epilogue(const int32_t* c, const float* ws, int64_t G, int64_t nr,
                                    __m512i xsum, __m512 xsc, __m512* acc) {
  const __m512i bias = _mm512_slli_epi32(xsum, kShift);
#pragma GCC unroll 16
  for (int o = 0; o < 16; ++o) {
    const __m512i d = _mm512_sub_epi32(_mm512_load_si512(c + o * 16), bias);
    const float w_scale = o < nr ? ws[o * G] : 0.0f;
    acc[o] =
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(_mm512_set1_ps(w_scale), xsc), acc[o]);
  }
}

template <DType kType>
HERD_AMX void quant_kernel(const PreparedActs& a, const WeightRef& w, int64_t r0, int64_t r1,
                           int64_t t0, int64_t t1, float* y, int64_t ys) {
  if (a.n < kAmxMinTokens) {
    (kType == DType::Q8G ? vnni_q8_kernel() : vnni_q4_kernel())(a, w, r0, r1, t0, t1, y, ys);
    return;
  }
  load_config();
  constexpr int kShift = kType == DType::Q8G ? 7 : 3;
  const int64_t G = a.groups(), kp = a.kpad, bstride = kp / 4 * 64;
  const int64_t wrb = packed_row_bytes(kType, w.cols);
  const uint8_t* W = static_cast<const uint8_t*>(w.data);
  thread_local AlignedBuffer<uint8_t> pack;  // [G][2][16][64] codes of one 16-row block
  uint8_t* pk = pack.ensure(size_t(G * 2048));
  alignas(64) int32_t cbuf[2][256];
  alignas(64) float out[256];
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int64_t nr = std::min<int64_t>(16, r1 - rb);
    const bool direct = kType == DType::Q8G && nr == 16;
    if (kType == DType::Q4G) {
      for (int64_t g = 0; g < G; ++g) unpack_q4(W + rb * wrb, wrb, nr, g, pk + g * 2048);
    } else if (!direct) {
      std::memset(pk, 0, size_t(G * 2048));
      for (int64_t g = 0; g < G; ++g)
        for (int64_t i = 0; i < nr; ++i)
          for (int h = 0; h < 2; ++h)
            std::memcpy(pk + g * 2048 + h * 1024 + i * 64, W + (rb + i) * wrb + g * 128 + h * 64,
                        64);
    }
    const uint8_t* abase = direct ? W + rb * wrb : pk;
    const int64_t astride = direct ? wrb : 64, ag = direct ? 128 : 2048, ah = direct ? 64 : 1024;
    const float* ws = w.group_scale + rb * G;
    for (int64_t tb = t0; tb < t1; tb += 16) {
      const int64_t nt = std::min<int64_t>(16, t1 - tb);
      const __mmask16 tm = __mmask16((1u << nt) - 1);
      const uint8_t* b = a.amx.data() + (tb / 16) * bstride;
      __m512 acc[16];
      for (int o = 0; o < 16; ++o) acc[o] = _mm512_setzero_ps();
      // Groups in pairs so the two C tiles alternate: the next group's tile products run while
      // this group's epilogue converts and scales (tile numbers must be constants).
      for (int64_t g = 0; g < G; g += 2) {
        HERD_TZERO(0);
        HERD_TLOAD(4, abase + g * ag, astride);
        HERD_TLOAD(6, b + g * 2048, 64);
        HERD_TDPBUSD(0, 4, 6);
        HERD_TLOAD(5, abase + g * ag + ah, astride);
        HERD_TLOAD(7, b + g * 2048 + 1024, 64);
        HERD_TDPBUSD(0, 5, 7);
        HERD_TSTORE(0, cbuf[0], 64);
        if (g + 1 < G) {
          HERD_TZERO(1);
          HERD_TLOAD(4, abase + (g + 1) * ag, astride);
          HERD_TLOAD(6, b + (g + 1) * 2048, 64);
          HERD_TDPBUSD(1, 4, 6);
          HERD_TLOAD(5, abase + (g + 1) * ag + ah, astride);
          HERD_TLOAD(7, b + (g + 1) * 2048 + 1024, 64);
          HERD_TDPBUSD(1, 5, 7);
        }
        for (int64_t gg = g; gg < std::min(G, g + 2); ++gg) {
          if (gg > g) HERD_TSTORE(1, cbuf[1], 64);
          const __m512i xs = _mm512_maskz_loadu_epi32(tm, a.q_sum.data() + gg * a.n + tb);
          const __m512 xsc = _mm512_maskz_loadu_ps(tm, a.q_scale.data() + gg * a.n + tb);
          group_epilogue<kShift>(cbuf[gg - g], ws + gg, G, nr, xs, xsc, acc);
        }
      }
      for (int o = 0; o < 16; ++o) _mm512_store_ps(out + o * 16, acc[o]);
      write_out(out, rb, nr, tb, nt, nullptr, y, ys);
    }
  }
  _tile_release();
}

}  // namespace

namespace {

// Activations as the tile unit's B operand: [block of 16 tokens][row_dwords][16 tokens] of the
// rows' 4-byte units (a bf16 pair or an int8 quad of K), zero beyond n.
void interleave_dwords(const void* rows, int64_t n, int64_t row_dwords,
                       AlignedBuffer<uint8_t>& out) {
  const int64_t bytes = (n + 15) / 16 * row_dwords * 64;
  uint32_t* d = reinterpret_cast<uint32_t*>(out.ensure(size_t(bytes)));
  std::memset(d, 0, size_t(bytes));
  for (int64_t t = 0; t < n; ++t) {
    const uint32_t* s = static_cast<const uint32_t*>(rows) + t * row_dwords;
    uint32_t* dt = d + (t / 16) * row_dwords * 16 + t % 16;
    for (int64_t k = 0; k < row_dwords; ++k) dt[k * 16] = s[k];
  }
}

}  // namespace

void amx_pack_bf16(PreparedActs& a) {
  interleave_dwords(a.bf16.data(), a.n, a.kpad / 2, a.amx);  // K pairs
}

void amx_pack_int8(PreparedActs& a) {
  if (a.n < kAmxMinTokens) return;                        // VNNI reads a.q directly
  interleave_dwords(a.q.data(), a.n, a.kpad / 4, a.amx);  // K quads
}

KernelSet amx_kernels() {  // F32 weights: no AMX f32 product (gemm.cc takes AVX-512's)
  return {{DType::BF16, bf16_kernel},
          {DType::BF16T, bf16t_kernel},
          {DType::F8_E4M3, bf16_kernel},
          {DType::Q8G, quant_kernel<DType::Q8G>},
          {DType::Q4G, quant_kernel<DType::Q4G>}};
}

}  // namespace herd::gemm_detail
