// ComputeContext: what a run computes with, decided from a RunRequest without the CLI — the
// plan on a profile, the GPU device that runs its GPU tier (or the tier re-planned without
// one), and refusals of requests that cannot run.
#include <gtest/gtest.h>

#include <string>

#include "runtime/backend/device.h"
#include "runtime/common/error.h"
#include "runtime/context/compute_context.h"
#include "runtime/model/expert_source.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

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

TEST_F(ComputeContextTest, RefusesWhatCannotRun) {
  RunRequest r = on_profile("cuda:0");
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

}  // namespace
}  // namespace strata
