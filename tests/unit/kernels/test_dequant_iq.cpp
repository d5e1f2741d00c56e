// The lattice i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M): the codebooks
// against the published tables (a hash of every byte, taken from the tables as published), and
// the dequantizers on hand-built blocks whose expectations follow the formats' own
// description, field by field and in float as the formats define it (d · (0.5 + s) / 4 ·
// grid · sign, d · (2s + 1) · (grid ± 1/8), ...), not the integer form of iq_unpack.h; round
// trips through the reference quantizers.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/dequant.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/iq_grids.h"
#include "cpu-kernels/lowbit_formats.h"
#include "cpu-kernels/quantize.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

using test::deq;

template <typename W>
uint64_t fnv_bytes(const W* grid, int n, int elems) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < elems; ++j) {
      h ^= static_cast<uint8_t>(grid[i] >> (8 * j));
      h *= 0x100000001b3ull;
    }
  return h;
}

TEST(DequantIq, CodebooksAreThePublishedTables) {
  const IqGrids& g = iq_grids();
  EXPECT_EQ(fnv_bytes(g.iq2xxs, 256, 8), 0xbb4ee025b5ac6e8eull);
  EXPECT_EQ(fnv_bytes(g.iq2xs, 512, 8), 0xc9b1ee61e79909bdull);
  EXPECT_EQ(fnv_bytes(g.iq2s, 1024, 8), 0x123edd38a3b62b90ull);
  EXPECT_EQ(fnv_bytes(g.iq3xxs, 256, 4), 0xdfa5dc83d6a155d5ull);
  EXPECT_EQ(fnv_bytes(g.iq3s, 512, 4), 0xfa37020c25b44829ull);
  EXPECT_EQ(fnv_bytes(g.iq1s, 2048, 8), 0x6703ed863501ae2eull);
  // A few points read straight from the tables.
  EXPECT_EQ(g.iq2xxs[0], 0x0808080808080808ull);
  EXPECT_EQ(g.iq3s[0], 0x01010101u);
  for (int s = 0; s < 128; ++s) {
    const uint8_t full = iq_signs_from7(static_cast<uint32_t>(s));
    EXPECT_EQ(full & 127, s);
    EXPECT_EQ(__builtin_popcount(full) % 2, 0) << s;
  }
  EXPECT_EQ(g.sign_mask[0x81], 0xFF000000000000FFull);
}

// The grid values of point p of a codebook of byte entries.
int gv(uint64_t point, int j) { return static_cast<int8_t>(static_cast<uint8_t>(point >> (8 * j))); }

void put16(uint8_t* p, uint32_t v) {
  const auto h = static_cast<uint16_t>(v);
  std::memcpy(p, &h, 2);
}

// A random block of a type, with its f16 scale(s) set to d (IQ1_M: spread over its nibbles).
std::vector<uint8_t> random_block(WeightType t, uint32_t seed, uint16_t d) {
  std::mt19937 r(seed);
  std::vector<uint8_t> b(weight_type_info(t).block_bytes);
  for (auto& v : b) v = static_cast<uint8_t>(r());
  if (t == WeightType::IQ1_M) {
    for (int w = 0; w < 4; ++w) {
      uint16_t word;
      std::memcpy(&word, b.data() + 48 + 2 * w, 2);
      put16(b.data() + 48 + 2 * w, (word & 0x0FFF) | ((d >> (4 * w)) & 0xF) << 12);
    }
  } else {
    put16(b.data(), d);
  }
  return b;
}

float sgn(uint32_t signs, int j) { return (signs >> j) & 1 ? -1.0f : 1.0f; }

TEST(DequantIq, Iq2XxsAndIq3XxsFollowTheirFields) {
  const IqGrids& g = iq_grids();
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    {
      const auto b = random_block(WeightType::IQ2_XXS, seed, 0x3A00);  // 0.75
      const auto y = deq(WeightType::IQ2_XXS, b.data(), 256);
      for (int ib = 0; ib < 8; ++ib) {
        uint32_t idx, aux;
        std::memcpy(&idx, b.data() + 2 + 8 * ib, 4);
        std::memcpy(&aux, b.data() + 6 + 8 * ib, 4);
        const float db = 0.75f * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
        for (int l = 0; l < 4; ++l) {
          const uint32_t s7 = (aux >> (7 * l)) & 127, s = s7 | (__builtin_popcount(s7) & 1u) << 7;
          for (int j = 0; j < 8; ++j)
            ASSERT_EQ(y[32 * ib + 8 * l + j], db * gv(g.iq2xxs[(idx >> (8 * l)) & 255], j) * sgn(s, j))
                << seed << " " << ib << " " << l << " " << j;
        }
      }
    }
    {
      const auto b = random_block(WeightType::IQ3_XXS, seed, 0x4100);  // 2.5
      const auto y = deq(WeightType::IQ3_XXS, b.data(), 256);
      for (int ib = 0; ib < 8; ++ib) {
        uint32_t aux;
        std::memcpy(&aux, b.data() + 2 + 64 + 4 * ib, 4);
        const float db = 2.5f * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
        for (int l = 0; l < 4; ++l) {
          const uint32_t s7 = (aux >> (7 * l)) & 127, s = s7 | (__builtin_popcount(s7) & 1u) << 7;
          const uint32_t p1 = g.iq3xxs[b[2 + 8 * ib + 2 * l]], p2 = g.iq3xxs[b[2 + 8 * ib + 2 * l + 1]];
          for (int j = 0; j < 4; ++j) {
            ASSERT_EQ(y[32 * ib + 8 * l + j], db * gv(p1, j) * sgn(s, j)) << seed << " " << ib;
            ASSERT_EQ(y[32 * ib + 8 * l + 4 + j], db * gv(p2, j) * sgn(s, 4 + j)) << seed << " " << ib;
          }
        }
      }
    }
  }
}

TEST(DequantIq, Iq2XsAndIq2SFollowTheirFields) {
  const IqGrids& g = iq_grids();
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    {
      const auto b = random_block(WeightType::IQ2_XS, seed, 0xB800);  // -0.5
      const auto y = deq(WeightType::IQ2_XS, b.data(), 256);
      for (int ib = 0; ib < 8; ++ib) {
        const uint8_t sc = b[2 + 64 + ib];
        for (int l = 0; l < 4; ++l) {
          uint16_t q;
          std::memcpy(&q, b.data() + 2 + 2 * (4 * ib + l), 2);
          const float db = -0.5f * (0.5f + static_cast<float>(l < 2 ? sc & 15 : sc >> 4)) * 0.25f;
          const uint32_t s7 = q >> 9, s = s7 | (__builtin_popcount(s7) & 1u) << 7;
          for (int j = 0; j < 8; ++j)
            ASSERT_EQ(y[32 * ib + 8 * l + j], db * gv(g.iq2xs[q & 511], j) * sgn(s, j)) << seed << " " << ib;
        }
      }
    }
    {
      const auto b = random_block(WeightType::IQ2_S, seed, 0x3C00);
      const auto y = deq(WeightType::IQ2_S, b.data(), 256);
      for (int ib = 0; ib < 8; ++ib) {
        const uint8_t sc = b[2 + 64 + 8 + ib], qh = b[2 + 64 + ib];
        for (int l = 0; l < 4; ++l) {
          const float db = (0.5f + static_cast<float>(l < 2 ? sc & 15 : sc >> 4)) * 0.25f;
          const int idx = b[2 + 4 * ib + l] | ((qh >> (2 * l)) & 3) << 8;
          const uint32_t s = b[2 + 32 + 4 * ib + l];
          for (int j = 0; j < 8; ++j)
            ASSERT_EQ(y[32 * ib + 8 * l + j], db * gv(g.iq2s[idx], j) * sgn(s, j)) << seed << " " << ib;
        }
      }
    }
  }
}

TEST(DequantIq, Iq3SFollowsItsFields) {
  const IqGrids& g = iq_grids();
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    const auto b = random_block(WeightType::IQ3_S, seed, 0x3400);  // 0.25
    const auto y = deq(WeightType::IQ3_S, b.data(), 256);
    const uint8_t *qs = b.data() + 2, *qh = qs + 64, *signs = qh + 8, *scales = signs + 32;
    for (int ib = 0; ib < 8; ++ib) {
      const float db = 0.25f * static_cast<float>(1 + 2 * ((ib % 2) ? scales[ib / 2] >> 4 : scales[ib / 2] & 15));
      for (int p = 0; p < 8; ++p) {  // eight points of 4 per 32
        const int idx = qs[8 * ib + p] | ((qh[ib] >> p) & 1) << 8;
        const uint32_t s = signs[4 * ib + p / 2];
        for (int j = 0; j < 4; ++j)
          ASSERT_EQ(y[32 * ib + 4 * p + j], db * gv(g.iq3s[idx], j) * sgn(s, 4 * (p % 2) + j)) << seed << " " << ib;
      }
    }
  }
}

TEST(DequantIq, Iq1SAndIq1MFollowTheirFields) {
  const IqGrids& g = iq_grids();
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    {
      const auto b = random_block(WeightType::IQ1_S, seed, 0x3E00);  // 1.5
      const auto y = deq(WeightType::IQ1_S, b.data(), 256);
      for (int ib = 0; ib < 8; ++ib) {
        uint16_t h;
        std::memcpy(&h, b.data() + 2 + 32 + 2 * ib, 2);
        const float dl = 1.5f * static_cast<float>(2 * ((h >> 12) & 7) + 1);
        const float delta = (h & 0x8000) ? -0.125f : 0.125f;
        for (int l = 0; l < 4; ++l) {
          const int idx = b[2 + 4 * ib + l] | ((h >> (3 * l)) & 7) << 8;
          for (int j = 0; j < 8; ++j)
            ASSERT_EQ(y[32 * ib + 8 * l + j], dl * (static_cast<float>(gv(g.iq1s[idx], j)) + delta)) << seed;
        }
      }
    }
    {
      const auto b = random_block(WeightType::IQ1_M, seed, 0xC100);  // -2.5
      const auto y = deq(WeightType::IQ1_M, b.data(), 256);
      uint16_t w[4];
      std::memcpy(w, b.data() + 48, 8);
      for (int ib = 0; ib < 8; ++ib)
        for (int l = 0; l < 4; ++l) {  // points l < 2: the first 16 (dl1), else the second (dl2)
          const int shift = 6 * (ib % 2) + (l < 2 ? 0 : 3);
          const float dl = -2.5f * static_cast<float>(2 * ((w[ib / 2] >> shift) & 7) + 1);
          const uint8_t qh = b[32 + 2 * ib + l / 2];
          const int h = (l % 2) ? qh >> 4 : qh & 15;
          const int idx = b[4 * ib + l] | (h & 7) << 8;
          const float delta = (h & 8) ? -0.125f : 0.125f;
          for (int j = 0; j < 8; ++j)
            ASSERT_EQ(y[32 * ib + 8 * l + j], dl * (static_cast<float>(gv(g.iq1s[idx], j)) + delta)) << seed;
        }
    }
  }
}

// Round trips on N(0, 1) data. These quantizers are simple (lowbit_formats.h); the bounds are
// well above what they give and far below what a wrong field placement gives (NMSE ~1).
TEST(DequantIq, QuantizeRoundTripPerType) {
  std::mt19937 r(11);
  std::normal_distribution<float> nd;
  std::vector<float> x(4096);
  for (float& v : x) v = nd(r);
  const struct {
    WeightType t;
    double max_nmse;
  } cases[] = {{WeightType::IQ2_XXS, 0.2}, {WeightType::IQ2_XS, 0.2}, {WeightType::IQ2_S, 0.2},
               {WeightType::IQ3_XXS, 0.08}, {WeightType::IQ3_S, 0.08}, {WeightType::IQ1_S, 0.45},
               {WeightType::IQ1_M, 0.45}};
  for (const auto& c : cases) {
    const auto bytes = quantize_row_ref(c.t, x.data(), 4096);
    ASSERT_EQ(bytes.size(), *weight_type_bytes(c.t, 4096));
    const double e = test::nmse(x, deq(c.t, bytes.data(), 4096));
    std::printf("%-8s round-trip NMSE %.3g\n", std::string(weight_type_name(c.t)).c_str(), e);
    EXPECT_LE(e, c.max_nmse) << weight_type_name(c.t);
    EXPECT_TRUE(is_gguf_block_type(c.t));
    EXPECT_TRUE(is_lattice_iq(c.t));
    // Zeros stay zeros.
    const std::vector<float> zero(256, 0.0f);
    const auto zb = quantize_row_ref(c.t, zero.data(), 256);
    for (float v : deq(c.t, zb.data(), 256)) ASSERT_EQ(v, 0.0f) << weight_type_name(c.t);
  }
}

}  // namespace
}  // namespace strata
