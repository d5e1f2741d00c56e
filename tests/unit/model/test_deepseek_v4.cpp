// DeepSeek-V4 on the CPU: mHC (Sinkhorn invariants, the transposed residual mix), the KV
// compressor against a direct evaluation of its published formula, and the whole model's
// invariants (prefill == decode == chunked, the quantize-dequantize switch, hash routing,
// routing options). The NumPy reference check is tests/cli/reference_logits.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/mhc.h"
#include "cpu-kernels/ops.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/rope.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/v4_compressor.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

TEST(Mhc, SinkhornIsDoublyStochastic) {
  // The last step normalizes columns: they sum to 1 for any input. Rows converge within 1e-5
  // over the 20 iterations for logits of moderate spread (0.5); more skewed logits converge
  // more slowly (the algorithm's own property, float64 agrees), and the published 20
  // iterations are kept as they are.
  for (float spread : {0.5f, 3.0f})
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      std::vector<float> m = randn(16, seed, spread);
      sinkhorn(m.data(), 4, 20, 1e-6f);
      for (int i = 0; i < 4; ++i) {
        float row = 0, col = 0;
        for (int j = 0; j < 4; ++j) {
          EXPECT_GT(m[i * 4 + j], 0.0f);
          row += m[i * 4 + j];
          col += m[j * 4 + i];
        }
        EXPECT_NEAR(col, 1.0f, 1e-5f) << "seed " << seed << " col " << i;
        if (spread < 1.0f) {
          EXPECT_NEAR(row, 1.0f, 1e-5f) << "seed " << seed << " row " << i;
        }
      }
    }
}

TEST(Mhc, SinkhornSingleIterationIsRowSoftmaxThenColumnNormalize) {
  std::vector<float> m = {0, 1, 0, 2};
  sinkhorn(m.data(), 2, 1, 0.0f);
  const double e = std::exp(1.0), a0 = 1 / (1 + e), b0 = 1 - a0, a1 = 1 / (1 + e * e), b1 = 1 - a1;
  EXPECT_NEAR(m[0], a0 / (a0 + a1), 1e-6);
  EXPECT_NEAR(m[1], b0 / (b0 + b1), 1e-6);
  EXPECT_NEAR(m[2], a1 / (a0 + a1), 1e-6);
  EXPECT_NEAR(m[3], b1 / (b0 + b1), 1e-6);
}

// Many tokens at once (groups of 8 and a tail, the mixes' vector products at every level where
// hc·D is a multiple of 16, the scalar chain elsewhere): each token's u, post, comb and mixed
// streams as that token alone through the published formulas in double.
TEST(Mhc, ATokenBatchGivesEachTokensPublishedMixing) {
  const int64_t hc = 4, n = 11, rows = (2 + hc) * hc;
  for (int64_t D : {64, 9}) {
    const HcParams p{hc, D, 5, 1e-6f, 1e-6f};
    const HcWeights w{randn(rows * hc * D, 21, 0.1f), randn(rows, 22), {0.6f, 1.1f, 0.8f}};
    const std::vector<float> X = randn(n * hc * D, 23), f = randn(n * D, 24);
    test::for_each_level([&](CpuLevel level) {
      std::vector<float> u(static_cast<size_t>(n * D)), post(static_cast<size_t>(n * hc)),
          comb(static_cast<size_t>(n * hc * hc)), Y = X;
      hc_pre(p, w, X.data(), n, u.data(), post.data(), comb.data());
      hc_post(p, f.data(), post.data(), comb.data(), Y.data(), n);
      auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
      auto at = [](const auto& v, int64_t i) { return v[static_cast<size_t>(i)]; };
      for (int64_t t = 0; t < n; ++t) {
        const std::string what = std::string(cpu_level_name(level)) + " D " + std::to_string(D) + " token " +
                                 std::to_string(t);
        const float* x = X.data() + t * hc * D;
        double ss = 0;
        for (int64_t i = 0; i < hc * D; ++i) ss += double(x[i]) * x[i];
        const double r = 1 / std::sqrt(ss / double(hc * D) + 1e-6);
        std::vector<double> m(static_cast<size_t>(rows));
        for (int64_t k = 0; k < rows; ++k) {
          double a = 0;
          for (int64_t i = 0; i < hc * D; ++i) a += double(at(w.fn, k * hc * D + i)) * x[i];
          m[static_cast<size_t>(k)] = a * r;
        }
        std::vector<float> want_comb(static_cast<size_t>(hc * hc));
        for (int64_t k = 0; k < hc * hc; ++k)
          want_comb[static_cast<size_t>(k)] = static_cast<float>(at(m, 2 * hc + k) * 0.8 + at(w.base, 2 * hc + k));
        sinkhorn(want_comb.data(), hc, 5, 1e-6f);
        for (int64_t k = 0; k < hc * hc; ++k) EXPECT_NEAR(at(comb, t * hc * hc + k), at(want_comb, k), 1e-5) << what;
        for (int64_t i = 0; i < hc; ++i)
          EXPECT_NEAR(at(post, t * hc + i), 2 * sig(at(m, hc + i) * 1.1 + at(w.base, hc + i)), 1e-5) << what;
        for (int64_t d = 0; d < D; ++d) {
          double want_u = 0;
          for (int64_t i = 0; i < hc; ++i) want_u += (sig(at(m, i) * 0.6 + at(w.base, i)) + 1e-6) * x[i * D + d];
          EXPECT_NEAR(at(u, t * D + d), want_u, 1e-4) << what;
          for (int64_t j = 0; j < hc; ++j) {
            double want_y = at(post, t * hc + j) * double(at(f, t * D + d));
            for (int64_t i = 0; i < hc; ++i) want_y += double(at(comb, t * hc * hc + i * hc + j)) * x[i * D + d];
            EXPECT_NEAR(at(Y, (t * hc + j) * D + d), want_y, 1e-4) << what;
          }
        }
      }
    });
  }
}

TEST(Mhc, PostMixSumsOverTheFirstIndex) {
  // comb[i][j] = 1 only at (0, 1): stream 1 receives stream 0 (X'_j = Σ_i comb[i][j] X_i).
  const HcParams p{2, 1, 1, 1e-6f, 1e-6f};
  std::vector<float> X = {3.0f, 5.0f};
  const float f[1] = {0.0f}, post[2] = {0.0f, 0.0f}, comb[4] = {0, 1, 0, 0};
  hc_post(p, f, post, comb, X.data(), 1);
  EXPECT_EQ(X[0], 0.0f);
  EXPECT_EQ(X[1], 3.0f);
  // post weights scale the sublayer output per stream.
  std::vector<float> Y = {0.0f, 0.0f};
  const float f2[1] = {2.0f}, post2[2] = {0.5f, 1.5f}, zero[4] = {0, 0, 0, 0};
  hc_post(p, f2, post2, zero, Y.data(), 1);
  EXPECT_EQ(Y, (std::vector<float>{1.0f, 3.0f}));
}

TEST(Mhc, PreWeightsAndHeadFollowThePublishedFormulas) {
  const int64_t hc = 2, D = 3, rows = (2 + hc) * hc;
  const HcParams p{hc, D, 3, 1e-6f, 1e-6f};
  HcWeights w{randn(rows * hc * D, 7, 0.3f), randn(rows, 8), {0.7f, 1.3f, 0.9f}};
  const std::vector<float> X = randn(hc * D, 9);
  std::vector<float> u(D), post(hc), comb(hc * hc);
  hc_pre(p, w, X.data(), 1, u.data(), post.data(), comb.data());
  double ss = 0;
  for (float v : X) ss += double(v) * v;
  const double r = 1 / std::sqrt(ss / (hc * D) + 1e-6);
  auto mix = [&](int k) {
    double a = 0;
    for (int i = 0; i < hc * D; ++i) a += double(w.fn[k * hc * D + i]) * X[i];
    return a * r;
  };
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (int d = 0; d < D; ++d) {
    double want = 0;
    for (int i = 0; i < hc; ++i) want += (sig(mix(i) * 0.7 + w.base[i]) + 1e-6) * X[i * D + d];
    EXPECT_NEAR(u[d], want, 1e-5) << d;
  }
  for (int i = 0; i < hc; ++i) EXPECT_NEAR(post[i], 2 * sig(mix(hc + i) * 1.3 + w.base[hc + i]), 1e-5);
  HcWeights head{randn(hc * hc * D, 10, 0.3f), randn(hc, 11), {0.5f}};
  hc_head(p, head, X.data(), u.data());
  for (int d = 0; d < D; ++d) {
    double want = 0;
    for (int i = 0; i < hc; ++i) {
      double a = 0;
      for (int k = 0; k < hc * D; ++k) a += double(head.fn[i * hc * D + k]) * X[k];
      want += (sig(a * r * 0.5 + head.base[i]) + 1e-6) * X[i * D + d];
    }
    EXPECT_NEAR(u[d], want, 1e-5) << d;
  }
}

// Row j of a compressor, straight from the formula over the whole sequence.
std::vector<float> direct_row(const std::vector<float>& kv, const std::vector<float>& score, int64_t width, int64_t D,
                              int64_t r, int64_t j) {
  const bool overlap = r == 4;
  std::vector<float> row(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) {
    std::vector<std::pair<double, double>> e;  // (score, kv)
    for (int64_t i = 0; i < r; ++i) {
      const int64_t t = j * r + i;
      const int64_t col = overlap ? D + d : d;
      e.push_back({score[t * width + col], kv[t * width + col]});
      if (overlap && j > 0) {
        const int64_t tp = (j - 1) * r + i;
        e.push_back({score[tp * width + d], kv[tp * width + d]});
      }
    }
    double m = -1e300, num = 0, den = 0;
    for (auto [s, v] : e) m = std::max(m, s);
    for (auto [s, v] : e) {
      num += std::exp(s - m) * v;
      den += std::exp(s - m);
    }
    row[static_cast<size_t>(d)] = static_cast<float>(num / den);
  }
  return row;
}

TEST(V4Compressor, IncrementalRowsMatchTheDirectFormula) {
  const int64_t hidden = 6, D = 8, n = 19;
  const Rope rope({4, 10000});
  for (int64_t r : {4, 8}) {
    const int64_t width = (r == 4 ? 2 : 1) * D;
    const std::vector<float> wkv = randn(width * hidden, 1), wg = randn(width * hidden, 2), ape = randn(r * width, 3),
                             norm = randn(D, 4), x = randn(n * hidden, 5);
    auto view = [&](const std::vector<float>& v, int64_t rows) {
      return WeightView{WeightType::F32, reinterpret_cast<const uint8_t*>(v.data()), rows, hidden};
    };
    Device& host = *host_device();
    Compressor whole(host, {view(wkv, width), view(wg, width), ape.data(), norm.data()}, r, D, 1e-6f, &rope, nullptr, n);
    Compressor steps(host, {view(wkv, width), view(wg, width), ape.data(), norm.data()}, r, D, 1e-6f, &rope, nullptr, n);
    whole.append(x.data(), n, 0);
    for (int64_t t = 0; t < n; t += 3) steps.append(x.data() + t * hidden, std::min<int64_t>(3, n - t), t);
    ASSERT_EQ(whole.n_rows(), n / r);
    ASSERT_EQ(steps.n_rows(), n / r);
    // bf16 rows (--cache-type-k bf16): the f32 rows, each element rounded once.
    Compressor half(host, {view(wkv, width), view(wg, width), ape.data(), norm.data()}, r, D, 1e-6f, &rope,
                    nullptr, n, true);
    for (int64_t t = 0; t < n; t += 5) half.append(x.data() + t * hidden, std::min<int64_t>(5, n - t), t);
    ASSERT_EQ(half.n_rows(), n / r);
    ASSERT_TRUE(half.bf16_rows());
    for (int64_t j = 0; j < n / r; ++j)
      for (int64_t d = 0; d < D; ++d)
        ASSERT_EQ(half.row_bf16(j)[d], f32_to_bf16(whole.row(j)[d])) << r << " " << j;

    // Direct: projections, + ape by offset, pooled, normed, rotated at j·r.
    std::vector<float> kv(n * width), sc(n * width);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < width; ++c) {
        double a = 0, b = 0;
        for (int64_t k = 0; k < hidden; ++k) {
          a += double(wkv[c * hidden + k]) * x[t * hidden + k];
          b += double(wg[c * hidden + k]) * x[t * hidden + k];
        }
        kv[t * width + c] = float(a);
        sc[t * width + c] = float(b) + ape[(t % r) * width + c];
      }
    for (int64_t j = 0; j < n / r; ++j) {
      std::vector<float> want = direct_row(kv, sc, width, D, r, j);
      rms_norm(want.data(), norm.data(), want.data(), 1, D, 1e-6f);
      rope.apply_interleaved(want.data() + D - 4, j * r);
      for (int64_t d = 0; d < D; ++d) {
        EXPECT_NEAR(whole.row(j)[d], want[d], 1e-4f * (1 + std::fabs(want[d]))) << "r " << r << " j " << j;
        EXPECT_EQ(steps.row(j)[d], whole.row(j)[d]) << "r " << r << " j " << j;
      }
    }
    whole.reset();
    EXPECT_EQ(whole.n_rows(), 0);
  }
}

const std::vector<int32_t> kTokens = {5, 300, 17, 42, 99, 7, 128, 64, 3, 250, 11, 480, 33, 2, 77, 150, 9, 61};

ModelFiles tiny_v4(const test::ScratchDir& dir, const std::string& name, const std::string& dtype = "f32",
                   Arch arch = Arch::DeepseekV4, bool engram = false) {
  TinyOptions o;
  o.arch = arch;
  o.engram = engram;
  o.dtype = dtype;
  o.seed = 5;
  return open_model(make_tiny_model(o, dir / name).path);
}

std::vector<float> run(const ModelFiles& m, size_t chunk, const ModelOptions& mo = {}) {
  auto lm = load_causal_lm(m, mo);
  std::vector<float> out, step;
  for (size_t i = 0; i < kTokens.size(); i += chunk) {
    lm->forward(std::span<const int32_t>(kTokens.data() + i, std::min(chunk, kTokens.size() - i)), step, true);
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

// Prefill, decode and chunks of a prefill agree up to the order of f32 sums (one or two tokens
// take the fused row dots, more the row path or oneDNN: each sums in its own order). V4's own
// activation quantize-dequantize steps (FP8 on the KV, FP4 on the indexer) round to a coarse
// grid, so an order-sized difference that lands on a rounding tie moves a value by one grid step
// and that step stays in the caches: with them on, the bound is one such step's effect (measured
// up to 6.3e-3 on the fp4 model, AVX-512 fused FP8 dot against the row path), with them off the
// order's own. With exact dots: the default rounds decode's activations (int8 for integer
// types, bf16 for FP8 on AVX-512 BF16 CPUs; test_fast_kernels bounds that).
TEST(DeepseekV4, PrefillEqualsDecodeEqualsChunks) {
  const ScopedIntDot exact(false);
  test::ScratchDir dir("v4");
  ModelOptions no_qdq;
  no_qdq.act_quant = false;
  for (const char* dtype : {"f32", "fp4"}) {
    const ModelFiles m = tiny_v4(dir, dtype, dtype);
    const auto all = run(m, kTokens.size()), all_no_qdq = run(m, kTokens.size(), no_qdq);
    ASSERT_EQ(all.size(), kTokens.size() * m.config.vocab_size);
    for (float v : all) ASSERT_TRUE(std::isfinite(v));
    for (size_t chunk : {1, 3, 5}) {
      EXPECT_LT(test::max_rel(run(m, chunk, no_qdq), all_no_qdq), 1e-5) << dtype << " chunk " << chunk;
      const double d = test::max_rel(run(m, chunk), all);
      if (d > 1e-5) std::printf("%s chunk %zu: a quantize-dequantize tie moved: max rel %.2e\n", dtype, chunk, d);
      EXPECT_LT(d, 3e-2) << dtype << " chunk " << chunk;
    }
  }
}

// --cache-type-k bf16: the window ring and the attention compressor's rows in bf16, each row
// rounded once as it is written (a step's own keys too, before any query sees them). Prefill,
// decode and chunks read the same rounded keys, so they agree as with the f32 cache (without the
// quantize-dequantize steps: as closely; with them: within the same tie bound), and the logits stay
// within the rounding of the f32 cache's. With the FP8 step on, the keys' non-rope dims are FP8
// values with power-of-two scales, which bf16 holds exactly: only the rope dims round.
TEST(DeepseekV4, Bf16CacheKeepsTheInvariantsWithinItsRounding) {
  const ScopedIntDot exact(false);
  test::ScratchDir dir("v4");
  ModelOptions bf16, bf16_no_qdq, no_qdq;
  bf16.kv_bf16 = bf16_no_qdq.kv_bf16 = true;
  bf16_no_qdq.act_quant = no_qdq.act_quant = false;
  const ModelFiles m = tiny_v4(dir, "m");
  const auto all = run(m, kTokens.size(), bf16), all_no_qdq = run(m, kTokens.size(), bf16_no_qdq);
  for (size_t chunk : {1, 5}) {
    EXPECT_LT(test::max_rel(run(m, chunk, bf16_no_qdq), all_no_qdq), 1e-5) << "chunk " << chunk;
    EXPECT_LT(test::max_rel(run(m, chunk, bf16), all), 3e-2) << "chunk " << chunk;
  }
  for (const auto& [with, f32] :
       {std::pair{all, run(m, kTokens.size())}, {all_no_qdq, run(m, kTokens.size(), no_qdq)}}) {
    const double to_f32 = test::nmse(f32, with);
    EXPECT_GT(to_f32, 0) << "the cache was not rounded";
    EXPECT_LT(to_f32, 1e-4);
  }
}

TEST(DeepseekV4, ActivationQuantizationIsPartOfTheMath) {
  test::ScratchDir dir("v4");
  const ModelFiles m = tiny_v4(dir, "m");
  ModelOptions off;
  off.act_quant = false;
  const auto with = run(m, kTokens.size()), without = run(m, kTokens.size(), off);
  EXPECT_GT(test::max_rel(without, with), 1e-3);
  EXPECT_LT(test::max_rel(run(m, 1, off), without), 1e-5);  // the caches agree without it too
}

TEST(DeepseekV4, RoutingOptions) {
  test::ScratchDir dir("v4");
  const ModelFiles m = tiny_v4(dir, "m");
  ModelOptions more;
  more.experts_per_token = 4;
  EXPECT_GT(test::max_rel(run(m, kTokens.size(), more), run(m, kTokens.size())), 1e-4);
  ModelOptions bad;
  bad.experts_per_token = 9;
  STRATA_EXPECT_ERROR(load_causal_lm(m, bad), "--experts-per-token 9 is outside [1, 8]", "n_routed_experts of");

  ModelOptions dyn;
  dyn.min_expert_weight = 0.45f;
  auto lm = load_causal_lm(m, dyn);
  std::vector<float> out;
  lm->forward(kTokens, out, false);
  const RoutingStats s = lm->routing_stats();
  EXPECT_EQ(s.routed, int64_t(kTokens.size()) * 2 * m.config.num_hidden_layers);
  EXPECT_GT(s.skipped, 0);
  EXPECT_LT(s.skipped, s.routed / 2 + 1);  // of two, at most the smaller one is below 0.45
  auto plain = load_causal_lm(m);
  plain->forward(kTokens, out, false);
  EXPECT_EQ(plain->routing_stats().skipped, 0);
}

TEST(DeepseekV4, EngramOnV4AndV3BackbonesPrefillEqualsDecode) {
  test::ScratchDir dir("v4");
  for (Arch arch : {Arch::DeepseekV4, Arch::DeepseekV3}) {
    const ModelFiles with = tiny_v4(dir, "e" + std::to_string(int(arch)), "f32", arch, true);
    const ModelFiles without = tiny_v4(dir, "p" + std::to_string(int(arch)), "f32", arch, false);
    const auto all = run(with, kTokens.size());
    EXPECT_LT(test::max_rel(run(with, 1), all), 1e-5) << arch_name(arch);
    EXPECT_LT(test::max_rel(run(with, 4), all), 1e-5) << arch_name(arch);
    // Same seed, same backbone weights: Engram is what differs.
    EXPECT_GT(test::max_rel(run(without, kTokens.size()), all), 1e-3) << arch_name(arch);
  }
}

TEST(DeepseekV4, EngramWithoutATokenizerIsAnError) {
  test::ScratchDir dir("v4");
  const ModelFiles m = tiny_v4(dir, "e", "f32", Arch::DeepseekV4, true);
  std::filesystem::remove(m.path / "tokenizer.json");
  const ModelFiles reopened = open_model(m.path);
  STRATA_EXPECT_ERROR(load_causal_lm(reopened), "Engram", "tokenizer");
}

// A hash-routing row naming one expert twice is refused at load (the expert would be computed
// twice and weigh double); the generated tables name distinct experts.
TEST(DeepseekV4, HashRowNamingAnExpertTwiceIsRefused) {
  test::ScratchDir dir("v4");
  ModelFiles m = tiny_v4(dir, "m");
  ASSERT_GT(m.config.num_hash_layers, 0);
  const TensorEntry& e = m.index.at("layers.0.ffn.gate.tid2eid");
  ASSERT_EQ(e.stored_type, WeightType::I32);
  load_causal_lm(m);  // distinct as generated
  std::vector<int32_t> row(2);
  {
    std::fstream f(m.index.files()[e.file].path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(e.offset + 3 * m.config.num_experts_per_tok * 4));
    f.read(reinterpret_cast<char*>(row.data()), 8);
    f.seekp(static_cast<std::streamoff>(e.offset + 3 * m.config.num_experts_per_tok * 4 + 4));
    f.write(reinterpret_cast<const char*>(row.data()), 4);  // token 3: its first expert twice
    ASSERT_TRUE(f.good());
  }
  m = open_model(m.path);
  STRATA_EXPECT_ERROR(load_causal_lm(m), "tid2eid", "token 3", "twice");
}

TEST(DeepseekV4, BadTokenIdIsAnError) {
  test::ScratchDir dir("v4");
  const ModelFiles m = tiny_v4(dir, "m");
  auto lm = load_causal_lm(m);
  std::vector<float> out;
  const int32_t bad[2] = {1, 512};
  STRATA_EXPECT_ERROR(lm->forward(bad, out, false), "token id 512", "position 1", "vocabulary");
}

}  // namespace
}  // namespace strata
