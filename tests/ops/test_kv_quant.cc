// KV row conversion (ops/kv_quant.h): names, and round trips through each stored type with the
// error bound the format allows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "herd/base/dtype.h"
#include "herd/ops/kv_quant.h"
#include "ops/ops_test_util.h"

namespace herd {
namespace {

constexpr KvType kTypes[] = {KvType::kF32, KvType::kBF16, KvType::kInt8, KvType::kFp8E4M3};

TEST(KvType, NamesRoundTrip) {
  EXPECT_STREQ(kv_type_name(KvType::kF32), "f32");
  EXPECT_STREQ(kv_type_name(KvType::kBF16), "bf16");
  EXPECT_STREQ(kv_type_name(KvType::kInt8), "int8");
  EXPECT_STREQ(kv_type_name(KvType::kFp8E4M3), "fp8-e4m3");
  for (KvType t : kTypes) {
    KvType got = KvType::kF32;
    EXPECT_TRUE(parse_kv_type(kv_type_name(t), &got));
    EXPECT_EQ(got, t);
  }
  KvType got = KvType::kInt8;
  EXPECT_FALSE(parse_kv_type("fp8", &got));
  EXPECT_FALSE(parse_kv_type("", &got));
  EXPECT_EQ(got, KvType::kInt8);  // untouched on failure
}

// One row of n_kv_heads heads, each head with its own magnitude (scales must be per head).
struct Row {
  int64_t nkv, hd;
  std::vector<float> x, back, scales;
  std::vector<uint8_t> bytes;
  Row(KvType t, std::vector<float> values, int64_t n_kv_heads, int64_t head_dim)
      : nkv(n_kv_heads), hd(head_dim), x(std::move(values)) {
    bytes.resize(x.size() * kv_type_bytes(t));
    scales.assign(size_t(nkv), -1.0f);
    back.resize(x.size());
    kv_store_row(t, x.data(), nkv, hd, bytes.data(), kv_type_scaled(t) ? scales.data() : nullptr);
    kv_load_row(t, bytes.data(), kv_type_scaled(t) ? scales.data() : nullptr, nkv, hd, back.data());
  }
  float head_max(int64_t h) const {
    float m = 0;
    for (int64_t i = 0; i < hd; ++i) m = std::fmax(m, std::fabs(x[size_t(h * hd + i)]));
    return m;
  }
};

std::vector<float> test_values(int64_t nkv, int64_t hd, uint64_t seed) {
  test::Rng rng(seed);
  std::vector<float> x;
  for (int64_t h = 0; h < nkv; ++h) {
    const float mag = std::ldexp(1.0f, int(h * 5 - 8));  // 2^-8 .. 2^12: heads far apart
    for (float f : rng.vec(size_t(hd), mag)) x.push_back(f);
  }
  return x;
}

TEST(KvQuant, F32IsExact) {
  const Row r(KvType::kF32, test_values(3, 20, 1), 3, 20);
  EXPECT_EQ(0, std::memcmp(r.x.data(), r.back.data(), r.x.size() * 4));
}

// bf16 keeps 8 significant bits: round to nearest gives relative error <= 2^-9 < 2^-8.
TEST(KvQuant, Bf16RelativeError) {
  const Row r(KvType::kBF16, test_values(5, 20, 2), 5, 20);
  for (size_t i = 0; i < r.x.size(); ++i) {
    EXPECT_LE(std::fabs(r.back[i] - r.x[i]), std::ldexp(std::fabs(r.x[i]), -8)) << i;
    EXPECT_EQ(r.back[i], bf16_to_f32(f32_to_bf16(r.x[i])));  // round to nearest even
  }
  // A tie goes to the even mantissa: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7.
  const Row tie(KvType::kBF16, {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f}, 1, 2);
  EXPECT_EQ(tie.back[0], 1.0f);
  EXPECT_EQ(tie.back[1], 1.0f + 0x1p-6f);
}

// int8: scale = max|x|/127 per head, codes round to nearest, so |error| <= scale/2, and the
// head's largest element comes back (to f32 rounding) as itself.
TEST(KvQuant, Int8PerHeadErrorAtMostHalfAScale) {
  const int64_t nkv = 5, hd = 20;
  const Row r(KvType::kInt8, test_values(nkv, hd, 3), nkv, hd);
  for (int64_t h = 0; h < nkv; ++h) {
    const float scale = r.scales[size_t(h)];
    EXPECT_EQ(scale, r.head_max(h) / 127.0f) << h;
    const auto* codes = reinterpret_cast<const int8_t*>(r.bytes.data()) + h * hd;
    for (int64_t i = 0; i < hd; ++i) {
      const size_t k = size_t(h * hd + i);
      // Plus f32 rounding of x/scale and of code*scale.
      EXPECT_LE(std::fabs(r.back[k] - r.x[k]), scale * 0.5f + std::fabs(r.x[k]) * 0x1p-22f)
          << h << " " << i;
      EXPECT_GE(codes[i], -127);
      EXPECT_EQ(r.back[k], float(codes[i]) * scale);
    }
  }
}

// fp8 e4m3: scale = max|x|/448; x/scale rounds to the nearest e4m3 value, whose ulp at magnitude
// a in [2^e, 2^(e+1)) is 2^(e-3) (subnormals: 2^-9), so |x/scale - code| <= ulp/2.
TEST(KvQuant, Fp8PerHeadErrorAtMostHalfAnUlp) {
  const int64_t nkv = 5, hd = 20;
  const Row r(KvType::kFp8E4M3, test_values(nkv, hd, 4), nkv, hd);
  for (int64_t h = 0; h < nkv; ++h) {
    const float scale = r.scales[size_t(h)];
    EXPECT_EQ(scale, r.head_max(h) / 448.0f) << h;
    for (int64_t i = 0; i < hd; ++i) {
      const size_t k = size_t(h * hd + i);
      const float a = std::fabs(r.x[k] / scale);
      const float ulp = a < 0x1p-6f ? 0x1p-9f : std::ldexp(1.0f, std::ilogb(a) - 3);
      const float code = r.back[k] / scale;  // exact: the stored value is code * scale
      EXPECT_LE(std::fabs(code - r.x[k] / scale), ulp * 0.5f + a * 0x1p-22f) << h << " " << i;
      EXPECT_LE(std::fabs(code), 448.0f);
    }
  }
}

// An all-zero head gets scale 0 and zero codes, and reads back as zeros (not NaN from 0/0).
TEST(KvQuant, ZeroHeadGivesZeroScaleAndZeros) {
  for (KvType t : kTypes) {
    std::vector<float> x(40, 0.0f);
    for (int i = 20; i < 40; ++i) x[size_t(i)] = float(i);  // head 1 is not zero
    const Row r(t, x, 2, 20);
    if (kv_type_scaled(t)) {
      EXPECT_EQ(r.scales[0], 0.0f) << kv_type_name(t);
    }
    for (int i = 0; i < 20; ++i) EXPECT_EQ(r.back[size_t(i)], 0.0f) << kv_type_name(t);
    for (int i = 0; i < 20 * int(kv_type_bytes(t)); ++i) EXPECT_EQ(r.bytes[size_t(i)], 0);
  }
}

// The largest magnitude maps to the largest code (127, 448): nothing beyond it, sign kept.
TEST(KvQuant, ScaledTypesSaturateAtTheHeadMax) {
  const std::vector<float> x = {-1000.0f, 999.9f, 0.5f, -0.25f};
  const Row i8(KvType::kInt8, x, 1, 4);
  const auto* c = reinterpret_cast<const int8_t*>(i8.bytes.data());
  EXPECT_EQ(c[0], -127);
  EXPECT_EQ(c[1], 127);
  EXPECT_FLOAT_EQ(i8.back[0], -1000.0f);
  const Row f8(KvType::kFp8E4M3, x, 1, 4);
  EXPECT_EQ(f8.bytes[0], 0xFE);  // -448
  EXPECT_EQ(f8.bytes[1], 0x7E);  // 448: 999.9/scale = 447.96, past the 416..448 midpoint
  EXPECT_FLOAT_EQ(f8.back[0], -1000.0f);
  EXPECT_FALSE(std::isnan(f8.back[1]));  // never the NaN code 0x7F
}

// Reading one head alone (offset src, scales + h, n_kv_heads = 1) gives that head's values:
// the reference attention reads so.
TEST(KvQuant, LoadOneHeadMatchesWholeRow) {
  for (KvType t : kTypes) {
    const Row r(t, test_values(4, 20, 5), 4, 20);
    std::vector<float> head(20);
    for (int64_t h = 0; h < 4; ++h) {
      kv_load_row(t, r.bytes.data() + size_t(h * 20) * kv_type_bytes(t),
                  kv_type_scaled(t) ? r.scales.data() + h : nullptr, 1, 20, head.data());
      EXPECT_EQ(0, std::memcmp(head.data(), &r.back[size_t(h * 20)], 80)) << kv_type_name(t);
    }
  }
}

// A K row in the cache has its elements kKvKeyBlock apart (ops/kv_view.h): storing and loading
// with that stride gives the contiguous row's bytes and values, element i at i * stride, and
// leaves the bytes between untouched. head_dim 300 takes the fp8 store's staging in pieces.
TEST(KvQuant, StridedRowMatchesContiguous) {
  for (KvType t : kTypes) {
    for (int64_t hd : {20, 300}) {
      const Row r(t, test_values(3, hd, 9), 3, hd);
      const int64_t n = 3 * hd, e = int64_t(kv_type_bytes(t)), st = kKvKeyBlock;
      std::vector<uint8_t> strided(size_t(n * st * e), 0xA5);
      std::vector<float> scales(3, -1.0f), back(static_cast<size_t>(n)),
          head(static_cast<size_t>(hd));
      float* sc = kv_type_scaled(t) ? scales.data() : nullptr;
      kv_store_row(t, r.x.data(), 3, hd, strided.data(), sc, st);
      for (int64_t i = 0; i < n * st; ++i)
        for (int64_t b = 0; b < e; ++b) {
          const uint8_t got = strided[size_t(i * e + b)];
          const uint8_t want = i % st == 0 ? r.bytes[size_t(i / st * e + b)] : uint8_t(0xA5);
          ASSERT_EQ(got, want) << kv_type_name(t) << " element slot " << i;
        }
      if (sc) {
        EXPECT_EQ(scales, r.scales) << kv_type_name(t);
      }
      kv_load_row(t, strided.data(), sc, 3, hd, back.data(), st);
      EXPECT_EQ(0, std::memcmp(back.data(), r.back.data(), size_t(n) * 4)) << kv_type_name(t);
      kv_load_row(t, strided.data() + size_t(2 * hd * st * e), sc ? sc + 2 : nullptr, 1, hd,
                  head.data(), st);  // one head, as the reference attention reads a K head
      EXPECT_EQ(0, std::memcmp(head.data(), &r.back[size_t(2 * hd)], size_t(hd) * 4))
          << kv_type_name(t);
    }
  }
}

// NaN and infinity must not crash; finite neighbours of a NaN keep a finite scale.
TEST(KvQuant, NonFiniteInputDoesNotCrash) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (KvType t : kTypes) {
    const Row r(t, {nan, 1.0f, -2.0f, 0.5f, inf, 1.0f, -inf, 0.0f}, 2, 4);
    if (kv_type_scaled(t)) {
      EXPECT_FLOAT_EQ(r.scales[0], 2.0f / (t == KvType::kInt8 ? 127.0f : 448.0f));
      EXPECT_FLOAT_EQ(r.back[2], -2.0f) << kv_type_name(t);
    } else {
      EXPECT_TRUE(std::isnan(r.back[0])) << kv_type_name(t);
      EXPECT_EQ(r.back[4], inf);
    }
  }
}

}  // namespace
}  // namespace herd
