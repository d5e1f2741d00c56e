// DeepSeek-V3 / V3.2 forward pass on generated tiny models: the invariants the architecture
// implies (prefill == decode, absorbed == decompressed MLA, V3.2 with a wide top-k == V3) and
// agreement across storage layouts. The NumPy reference check is tests/cli/reference_logits.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "runtime/common/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

const std::vector<int32_t> kTokens = {1, 17, 200, 33, 4, 91, 300, 7, 12, 250};

ModelFiles tiny(const test::ScratchDir& dir, const std::string& name, Arch arch, const std::string& dtype = "f32",
                const std::string& format = "hf") {
  TinyOptions o;
  o.arch = arch;
  o.dtype = dtype;
  o.format = format;
  o.seed = 3;
  return open_model(make_tiny_model(o, dir / name).path);
}

std::vector<float> prefill(const ModelFiles& m, MlaMode mode = MlaMode::Auto, const ModelOptions& opts = {}) {
  auto lm = load_causal_lm(m, opts);
  std::vector<float> out;
  lm->forward(kTokens, out, true, {mode});
  return out;
}

std::vector<float> decode(const ModelFiles& m, MlaMode mode = MlaMode::Auto, const ModelOptions& opts = {}) {
  auto lm = load_causal_lm(m, opts);
  std::vector<float> out, step;
  for (int32_t t : kTokens) {
    const int32_t one[1] = {t};
    lm->forward(one, step, false, {mode});
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

TEST(DeepseekV3, PrefillEqualsTokenByTokenDecode) {
  test::ScratchDir dir("v3");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV32}) {
    const ModelFiles m = tiny(dir, "m" + std::to_string(int(arch)), arch);
    const auto p = prefill(m), d = decode(m);
    ASSERT_EQ(p.size(), kTokens.size() * m.config.vocab_size);
    ASSERT_EQ(p.size(), d.size());
    EXPECT_LT(test::max_rel(p, d), 1e-5) << arch_name(arch);
  }
}

TEST(DeepseekV3, AbsorbedEqualsDecompressedMla) {
  test::ScratchDir dir("v3");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV32}) {
    const ModelFiles m = tiny(dir, "m" + std::to_string(int(arch)), arch);
    EXPECT_LT(test::max_rel(prefill(m, MlaMode::Absorbed), prefill(m, MlaMode::Decompressed)), 1e-5);
    EXPECT_LT(test::max_rel(decode(m, MlaMode::Absorbed), decode(m, MlaMode::Decompressed)), 1e-5);
  }
}

// --cache-type-k bf16: the latent and rope rows rounded once as they are written. Prefill and
// decode read the same rounded rows (they agree as closely as with the f32 cache), absorbed and
// decompressed too, and V3's logits stay within the bf16 rounding of the f32 cache's (V4's bf16
// cache: test_deepseek_v4.cpp).
TEST(DeepseekV3, Bf16CacheKeepsTheInvariantsWithinItsRounding) {
  test::ScratchDir dir("v3");
  ModelOptions bf16;
  bf16.kv_bf16 = true;
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV32}) {
    const ModelFiles m = tiny(dir, "m" + std::to_string(int(arch)), arch);
    const auto p = prefill(m, MlaMode::Auto, bf16), d = decode(m, MlaMode::Auto, bf16), f32 = prefill(m);
    ASSERT_EQ(p.size(), f32.size());
    EXPECT_LT(test::max_rel(p, d), 1e-5) << arch_name(arch);
    EXPECT_LT(test::max_rel(prefill(m, MlaMode::Absorbed, bf16), prefill(m, MlaMode::Decompressed, bf16)), 1e-5);
    const double to_f32 = test::nmse(f32, p);
    EXPECT_GT(to_f32, 0) << "the cache was not rounded";
    // V3.2's indexer picks keys by a top-k that the rounding may tip the other way (a tiny
    // model's scores are close): only V3's logits must stay this near.
    if (arch == Arch::DeepseekV3) {
      EXPECT_LT(to_f32, 1e-4);
    }
  }
}

TEST(DeepseekV3, V32WithTopkCoveringTheSequenceEqualsV3) {
  test::ScratchDir dir("v3");
  ModelFiles m = tiny(dir, "v32", Arch::DeepseekV32);
  const auto sparse = prefill(m);
  m.config.index_topk = static_cast<int64_t>(kTokens.size());
  const auto dense32 = prefill(m);
  m.config.arch = Arch::DeepseekV3;  // same weights, indexer ignored
  const auto v3 = prefill(m);
  EXPECT_LT(test::max_rel(dense32, v3), 1e-6);
  // The tiny config's top-k (4) is smaller than the sequence: the indexer must matter.
  EXPECT_GT(test::max_rel(sparse, v3), 1e-3);
}

TEST(DeepseekV3, LayoutsAndTypesAgree) {
  test::ScratchDir dir("v3");
  const auto ref = prefill(tiny(dir, "f32", Arch::DeepseekV3));
  // f32 holds identical values in both layouts (experts stacked in GGUF, separate in HF).
  const auto gguf_f32 = prefill(tiny(dir, "f32.gguf", Arch::DeepseekV3, "f32", "gguf"));
  EXPECT_LT(test::max_rel(ref, gguf_f32), 1e-6) << "identical values in both layouts";
  const auto v32_hf = prefill(tiny(dir, "v32", Arch::DeepseekV32));
  const auto v32_gguf = prefill(tiny(dir, "v32.gguf", Arch::DeepseekV32, "f32", "gguf"));
  EXPECT_LT(test::max_rel(v32_hf, v32_gguf), 1e-6) << "V3.2 (indexer included) in both layouts";
  // Quantized copies differ by their rounding, amplified through three layers and discrete
  // expert choices; the exact check of each type is against the NumPy reference, which
  // dequantizes the same stored values independently (tests/cli/reference_logits.sh).
  struct Case {
    std::string name, dtype, format;
    double max_nmse;
  };
  for (const Case& c : {Case{"bf16", "bf16", "hf", 1e-3}, Case{"fp8", "fp8", "hf", 0.1},
                        Case{"fp4", "fp4", "hf", 0.15}, Case{"bf16.gguf", "bf16", "gguf", 1e-3},
                        Case{"q8_0.gguf", "q8_0", "gguf", 2e-3}, Case{"q4_k.gguf", "q4_k", "gguf", 2e-2}}) {
    const auto got = prefill(tiny(dir, c.name, Arch::DeepseekV3, c.dtype, c.format));
    const double e = test::nmse(ref, got);
    EXPECT_LT(e, c.max_nmse) << c.name;
    EXPECT_GT(e, 0.0) << c.name << " should differ by its rounding";
    std::printf("  logits NMSE vs f32: %-10s %.3g\n", c.name.c_str(), e);
  }
}

TEST(DeepseekV3, BadTokenIdsAreErrors) {
  test::ScratchDir dir("v3");
  const ModelFiles m = tiny(dir, "v3", Arch::DeepseekV3);
  auto lm = load_causal_lm(m);
  std::vector<float> out;
  const int32_t bad[2] = {1, 100000};
  STRATA_EXPECT_ERROR(lm->forward(bad, out, false), "token id 100000", "position 1", "vocabulary");
}

TEST(DeepseekV3, ResetStartsAFreshSequence) {
  test::ScratchDir dir("v3");
  const ModelFiles m = tiny(dir, "v3", Arch::DeepseekV3);
  auto lm = load_causal_lm(m);
  std::vector<float> a, b;
  lm->forward(kTokens, a, false);
  EXPECT_EQ(lm->n_past(), int64_t(kTokens.size()));
  lm->reset();
  EXPECT_EQ(lm->n_past(), 0);
  lm->forward(kTokens, b, false);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace strata
