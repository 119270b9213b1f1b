// The fast attention's per-call driver, compiled once per instruction set: attention_tiled.cc
// (AVX-512) and attention_tiled_avx2.cc (AVX2) each include it inside their own namespace, after
// defining with that ISA's target attribute HERD_ATTN_TARGET, the type Mask16 (16 lane bits) and
// the kernels it calls: block_mask, widen_block<T>, score_rows<NB>, consume<T>,
// softmax_step<T> and reduce_add16. The driver is the same text for both, so both keep the same
// steps of exactly 16 allowed keys and hence attention_fast.h's batch invariance; only the
// kernels' registers differ. Internal to ops/; no include guard on purpose.
//
// The partial softmax of the queries over the keys of blocks [seg.b0, seg.b1) whose positions
// lie in segment seg.seg, for the GQA groups [g0, g1) (at most kMaxGroups): per group i, per
// query head (row t*G + h of part + i*part_stride, hd + 2 floats) the running max m, the sum l
// and the unnormalized output o, as attention_fast.h's KvPartial describes. The groups take each
// block pair in turn, so one call reads every head's part of a K or V row while it is in cache
// and the rows stream in address order; each group's arithmetic is that of a call for it alone.
//
// P::kOn swaps in another set of kernels with their own data layout (attention_tiled.cc's
// Bf16Pairs: queries and key blocks as bf16 pairs, pair-ordered outputs): P::queries,
// P::widen, P::score<NB>, P::consume, P::step and P::out replace the conversion, widen_block,
// score_rows, consume, softmax_step and the output copy.
struct NoPairs {
  static constexpr bool kOn = false;
};
template <KvType T, class P = NoPairs>
HERD_ATTN_TARGET void groups(const AttentionShape& sh, int64_t g0, int64_t g1,
                             const AttentionQueries& qs, const KvView& kv, const KvSegment& seg,
                             float* part, int64_t part_stride, AttentionScratch& scratch) {
  const int64_t group = sh.n_kv_heads > 0 ? std::max<int64_t>(1, sh.n_heads / sh.n_kv_heads) : 1;
  const int64_t hd = sh.head_dim, n = qs.n, hdp = (hd + 15) / 16 * 16, ng = g1 - g0;
  const int64_t rows = n * group;  // query heads of one group (the most any group has)
  const int64_t m_floats = (rows + 15) / 16 * 16, G16 = (group + 15) / 16 * 16;
  const int64_t per_group = rows * (32 + hdp + 16) + m_floats;
  const int64_t q_floats = P::kOn ? ng * rows * hd / 2 : 0;  // the queries as bf16 pairs
  float* f = scratch.f.ensure(
      size_t(2 * hdp * 16 + rows * 32 + group * 16 + G16 + ng * per_group + q_floats));
  // Shared by the groups (each uses them and is done before the next): key blocks, scores,
  // one step's probabilities, rescales, the block pair's masks and one step's rows.
  State shared;
  shared.kv = &kv;
  shared.hd = hd, shared.hdp = hdp;
  shared.kt = f, f += 2 * hdp * 16;
  shared.s = f, f += rows * 32;
  shared.p = f, f += group * 16;
  shared.alpha = f, f += G16;
  int32_t* ip = scratch.i.ensure(size_t(ng * (n * 32 + n) + 2 * n + 16));
  shared.mask = ip, ip += 2 * n;
  shared.step_idx = ip, ip += 16;
  State st[kMaxGroups];
  for (int64_t i = 0; i < ng; ++i) {
    State& x = st[i];
    x = shared;
    x.g = g0 + i;
    x.G = std::min(sh.n_heads, x.g * group + group) - x.g * group;
    x.pend = f, f += rows * 32;
    x.o = f, f += rows * hdp;
    x.l = f, f += rows * 16;
    x.m = f, f += m_floats;
    x.pidx = ip, ip += n * 32;
    x.cnt = ip, ip += n;
    std::fill_n(x.o, rows * hdp, 0.0f);
    std::fill_n(x.l, rows * 16, 0.0f);
    std::fill_n(x.m, rows, -INFINITY);
    std::fill_n(x.cnt, n, 0);
  }
  if (scratch.q_rows.size() < size_t(rows)) {
    scratch.q_rows.resize(size_t(rows));
    scratch.s_rows.resize(size_t(rows));
  }
  const float** qrow = scratch.q_rows.data();
  float** srow = scratch.s_rows.data();
  // Query head h of group i of query t is row (t * ng + i) * group + h of qb.
  float* qb = f;
  if constexpr (P::kOn) {
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < ng; ++i) {
        const int64_t nr = (t * ng + i) * group;
        for (int64_t h = 0; h < st[i].G; ++h)
          qrow[h] = qs.q + t * qs.q_stride + (st[i].g * group + h) * hd;
        P::queries(qrow, st[i].G, hd, qb + nr * hd / 2);
      }
  }
  int32_t* mask = shared.mask;

  const KvPageLayout& L = kv.layout;
  static_assert(kBlock == kKvKeyBlock, "a key block is one block of the cache's K layout");
  const int64_t v_stride = L.kv_dim * kBytes<T>;  // bytes between V rows of a page
  // Keys of the segment only: positions [seg_lo, seg_hi] (the whole range when unsegmented).
  const int64_t seg_lo = seg.lo(), seg_hi = seg.hi();
  auto chunk_lo = [&](int64_t t) {
    return std::max(sh.chunk_size > 0 ? qs.pos[t] / sh.chunk_size * sh.chunk_size : INT64_MIN,
                    seg_lo);
  };
  auto query_hi = [&](int64_t t) { return std::min(qs.pos[t], seg_hi); };
  // Block b is rows [16b, 16b + 16): 16 consecutive slots of one page (page_rows % 16 == 0).
  auto block_pos = [&](int64_t b) {
    return kv.page_pos(b * kBlock / L.page_rows) + kv.slot(b * kBlock);
  };
  // Next block at or after b with an allowed key for some query; its masks into m[0..n).
  const int64_t n_blocks = std::min(kv.n_rows() / kBlock, seg.b1);
  auto next_block = [&](int64_t b, int32_t* m) {
    for (; b < n_blocks; ++b) {
      const int64_t* pos = block_pos(b);
      int32_t any = 0;
      for (int64_t t = 0; t < n; ++t) any |= m[t] = block_mask(pos, chunk_lo(t), query_hi(t));
      if (any) break;
    }
    return b;
  };
  // Block b's keys of kv head g ([hd][16] in the page, ops/kv_view.h), converted and scaled
  // into kt.
  const int64_t head_block = hd * kBlock * kBytes<T>;  // bytes of one kv head's key block
  auto widen = [&](int64_t b, int64_t g, float* kt) {
    const int64_t r = b * kBlock;
    const uint8_t* k = static_cast<const uint8_t*>(kv.k_row(r)) + g * head_block;
    if constexpr (P::kOn) {
      P::widen(k, hd, kt);
    } else {
      const float* ks = kScaled<T> ? kv.k_scales(r) + g : nullptr;
      widen_block<T>(k, ks, L.n_kv_heads, hd, kt);
    }
  };

  // Block b's K and V rows of the call's kv heads, asked for ahead of use. Without this a
  // decode step over 256k keys waited on memory for most of its time (bench_kernels
  // AttentionDecodeLong: 2.3x slower with one group per call).
  const int64_t head_bytes = hd * kBytes<T>, span = ng * head_bytes;
  // A block's K and V of one kv head (2 KB at small's bf16 heads of 64) go to L1 three blocks
  // ahead; when the call's heads make a block larger than L1 can hold that far ahead, one pair
  // ahead into L2.
  const bool near = 2 * kBlock * span * 3 <= 32 * 1024;
  const int64_t ahead = near ? kPrefetchAhead : 1;
  auto prefetch = [&](int64_t b) {
    if (b >= n_blocks) return;
    const int64_t r = b * kBlock;
    const uint8_t* k = static_cast<const uint8_t*>(kv.k_row(r)) + g0 * head_block;
    const uint8_t* v = static_cast<const uint8_t*>(kv.v_row(r)) + g0 * head_bytes;
    if (near) {
      prefetch_span<true>(k, kBlock * span);
      prefetch_rows<true>(v, v_stride, span);
    } else {
      prefetch_span<false>(k, kBlock * span);
      prefetch_rows<false>(v, v_stride, span);
    }
  };

  // Blocks go in pairs so the score tiles have 8 FMA chains at 4 query heads.
  for (int64_t b = seg.b0;;) {
    const int64_t b0 = next_block(b, mask);
    if (b0 >= n_blocks) break;
    const int64_t b1 = next_block(b0 + 1, mask + n);
    const int nb = b1 < n_blocks ? 2 : 1;
    b = b1 + 1;
    if (n <= kPrefetchMaxQueries) {
      prefetch(b1 + ahead);
      prefetch(b1 + ahead + 1);
    }
    for (int64_t i = 0; i < ng; ++i) {
      State& x = st[i];
      widen(b0, x.g, x.kt);
      if (nb == 2) widen(b1, x.g, x.kt + hdp * 16);
      int64_t nr = 0;
      for (int64_t t = 0; t < n; ++t) {
        if (!(mask[t] | (nb == 2 ? mask[n + t] : 0))) continue;
        for (int64_t h = 0; h < x.G; ++h, ++nr) {
          qrow[nr] = P::kOn ? qb + ((t * ng + i) * group + h) * hd / 2
                            : qs.q + t * qs.q_stride + (x.g * group + h) * hd;
          srow[nr] = x.s + (t * x.G + h) * 32;
        }
      }
      if constexpr (P::kOn) {
        if (nb == 2)
          P::template score<2>(qrow, srow, nr, x.kt, hdp * 16, hd, sh.scale);
        else
          P::template score<1>(qrow, srow, nr, x.kt, hdp * 16, hd, sh.scale);
      } else {
        if (nb == 2)
          score_rows<2>(qrow, srow, nr, x.kt, hdp * 16, hd, sh.scale);
        else
          score_rows<1>(qrow, srow, nr, x.kt, hdp * 16, hd, sh.scale);
      }
      for (int64_t t = 0; t < n; ++t) {
        const float* sc = x.s + t * x.G * 32;
        for (int k = 0; k < nb; ++k) {
          const Mask16 m = Mask16(mask[k * n + t]);
          const int32_t base = int32_t((k == 0 ? b0 : b1) * kBlock);
          if constexpr (P::kOn)
            P::consume(x, t, sc + 16 * k, m, base);
          else
            consume<T>(x, t, sc + 16 * k, m, base);
        }
      }
    }
  }

  const int64_t ps = hd + 2;
  for (int64_t i = 0; i < ng; ++i) {
    State& x = st[i];
    float* pg = part + i * part_stride;
    for (int64_t t = 0; t < n; ++t) {
      if (x.cnt[t] > 0) {
        if constexpr (P::kOn)
          P::step(x, t, x.pend + t * x.G * 32, x.pidx + t * 32, x.cnt[t]);
        else
          softmax_step<T>(x, t, x.pend + t * x.G * 32, x.pidx + t * 32, x.cnt[t]);
      }
      for (int64_t h = 0; h < x.G; ++h) {
        const int64_t row = t * x.G + h;
        float* pr = pg + row * ps;
        pr[0] = x.m[row];
        pr[1] = x.m[row] == -INFINITY ? 0.0f : reduce_add16(x.l + row * 16);
        if constexpr (P::kOn)
          P::out(x.o + row * hdp, hd, pr + 2);
        else
          std::copy_n(x.o + row * hdp, hd, pr + 2);
      }
    }
  }
}
