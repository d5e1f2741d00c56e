// ComputeContext: what a run computes with, decided from a RunRequest without the CLI — the
// plan on a profile, the GPU device that runs its GPU tier (or the tier re-planned without
// one), and refusals of requests that cannot run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/qdot.h"
#include "memory-tier/hardware_profile.h"
#include "runtime/backend/device.h"
#include "runtime/common/error.h"
#include "runtime/context/compute_context.h"
#include "runtime/common/units.h"
#include "runtime/model/device_workspace.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/plan_items.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

bool any_note_has(const ComputeContext& c, const std::string& text) {
  for (const std::string& n : c.notes())
    if (n.find(text) != std::string::npos) return true;
  return false;
}

class ComputeContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::ScratchDir("context");
    TinyOptions t;
    m_ = new ModelFiles(open_model(make_tiny_model(t, *dir_ / "v3").path));
  }
  static void TearDownTestSuite() {
    delete m_;
    delete dir_;
  }
  static RunRequest on_profile(const std::string& gpu) {
    RunRequest r;
    r.profile = "rtx4090-256gb";
    r.profiles_dir = std::string(STRATA_SOURCE_DIR) + "/profiles";
    r.gpu = gpu;
    return r;
  }
  static test::ScratchDir* dir_;
  static ModelFiles* m_;
};
test::ScratchDir* ComputeContextTest::dir_ = nullptr;
ModelFiles* ComputeContextTest::m_ = nullptr;

TEST_F(ComputeContextTest, SimRunsTheProfilesGpuTier) {
  const ComputeContext ctx(*m_, on_profile("sim"));
  ASSERT_TRUE(ctx.gpu());
  EXPECT_GT(ctx.gpu()->capacity(), 0u);  // the plan's GPU budget
  EXPECT_GT(ctx.predicted_tokens_per_s(), 0.0);
  EXPECT_TRUE(any_note_has(ctx, "placement on rtx4090-256gb"));
  int on_gpu = 0;
  for (const auto& [k, t] : ctx.model_options().expert_placement) on_gpu += t == Tier::Gpu;
  EXPECT_GT(on_gpu, 0);
  auto lm = ctx.load(*m_);
  EXPECT_EQ(lm->experts().device_experts(), on_gpu);
  EXPECT_GT(ctx.gpu()->used_by_class().at("attention"), 0u);
}

TEST_F(ComputeContextTest, NoneReplansTheGpuTierAndSaysSo) {
  for (const char* gpu : {"none", "auto"}) {
    const ComputeContext ctx(*m_, on_profile(gpu));
    EXPECT_FALSE(ctx.gpu());
    EXPECT_TRUE(any_note_has(ctx, "re-planned onto DRAM and NVMe")) << gpu;
    for (const auto& [k, t] : ctx.model_options().expert_placement) EXPECT_NE(t, Tier::Gpu);
  }
}

// The plan sets aside the device's step workspace out of the GPU budget and the load reserves
// exactly that; with the budget filled by weights and the KV cache, a prompt past --ubatch and
// decoding to the full context run inside it (before, the step's scratch went past the budget).
TEST_F(ComputeContextTest, ThePlanSetsAsideTheWorkspaceTheRunReserves) {
  RunRequest r = on_profile("sim");
  r.opts.context = 48;
  r.opts.max_step_tokens = 8;
  const PlanInput in = plan_input_from_model(*m_);
  const uint64_t ws = device_step_workspace(m_->config, {8, 48, largest_expert_bytes(in)});
  // Room for the per-token tensors, the KV cache, the workspace and two and a half experts.
  uint64_t budget = kv_bytes_at(in, 48) + ws + largest_expert_bytes(in) * 5 / 2;
  for (const PlanItem& it : in.items) budget += it.expert < 0 && !it.gathered ? it.bytes : 0;
  r.vram_budget = std::to_string(static_cast<double>(budget) / 1e6) + "M";
  const ComputeContext ctx(*m_, r);
  ASSERT_TRUE(ctx.gpu());
  EXPECT_TRUE(any_note_has(ctx, "GPU step workspace " + human_bytes(ws) + " set aside (steps of 8 tokens"));
  auto lm = ctx.load(*m_);
  Device& dev = *ctx.gpu();
  EXPECT_EQ(dev.workspace_reserved(), ws);
  int on_gpu = 0, off_gpu = 0;
  for (const auto& [k, t] : ctx.model_options().expert_placement) (t == Tier::Gpu ? on_gpu : off_gpu) += 1;
  EXPECT_GT(on_gpu, 0);
  EXPECT_GT(off_gpu, 0) << "the budget should be full";
  std::vector<int32_t> prompt(30);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + 13 * i);
  std::vector<float> logits;
  lm->forward(prompt, logits, false);
  while (lm->n_past() < lm->context()) {
    const int32_t next[1] = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
    lm->forward(next, logits, false);
  }
  EXPECT_EQ(dev.workspace_overflows(), 0u);
  EXPECT_LE(dev.peak(), dev.capacity());
}

TEST_F(ComputeContextTest, RefusesWhatCannotRun) {
  RunRequest r = on_profile("cuda:63");  // absent here, GPU or not
  EXPECT_THROW(ComputeContext(*m_, r), Error);
  r = on_profile("sim");
  r.profile.clear();
  r.sim_throttle = true;
  EXPECT_THROW(ComputeContext(*m_, r), Error);
  r = on_profile("none");
  r.dram_budget = "lots";
  EXPECT_THROW(ComputeContext(*m_, r), Error);
  r = on_profile("none");
  r.profile = "no-such-box";
  EXPECT_THROW(ComputeContext(*m_, r), Error);
}

TEST_F(ComputeContextTest, APlacementFileIsReadWholeAndRefusedByEntry) {
  // A saved plan run with the simulated GPU: its GPU budget sizes the device, its tensors
  // place the attention.
  nlohmann::json plan = {{"budget_gb", {{"gpu", 0.5}}}, {"experts", nlohmann::json::array()},
                         {"tensors", nlohmann::json::array()}};
  for (const TensorEntry& t : m_->index.tensors())
    if (t.name.rfind("layers.1.attn", 0) == 0) plan["tensors"].push_back({t.name, "gpu"});
  const std::filesystem::path good = *dir_ / "plan.json";
  std::ofstream(good) << plan.dump();
  RunRequest r;
  r.placement = good.string();
  r.gpu = "sim";
  {
    const ComputeContext ctx(*m_, r);
    ASSERT_TRUE(ctx.gpu());
    EXPECT_EQ(ctx.gpu()->capacity(), uint64_t{500000000});
    auto lm = ctx.load(*m_);
    EXPECT_GT(ctx.gpu()->used_by_class().at("attention"), 0u);
  }
  auto refused = [&](nlohmann::json bad, const std::string& what) {
    const std::filesystem::path f = *dir_ / "bad.json";
    std::ofstream(f) << bad.dump();
    r.placement = f.string();
    try {
      ComputeContext ctx(*m_, r);
      ADD_FAILURE() << "accepted: " << bad.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  nlohmann::json b = plan;
  b["budget_gb"]["gpu"] = "lots";
  refused(b, "budget_gb.gpu");
  b = plan;
  b["tensors"].push_back({"layers.0.attn.wo.weight", "vram"});
  refused(b, "'tensors' entry");
  b = plan;
  b["tensors"] = "all on the gpu";
  refused(b, "'tensors'");
}

// The plan's KV cache is what a sequence allocates on the device, byte for byte, for every
// architecture (V3/V3.2 latent rows, V4 window rings and compressors), at the context both use:
// f32 rows on a simulated GPU, bf16 rows on the CPU.
TEST(ComputeContextKv, ThePlansKvCacheIsWhatASequenceAllocates) {
  const test::ScratchDir dir("context-kv");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV32, Arch::DeepseekV4}) {
    TinyOptions t;
    t.arch = arch;
    const ModelFiles m = open_model(make_tiny_model(t, dir / std::to_string(static_cast<int>(arch))).path);
    RunRequest r;
    r.profile = "rtx4090-256gb";
    r.profiles_dir = std::string(STRATA_SOURCE_DIR) + "/profiles";
    r.gpu = "sim";
    const ComputeContext ctx(m, r);
    const auto lm = ctx.load(m);
    const uint64_t before = ctx.gpu()->used_by_class().count("KV cache") ? ctx.gpu()->used_by_class().at("KV cache") : 0;
    {
      const auto seq = lm->new_sequence();
      const uint64_t held = ctx.gpu()->used_by_class().at("KV cache") - before;
      const uint64_t planned = kv_bytes_at(plan_input_from_model(m), effective_context(m.config, ctx.model_options()));
      EXPECT_EQ(held, planned) << arch_name(arch);
      EXPECT_GT(held, 0u);
    }
    EXPECT_EQ(ctx.gpu()->used_by_class().count("KV cache") ? ctx.gpu()->used_by_class().at("KV cache") : 0, before);
    // In bf16 rows (--cache-type-k bf16) on the CPU: every row a key or an indexer reads at two
    // bytes (V3.2's indexer keys, V4's indexer rows included).
    RunRequest c;
    c.gpu = "none";
    c.opts.kv_bf16 = true;
    const ComputeContext cpu(m, c);
    const auto cpu_lm = cpu.load(m);
    const auto host_kv = [] {
      const auto used = host_device()->used_by_class();
      return used.count("KV cache") ? used.at("KV cache") : uint64_t{0};
    };
    const uint64_t host_before = host_kv();
    const auto seq = cpu_lm->new_sequence();
    PlanInput in = plan_input_from_model(m);
    kv_layout(m.config, in, true);
    EXPECT_EQ(host_kv() - host_before, kv_bytes_at(in, effective_context(m.config, cpu.model_options())))
        << arch_name(arch) << " bf16";
  }
}

// The run's kernel choices are the context's: its request's flags over the environment's
// defaults, put in effect when it is made; the kernels' own switches read the same store.
TEST_F(ComputeContextTest, PutsTheRequestsKernelChoicesInEffect) {
  const ScopedKernelChoices restore(kernel_choices());
  RunRequest r;
  r.kernels.int_dot = false;
  r.kernels.gemm_bf16 = false;
  r.kernels.batch_invariant = true;
  r.kernels.gemm_min_batch = 0;
  const ComputeContext ctx(*m_, r);
  EXPECT_EQ(kernel_choices(), r.kernels);
  EXPECT_FALSE(int_dot_enabled());
  EXPECT_FALSE(gemm_bf16_enabled());
  EXPECT_TRUE(batch_invariant());
  EXPECT_EQ(gemm_min_batch(), INT64_MAX);
  EXPECT_NE(kernel_choices().describe().find("exact dots"), std::string::npos) << kernel_choices().describe();
  EXPECT_NE(kernel_choices().describe().find("no GEMM"), std::string::npos);
  set_int_dot(true);  // a switch of one field leaves the others
  EXPECT_TRUE(kernel_choices().int_dot);
  EXPECT_TRUE(kernel_choices().batch_invariant);
}

// A profile's measured crossovers (cpu.tiles_min_batch) become the run's, where the run does
// not set its own; an unknown type name is refused naming the profile and the key.
TEST_F(ComputeContextTest, TheProfilesTilesCrossoversAreTheRunsKernelChoices) {
  const ScopedKernelChoices restore(kernel_choices());
  auto j = profile_json(find_profile("cpu-only-128gb", std::string(STRATA_SOURCE_DIR) + "/profiles"));
  j["cpu"]["tiles_min_batch"] = {{"q4_k", 9}, {"q6_k", 3}};
  test::write_text(*dir_ / "tiles.json", j.dump());
  RunRequest r;
  r.profile = (*dir_ / "tiles.json").string();
  r.gpu = "none";
  r.kernels.tiles_min_batch[static_cast<size_t>(WeightType::Q6_K)] = 5;  // the run's own choice
  {
    const ComputeContext ctx(*m_, r);
    EXPECT_EQ(qdot_tiles_min_batch(WeightType::Q4_K), 9);
    EXPECT_EQ(qdot_tiles_min_batch(WeightType::Q6_K), 5) << "the run's choice wins";
    EXPECT_NE(kernel_choices().describe().find("tiles q4_k from 9"), std::string::npos) << kernel_choices().describe();
    if (qdot_tiles_supported(WeightType::Q4_K)) {
      const test::Mat w = test::make_matrix(WeightType::Q4_K, 64, 256, WeightType::F32, 3);
      EXPECT_EQ(linear_path(w.view, w.view.rows, 8), LinearPath::IntDot);
      EXPECT_EQ(linear_path(w.view, w.view.rows, 9), LinearPath::IntDotTiles);
    }
  }
  // A name the integer dot does not compute is refused.
  j["cpu"]["tiles_min_batch"] = {{"q4_z", 4}};
  test::write_text(*dir_ / "tiles.json", j.dump());
  r.kernels = KernelChoices{};
  STRATA_EXPECT_ERROR(ComputeContext(*m_, r), "tiles.json", "cpu.tiles_min_batch.q4_z", "not a weight type the integer dot computes");
  j["cpu"]["tiles_min_batch"] = {{"bf16", 4}};
  test::write_text(*dir_ / "tiles.json", j.dump());
  STRATA_EXPECT_ERROR(ComputeContext(*m_, r), "cpu.tiles_min_batch.bf16", "not a weight type the integer dot computes");
}

TEST(KernelChoices, TheEnvironmentSetsOnlyTheDefaults) {
  const char* names[] = {"STRATA_INT_DOT", "STRATA_GEMM_MIN_BATCH", "STRATA_INT_DOT_TILES", "STRATA_GEMM_PANEL_MB"};
  std::vector<std::optional<std::string>> saved;
  for (const char* n : names) saved.push_back(std::getenv(n) ? std::optional<std::string>(std::getenv(n)) : std::nullopt);
  ::setenv("STRATA_INT_DOT", "0", 1);
  ::setenv("STRATA_GEMM_MIN_BATCH", "-3", 1);
  ::setenv("STRATA_INT_DOT_TILES", "1", 1);
  ::setenv("STRATA_GEMM_PANEL_MB", "junk", 1);
  const KernelChoices e = KernelChoices::from_environment();
  for (size_t i = 0; i < saved.size(); ++i) {
    if (saved[i]) ::setenv(names[i], saved[i]->c_str(), 1);
    else ::unsetenv(names[i]);
  }
  EXPECT_FALSE(e.int_dot);
  EXPECT_EQ(e.gemm_min_batch, 0);  // never
  EXPECT_TRUE(e.int_dot_tiles);
  EXPECT_EQ(e.gemm_panel_mb, 64);  // not a size: the default
  EXPECT_TRUE(e.gemm_bf16);
  EXPECT_FALSE(e.batch_invariant);
}

}  // namespace
}  // namespace strata
