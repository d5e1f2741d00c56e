// The spine with the fast kernels: logits at every dispatch level agree with the scalar level,
// and a prefill batch large enough for the oneDNN path equals token-by-token decode (row path),
// on a small model whose matrices are large enough to take that path.
#include <gtest/gtest.h>

#include <cstdio>

#include <algorithm>
#include <cmath>
#include <string>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/qdot.h"
#include "runtime/common/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/expert_source.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

std::vector<int32_t> tokens(int n) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 37 + 5) % 500);
  return t;
}

ModelFiles wider(const test::ScratchDir& dir, Arch arch, const std::string& dtype, const std::string& format) {
  TinyOptions o;
  o.arch = arch;
  o.dtype = dtype;
  o.format = format;
  o.seed = 6;
  // Projections of 64K+ elements (256 x 256 and more), so batches of 16+ go through oneDNN.
  o.config_overrides = {{"hidden_size", 256}, {"intermediate_size", 512}, {"moe_intermediate_size", 256}};
  return open_model(make_tiny_model(o, dir / (std::string(arch_name(arch)) + dtype + format)).path);
}

std::vector<float> prefill(const ModelFiles& m, const std::vector<int32_t>& t, const ModelOptions& opts = {}) {
  auto lm = load_causal_lm(m, opts);
  std::vector<float> out;
  lm->forward(t, out, true);
  return out;
}

std::vector<float> decode(const ModelFiles& m, const std::vector<int32_t>& t, const ModelOptions& opts = {}) {
  auto lm = load_causal_lm(m, opts);
  std::vector<float> out, step;
  for (int32_t id : t) {
    const int32_t one[1] = {id};
    lm->forward(one, step, false);
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

struct Case {
  Arch arch;
  std::string dtype, format;
};

TEST(FastKernels, OnednnPrefillEqualsRowPathDecode) {
  ASSERT_LE(gemm_min_batch(), 24) << "STRATA_GEMM_MIN_BATCH turned the oneDNN path off";
  const ScopedIntDot exact(false);  // decode widens weights to f32 as the GEMM does
  const ScopedGemmBf16 f32(false);  // and the GEMM multiplies in f32, not bf16
  test::ScratchDir dir("fast");
  for (const Case& c : {Case{Arch::DeepseekV3, "bf16", "hf"}, Case{Arch::DeepseekV3, "q4_k", "gguf"},
                        Case{Arch::DeepseekV4, "fp4", "hf"}}) {
    const ModelFiles m = wider(dir, c.arch, c.dtype, c.format);
    const auto t = tokens(24);
    const auto p = prefill(m, t), d = decode(m, t);
    ASSERT_EQ(p.size(), d.size());
    // At the scalar level (STRATA_CPU_LEVEL=scalar) each row's product is one chain of sums,
    // further in rounding from the GEMM's blocked sums than the vector levels' lanes are.
    const double bound = dispatch_level() == CpuLevel::Scalar ? 5e-5 : 1e-5;
    EXPECT_LT(test::max_rel(p, d), bound) << arch_name(c.arch) << " " << c.dtype;
  }
}

// The BF16 GEMM (oneDNN's where the CPU has it, else the F32 GEMM over bf16-rounded operands:
// the same numbers) in a prefill against the exact decode: off by bf16 rounding of both operands
// of every batched product, no more. Every routed expert is used, so that no routing near-tie
// flips (see below).
TEST(FastKernels, Bf16GemmPrefillStaysNearTheExactDecode) {
  ASSERT_LE(gemm_min_batch(), 24) << "STRATA_GEMM_MIN_BATCH turned the oneDNN path off";
  const ScopedIntDot exact(false);
  const ScopedGemmBf16 bf16(true);
  const ScopedGemmBf16Rounding rounding(!gemm_bf16_available());
  test::ScratchDir dir("fast");
  for (const Case& c : {Case{Arch::DeepseekV3, "bf16", "hf"}, Case{Arch::DeepseekV3, "q4_k", "gguf"}}) {
    const ModelFiles m = wider(dir, c.arch, c.dtype, c.format);
    ModelOptions all;
    all.experts_per_token = m.config.n_routed_experts;
    const auto t = tokens(24);
    auto lm = load_causal_lm(m, all);
    std::vector<float> p;
    lm->forward(t, p, true);
    const auto d = decode(m, t, all);
    ASSERT_EQ(p.size(), d.size());
    const double e = test::nmse(d, p);
    std::printf("%s %s: prefill through the %s GEMM vs exact decode: NMSE %.2e\n", arch_name(c.arch).data(),
                c.dtype.c_str(), gemm_type_name(), e);
    EXPECT_LT(e, 1e-3) << arch_name(c.arch) << " " << c.dtype;
    EXPECT_GT(e, 1e-9) << arch_name(c.arch) << " " << c.dtype << ": the bf16 rounding must show";
  }
}

// The default integer dot (int8 activations) against the exact f32 decode: close, not equal.
// Every routed expert is used, so that no near-tie in the routing flips between the two runs
// (a flipped expert is a different model output, not a kernel error: on these random tiny
// models one flip moves a token's logits by NMSE ~1e-2).
// A prefill where every expert gets all 24 tokens: their oneDNN products run from the calling
// thread one after another, never from oneTBB workers (which would each start an OpenMP team).
TEST(FastKernels, PrefillExpertGemmsStayOffTheWorkers) {
  ASSERT_LE(gemm_min_batch(), 24) << "STRATA_GEMM_MIN_BATCH turned the oneDNN path off";
  const ScopedIntDotGemmMinBatch gemm_for_all(gemm_min_batch());  // Q4_K experts through oneDNN too
  test::ScratchDir dir("fast");
  const ModelFiles m = wider(dir, Arch::DeepseekV3, "q4_k", "gguf");
  ModelOptions all;
  all.experts_per_token = m.config.n_routed_experts;
  auto lm = load_causal_lm(m, all);
  std::vector<float> out;
  const long calls = gemm_calls(), from_workers = gemm_calls_from_workers();
  lm->forward(tokens(24), out, true);
  EXPECT_GT(gemm_calls(), calls + 3 * m.config.n_routed_experts) << "the experts' products did not all take oneDNN";
  EXPECT_EQ(gemm_calls_from_workers(), from_workers);
}

TEST(FastKernels, IntegerDotDecodeStaysNearTheExactLogits) {
  test::ScratchDir dir("fast");
  for (const Case& c : {Case{Arch::DeepseekV3, "q4_k", "gguf"}, Case{Arch::DeepseekV3, "q8_0", "gguf"},
                        Case{Arch::DeepseekV4, "fp4", "hf"}}) {
    const ModelFiles m = wider(dir, c.arch, c.dtype, c.format);
    const auto t = tokens(6);
    ModelOptions all;
    all.experts_per_token = m.config.n_routed_experts;
    std::vector<float> exact, fast;
    {
      const ScopedIntDot off(false);
      exact = decode(m, t, all);
    }
    {
      const ScopedIntDot on(true);
      fast = decode(m, t, all);
    }
    const double e = test::nmse(exact, fast);
    std::printf("  %s %s: integer dot logits NMSE %.2e vs exact\n", std::string(arch_name(c.arch)).c_str(),
                c.dtype.c_str(), e);
    EXPECT_LT(e, 1e-3) << arch_name(c.arch) << " " << c.dtype;
    EXPECT_GT(e, 0) << "the integer path was not taken";
  }
}

// Every dispatch level against the scalar level. The exact path's row kernels are bit-identical
// to the scalar dequantizers, so its logits agree to rounding noise. The integer dot kernels sum
// in another order than their scalar twins (equal to NMSE 1e-11 per product, test_qdot.cpp); a
// last-bit difference can move a later layer's activation across an int8 rounding boundary, so
// their logits agree only to that rounding (the bound is 1e-4; the tiny models here give 1e-13).
// On CPUs with AVX-512 BF16 + VBMI the FP8 fused dot, which the default path takes for FP8
// products of up to 15 tokens, rounds activations to bf16 where the scalar level does not:
// there the bound is the rounded paths' against the exact one (1e-3, as for decode above).
// --repack: the CPU's Q4_K matrices (routed experts, attention, dense and shared FFNs, head) in
// its tiled layout give the stored rows' logits: exactly with exact products (the same rows,
// gathered), and on the integer dots exactly where the stored rows take the tiles too, in
// prefill and in decode; whether the experts are mapped, fixed by a placement or cached.
TEST(FastKernels, RepackedMatricesGiveTheStoredLogits) {
  test::ScratchDir dir("repack");
  const ModelFiles m = wider(dir, Arch::DeepseekV3, "q4_k", "gguf");
  const auto t = tokens(12);
  ModelOptions repack;
  repack.repack = true;
  {
    auto lm = load_causal_lm(m, repack);
    EXPECT_NE(lm->experts().describe().find("repacked into 16-row tiles"), std::string::npos)
        << lm->experts().describe();
    ASSERT_EQ(lm->load_notes().size(), 1u);
    EXPECT_NE(lm->load_notes()[0].find("attention, dense and shared FFNs and the output head"), std::string::npos)
        << lm->load_notes()[0];
  }
  {
    const ScopedIntDot exact(false);
    EXPECT_EQ(decode(m, t, repack), decode(m, t));
    EXPECT_EQ(prefill(m, t, repack), prefill(m, t));
  }
  // Experts a placement fixes in DRAM are repacked where the store read them; experts read on
  // use through the cache stay as stored (the dense matrices are repacked either way).
  ModelOptions fixed = repack;
  for (int li = 0; li < m.config.num_hidden_layers; ++li)
    for (int e = 0; e < m.config.n_routed_experts; ++e) fixed.expert_placement[{li, e}] = Tier::Dram;
  ModelOptions cached = repack;
  cached.expert_cache_bytes = 64ull << 20;
  {
    auto lm = load_causal_lm(m, fixed);
    EXPECT_NE(lm->experts().describe().find("repacked into 16-row tiles in place"), std::string::npos)
        << lm->experts().describe();
    lm = load_causal_lm(m, cached);
    EXPECT_NE(lm->experts().describe().find("--repack: no Q2_K / Q4_K / Q5_K matrix"), std::string::npos)
        << lm->experts().describe();
  }
  // On the integer dots the tiled matrices take the tiles from one token on; the stored rows
  // give the same logits, bit for bit, when every Q4_K matrix does too (else the row kernels
  // round in f32 differently, which in a tiny random model can flip a routing near-tie).
  KernelChoices c = kernel_choices();
  c.tiles_min_batch[static_cast<size_t>(WeightType::Q4_K)] = 1;
  {
    const ScopedKernelChoices tiles(c);
    if (qdot_tiles_supported(WeightType::Q4_K)) {
      const auto d = decode(m, t), p = prefill(m, t);
      for (const ModelOptions* o : {&repack, &fixed, &cached}) {
        EXPECT_EQ(decode(m, t, *o), d);
        EXPECT_EQ(prefill(m, t, *o), p);
      }
    }
  }
  EXPECT_LT(test::nmse(decode(m, t), decode(m, t, repack)), 1e-3);
}

TEST(FastKernels, EveryDispatchLevelGivesTheScalarLogits) {
  test::ScratchDir dir("fast");
  const CpuLevel saved = dispatch_level();
  for (const Case& c : {Case{Arch::DeepseekV3, "fp8", "hf"}, Case{Arch::DeepseekV3, "q6_k", "gguf"},
                        Case{Arch::DeepseekV4, "fp4", "hf"}}) {
    const ModelFiles m = wider(dir, c.arch, c.dtype, c.format);
    const auto t = tokens(6);
    // V4's own FP8/FP4 quantize-dequantize steps turn the FP8 fused dot's bf16-rounded
    // activations (the default path, prefill of up to 15 tokens included) into whole grid
    // steps where a value sits near a rounding tie (DeepseekV4.PrefillEqualsDecodeEqualsChunks
    // measures that): off here, where every level is held to the scalar logits.
    ModelOptions mo;
    mo.act_quant = c.arch != Arch::DeepseekV4;
    for (bool int_dot : {false, true}) {
      const ScopedIntDot mode(int_dot);
      set_dispatch_level(CpuLevel::Scalar);
      const auto ref = prefill(m, t, mo);
      for (CpuLevel level : {CpuLevel::Avx2, CpuLevel::Avx512}) {
        const std::string name(cpu_level_name(level));
        if (set_dispatch_level(level) != level) {
          std::printf("  %s: not available on this CPU, skipped\n", name.c_str());
          continue;
        }
        const double e = test::nmse(ref, prefill(m, t, mo));
        std::printf("  %s %s int dot %d: logits NMSE %.2e vs scalar\n", name.c_str(), c.dtype.c_str(), int_dot, e);
        const bool fp8_rounds = level == CpuLevel::Avx512 && cpu_features().avx512bf16 && cpu_features().avx512vbmi &&
                                c.dtype != "q6_k";
        EXPECT_LT(e, int_dot ? (fp8_rounds ? 1e-3 : 1e-4) : 1e-10)
            << cpu_level_name(level) << " " << c.dtype << " int dot " << int_dot;
      }
    }
  }
  set_dispatch_level(saved);
}

}  // namespace
}  // namespace strata
