// Row ops and RoPE against straightforward f64 references and hand-derived values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <random>
#include <vector>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/ops.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/rope.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

std::vector<float> randn(int64_t n, uint32_t seed, float sd = 1) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(g);
  return v;
}

TEST(Ops, RmsNormMatchesF64) {
  const int64_t rows = 3, dim = 96;
  const auto x = randn(rows * dim, 1), w = randn(dim, 2);
  std::vector<float> y(x.size()), ref(x.size());
  rms_norm(x.data(), w.data(), y.data(), rows, dim, 1e-6f);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
    for (int64_t i = 0; i < dim; ++i) ref[r * dim + i] = float(x[r * dim + i] / std::sqrt(ss / dim + 1e-6) * w[i]);
  }
  EXPECT_LT(test::nmse(ref, y), 1e-12);
}

TEST(Ops, LayerNormMatchesF64) {
  const int64_t rows = 2, dim = 64;
  const auto x = randn(rows * dim, 3, 3), w = randn(dim, 4), b = randn(dim, 5);
  std::vector<float> y(x.size()), ref(x.size());
  layer_norm(x.data(), w.data(), b.data(), y.data(), rows, dim, 1e-6f);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < dim; ++i) m += x[r * dim + i];
    m /= dim;
    for (int64_t i = 0; i < dim; ++i) v += (x[r * dim + i] - m) * (x[r * dim + i] - m);
    v /= dim;
    for (int64_t i = 0; i < dim; ++i) ref[r * dim + i] = float((x[r * dim + i] - m) / std::sqrt(v + 1e-6) * w[i] + b[i]);
  }
  EXPECT_LT(test::nmse(ref, y), 1e-12);
}

TEST(Ops, SwigluAndSoftmax) {
  const auto g = randn(50, 6, 4), u = randn(50, 7);
  std::vector<float> y(50), ref(50);
  swiglu(g.data(), u.data(), y.data(), 50);
  for (int i = 0; i < 50; ++i) ref[i] = float(g[i] / (1 + std::exp(-double(g[i]))) * u[i]);
  EXPECT_LT(test::nmse(ref, y), 1e-12);

  std::vector<float> s = {1.0f, 2.0f, -INFINITY, 3.0f};
  softmax(s.data(), 4);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(s[0], std::exp(1.0) / z, 1e-7);
  EXPECT_EQ(s[2], 0.0f);
  EXPECT_NEAR(s[3], std::exp(3.0) / z, 1e-7);
  std::vector<float> all_masked = {-INFINITY, -INFINITY};
  softmax(all_masked.data(), 2);
  EXPECT_EQ(all_masked[0], 0.0f);
  std::vector<float> big = {1000.0f, 1000.0f};  // no overflow
  softmax(big.data(), 2);
  EXPECT_FLOAT_EQ(big[0], 0.5f);
}

// exp_f32 (softmax's and SwiGLU's exponentials) against std::exp at every level: within 4 ulp
// over the whole range where expf is finite and nonzero and past both ends, the special values
// exact, and every tail length of the vector body.
TEST(Ops, ExpMatchesTheScalarExpWithinFourUlpAtEveryLevel) {
  auto ulps = [](float a, float b) {
    int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    return std::abs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));
  };
  const CpuLevel saved = dispatch_level();
  int levels = 0;
  for (CpuLevel level : {CpuLevel::Scalar, CpuLevel::Avx2, CpuLevel::Avx512}) {
    if (set_dispatch_level(level) != level) continue;
    ++levels;
    std::vector<float> x;
    for (int i = 0; i <= 200000; ++i) x.push_back(-105.0f + 195.0f * static_cast<float>(i) / 200000.0f);
    for (float v : {0.0f, -0.0f, 1e-30f, -1e-40f, 88.72f, 88.73f, 1000.0f, -1000.0f, INFINITY, -INFINITY}) x.push_back(v);
    std::vector<float> y = x;
    exp_f32(y.data(), static_cast<int64_t>(y.size()));
    int64_t worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulps(y[i], std::exp(x[i])));
    EXPECT_LE(worst, 4) << cpu_level_name(level);
    float nan = std::nanf("");
    exp_f32(&nan, 1);
    EXPECT_TRUE(std::isnan(nan)) << cpu_level_name(level);
    for (int64_t n = 1; n <= 20; ++n) {  // tails: the elements past n stay as they were
      std::vector<float> t(24, 0.5f);
      exp_f32(t.data(), n);
      for (int64_t i = 0; i < 24; ++i)
        EXPECT_LE(ulps(t[static_cast<size_t>(i)], i < n ? std::exp(0.5f) : 0.5f), 4) << cpu_level_name(level) << " n " << n;
    }
    // SwiGLU in place (out = gate) over more than one chunk equals it out of place.
    const auto g = randn(700, 8, 4), u = randn(700, 9);
    std::vector<float> out(700), inplace = g;
    swiglu_limited(g.data(), u.data(), out.data(), 700, 7.0f);
    swiglu_limited(inplace.data(), u.data(), inplace.data(), 700, 7.0f);
    EXPECT_EQ(out, inplace) << cpu_level_name(level);
  }
  set_dispatch_level(saved);
  EXPECT_GE(levels, 1);
}

TEST(Ops, HadamardEqualsTheSylvesterMatrix) {
  const int64_t n = 16;
  const auto x = randn(n, 8);
  std::vector<float> y = x, ref(n);
  hadamard(y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0;
    for (int64_t j = 0; j < n; ++j) acc += (__builtin_popcountll(i & j) % 2 ? -1.0 : 1.0) * x[j];
    ref[i] = float(acc / std::sqrt(double(n)));
  }
  EXPECT_LT(test::nmse(ref, y), 1e-12);
  hadamard(y.data(), n);  // orthonormal and symmetric: applying it twice is the identity
  EXPECT_LT(test::nmse(x, y), 1e-12);
  EXPECT_THROW(hadamard(y.data(), 12), std::invalid_argument);
}

TEST(Ops, Fp8QuantizeDequantizePerBlock) {
  std::vector<float> x = randn(160, 9);
  x[3] = 10.0f;  // amax of block 0
  std::vector<float> y = x;
  fp8_qdq(y.data(), 160, 128, false);
  const float s0 = 10.0f / 448.0f;
  for (int i = 0; i < 128; ++i) EXPECT_EQ(y[i], e4m3_to_f32(f32_to_e4m3(x[i] / s0)) * s0) << i;
  EXPECT_FLOAT_EQ(y[3], 10.0f);
  // The short last block (32) has its own scale.
  float amax = 0;
  for (int i = 128; i < 160; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float s1 = amax / 448.0f;
  for (int i = 128; i < 160; ++i) EXPECT_EQ(y[i], e4m3_to_f32(f32_to_e4m3(x[i] / s1)) * s1) << i;
  // Power-of-two scales: 2^ceil(log2(10/448)) = 2^-5.
  std::vector<float> z = x;
  fp8_qdq(z.data(), 128, 128, true);
  EXPECT_EQ(z[5], e4m3_to_f32(f32_to_e4m3(x[5] * 32.0f)) / 32.0f);
}

TEST(Ops, Fp4QuantizeDequantizeRoundsToNearestEvenOnTheE2M1Grid) {
  // amax 6 -> scale 2^ceil(log2(6/6)) = 1: the values land on the grid itself.
  std::vector<float> x = {6.0f, 0.25f, 0.75f, 2.5f, 5.0f, -1.25f, -3.5f, 0.2f, 1.75f, 0.0f};
  fp4_qdq(x.data(), 10, 32);
  const std::vector<float> want = {6.0f, 0.0f, 1.0f, 2.0f, 4.0f, -1.0f, -4.0f, 0.0f, 2.0f, 0.0f};
  EXPECT_EQ(x, want);
  // amax 7 -> scale 2: 7/2 = 3.5 ties to 4 -> 8; 1/2 = 0.5 exact.
  std::vector<float> y = {7.0f, 1.0f};
  fp4_qdq(y.data(), 2, 32);
  EXPECT_EQ(y, (std::vector<float>{8.0f, 1.0f}));
  // Each block of 32 has its own scale; an all-zero block stays zero (minimum scale, no NaN).
  std::vector<float> z(64, 0.0f);
  z[40] = 0.3f;  // block 1: scale 2^ceil(log2(0.05)) = 1/16, 0.3·16 = 4.8 -> 4 -> 0.25
  fp4_qdq(z.data(), 64, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(z[i], 0.0f);
  EXPECT_EQ(z[40], 0.25f);
}

TEST(Ops, SwigluLimitedClampsGateAboveAndUpBothWays) {
  const std::vector<float> g = {-3.0f, 0.5f, 12.0f, 20.0f}, u = {2.0f, -15.0f, 1.0f, 11.0f};
  std::vector<float> out(4), plain(4);
  swiglu_limited(g.data(), u.data(), out.data(), 4, 10.0f);
  auto silu = [](double v) { return v / (1 + std::exp(-v)); };
  const double want[4] = {silu(-3) * 2, silu(0.5) * -10, silu(10) * 1, silu(10) * 10};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], want[i], 1e-5 * std::fabs(want[i])) << i;
  swiglu_limited(g.data(), u.data(), out.data(), 4, 0.0f);  // no limit: the plain SwiGLU
  swiglu(g.data(), u.data(), plain.data(), 4);
  EXPECT_EQ(out, plain);
}

TEST(Rope, PlainFrequenciesAndRotation) {
  Rope r({8, 10000});
  ASSERT_EQ(r.freqs().size(), 4u);
  EXPECT_DOUBLE_EQ(r.freqs()[1], std::pow(10000.0, -2.0 / 8));
  std::vector<float> x = {1, 0, 0, 1, 1, 1, 2, 0};
  std::vector<float> y = x;
  r.apply_interleaved(y.data(), 3);
  for (int i = 0; i < 4; ++i) {
    const double a = 3 * r.freqs()[i], c = std::cos(a), s = std::sin(a);
    EXPECT_NEAR(y[2 * i], x[2 * i] * c - x[2 * i + 1] * s, 1e-6);
    EXPECT_NEAR(y[2 * i + 1], x[2 * i] * s + x[2 * i + 1] * c, 1e-6);
  }
  // Halves layout = interleaved layout on the de-interleaved vector.
  std::vector<float> h = {x[0], x[2], x[4], x[6], x[1], x[3], x[5], x[7]};
  r.apply_halves(h.data(), 3);
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(h[i], y[2 * i]);
    EXPECT_FLOAT_EQ(h[4 + i], y[2 * i + 1]);
  }
  // Position 0 is the identity.
  std::vector<float> z = x;
  r.apply_interleaved(z.data(), 0);
  EXPECT_EQ(z, x);
}

TEST(Rope, ManyVectorsAtOnePositionAreEachRotated) {
  // 2 · 160 dims: more angles than the call keeps on the stack.
  for (const int64_t dim : {64, 320}) {
    const Rope r({dim, 10000});
    const int64_t heads = 5, stride = dim + 3;  // a gap between the vectors stays untouched
    std::vector<float> x(static_cast<size_t>(heads * stride));
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) + 0.1f;
    for (const bool halves : {false, true}) {
      std::vector<float> all = x, one = x;
      if (halves) r.apply_halves(all.data(), heads, stride, 1234);
      else r.apply_interleaved(all.data(), heads, stride, 1234);
      for (int64_t h = 0; h < heads; ++h)  // the rotation written out
        for (int64_t i = 0; i < dim / 2; ++i) {
          const double a = 1234.0 * r.freqs()[static_cast<size_t>(i)];
          const auto c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
          const int64_t i0 = h * stride + (halves ? i : 2 * i), i1 = i0 + (halves ? dim / 2 : 1);
          one[i0] = x[i0] * c - x[i1] * s;
          one[i1] = x[i0] * s + x[i1] * c;
        }
      EXPECT_EQ(all, one) << dim << (halves ? " halves" : " interleaved");
      EXPECT_NE(all, x);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t g = dim; g < stride; ++g) EXPECT_EQ(all[h * stride + g], x[h * stride + g]);
    }
  }
}

TEST(Rope, YarnBlendsBetweenTheCorrectionDims) {
  RopeParams p{64, 10000, 40, 4096, 32, 1};
  Rope plain({64, 10000}), yarn(p);
  // Correction dims: d(rot) = 64·ln(4096 / (rot·2π)) / (2·ln 10000).
  const auto corr = [](double rot) { return 64 * std::log(4096 / (rot * 2 * std::numbers::pi)) / (2 * std::log(10000.0)); };
  const double low = std::floor(corr(32)), high = std::ceil(corr(1));
  for (int i = 0; i < 32; ++i) {
    const double f = plain.freqs()[i];
    if (i <= low) EXPECT_DOUBLE_EQ(yarn.freqs()[i], f) << i;          // fast dims unchanged
    else if (i >= high) EXPECT_DOUBLE_EQ(yarn.freqs()[i], f / 40) << i;  // slow dims interpolated
    else EXPECT_TRUE(yarn.freqs()[i] < f && yarn.freqs()[i] > f / 40) << i;
  }
  EXPECT_NEAR(yarn_mscale(40, 1.0), 0.1 * std::log(40.0) + 1, 1e-12);
  EXPECT_EQ(yarn_mscale(1, 1.0), 1.0);
}

}  // namespace
}  // namespace strata
