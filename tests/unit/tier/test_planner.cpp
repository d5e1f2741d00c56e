// The placement planner on synthetic models with round numbers, and on the full-size configs.
#include <gtest/gtest.h>

#include "memory-tier/planner.h"
#include "runtime/model/plan_items.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

HardwareProfile box(double vram, double dram) {
  HardwareProfile hw;
  hw.name = "test-box";
  hw.source = "test";
  if (vram > 0) hw.gpus.push_back({"gpu", vram, 1000, 100, "8.9"});
  hw.vram_gb = vram;
  hw.dram_gb = dram;
  hw.dram_read_gbps = 100;
  hw.nvme_read_gbps = 10;
  hw.pcie_h2d_gbps = 25;
  return hw;
}

// 2 layers; per layer 1 GB of attention and 4 experts of 1 GB each, top-2.
PlanInput model() {
  PlanInput in;
  in.model = "synthetic";
  in.n_layers = 2;
  in.n_experts = 4;
  in.top_k = 2;
  in.kv_bytes_per_token = 1000;
  for (int l = 0; l < 2; ++l) {
    in.items.push_back({"layers." + std::to_string(l) + ".attn", "attention", l, -1, 1'000'000'000, 1.0, false});
    for (int e = 0; e < 4; ++e)
      in.items.push_back({"layers." + std::to_string(l) + ".ffn.experts." + std::to_string(e), "routed_expert", l, e,
                          1'000'000'000, 0.5, false});
  }
  in.items.push_back({"embed.weight", "embedding", -1, -1, 500'000'000, 0.0, true});
  return in;
}

TEST(Planner, BudgetsAreNeverExceededAndTiersFillInOrder) {
  PlanOptions o;
  o.context = 1000;  // 1 MB of KV
  const Placement p = plan_placement(model(), box(4, 5), o);
  EXPECT_LE(double(p.bytes[0]) + (p.kv_tier == Tier::Gpu ? p.kv_bytes : 0), 4e9);
  EXPECT_LE(double(p.bytes[1]) + (p.kv_tier == Tier::Dram ? p.kv_bytes : 0), 5e9);
  EXPECT_EQ(p.kv_tier, Tier::Gpu);
  // Attention (2 GB) on the GPU, then one expert fits beside it (1 GB; 1 GB - 1 MB left after).
  EXPECT_EQ(p.bytes_by_class.at("attention")[0], 2'000'000'000u);
  EXPECT_EQ(p.bytes_by_class.at("routed_expert")[0], 1'000'000'000u);
  EXPECT_EQ(p.bytes_by_class.at("embedding")[1], 500'000'000u) << "gathered tables go to DRAM";
  EXPECT_EQ(p.bytes_by_class.at("routed_expert")[1], 4'000'000'000u);
  EXPECT_EQ(p.bytes_by_class.at("routed_expert")[2], 3'000'000'000u);
  EXPECT_EQ(p.bytes[0] + p.bytes[1] + p.bytes[2], 10'500'000'000u);
}

TEST(Planner, TheStepWorkspaceIsSetAsideOnTheGpuBeforeAnythingElse) {
  PlanOptions o;
  o.context = 1000;  // 1 MB of KV
  o.gpu_workspace_bytes = 1'500'000'000;
  o.step_tokens = 512;
  const Placement p = plan_placement(model(), box(4, 5), o);
  EXPECT_EQ(p.gpu_workspace_bytes, 1'500'000'000u);
  EXPECT_EQ(p.kv_tier, Tier::Gpu);
  // 4 GB less 1.5 GB and the KV cache: attention (2 GB) and no expert beside it (was one).
  EXPECT_EQ(p.bytes_by_class.at("attention")[0], 2'000'000'000u);
  EXPECT_EQ(p.bytes_by_class.at("routed_expert")[0], 0u);
  EXPECT_LE(double(p.bytes[0] + p.kv_bytes + p.gpu_workspace_bytes), 4e9);
  EXPECT_DOUBLE_EQ(placement_json(model(), p)["gpu_workspace"]["gb"].get<double>(), 1.5);
  EXPECT_NE(placement_text(model(), box(4, 5), p).find("workspace  1.500 GB on gpu"), std::string::npos);
  EXPECT_EQ(p.longest_context, 500000);  // (4 GB - 2 GB - 1.5 GB) / 1000 B a token
  // A workspace that grows by 1 MB a token of context: 1000 B + 1 MB a token in 0.5 GB.
  o.gpu_workspace_at = [](int64_t ctx) { return uint64_t{1'500'000'000} + static_cast<uint64_t>(ctx) * 1'000'000; };
  EXPECT_EQ(plan_placement(model(), box(4, 5), o).longest_context, 499);
  o.gpu_workspace_at = nullptr;

  // A workspace the GPU cannot hold: nothing goes there, and the notes say why.
  o.gpu_workspace_bytes = 5'000'000'000;
  const Placement q = plan_placement(model(), box(4, 5), o);
  EXPECT_EQ(q.gpu_workspace_bytes, 0u);
  EXPECT_EQ(q.bytes[0], 0u);
  EXPECT_EQ(q.kv_tier, Tier::Dram);
  bool said = false;
  for (const std::string& n : q.notes) said = said || n.find("cannot hold the step workspace") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(Planner, HottestExpertsGoToTheFastestTier) {
  PlanOptions o;
  o.context = 1;
  o.hotness[{1, 3}] = 0.9;
  o.hotness[{0, 2}] = 0.8;
  const PlanInput in = model();
  const Placement p = plan_placement(in, box(4, 3), o);
  for (size_t i = 0; i < in.items.size(); ++i) {
    if (in.items[i].layer == 1 && in.items[i].expert == 3) {
      EXPECT_EQ(p.tier[i], Tier::Gpu);
    }
    if (in.items[i].layer == 0 && in.items[i].expert == 2) {
      EXPECT_EQ(p.tier[i], Tier::Dram);
    }
  }
}

// llama.cpp's -ngl and --n-cpu-moe in the planner's terms (PlanOptions::gpu_layers,
// cpu_moe_layers): the GPU holds only what they allow, and the rest of the order stands.
TEST(Planner, LlamaCppLayerFlagsRestrictTheGpu) {
  const PlanInput in = model();
  PlanOptions o;
  o.context = 1000;
  o.gpu_layers = 0;
  Placement p = plan_placement(in, box(4, 5), o);
  EXPECT_EQ(p.bytes[0], 0u);
  EXPECT_EQ(p.kv_tier, Tier::Dram);
  o.gpu_layers = 1;  // the last layer only
  p = plan_placement(in, box(4, 5), o);
  EXPECT_EQ(p.kv_tier, Tier::Gpu);
  EXPECT_EQ(p.bytes[0], 3'000'000'000u) << "layer 1's attention and two of its experts";
  for (size_t i = 0; i < in.items.size(); ++i) {
    if (p.tier[i] == Tier::Gpu) {
      EXPECT_EQ(in.items[i].layer, 1) << in.items[i].name;
    }
  }
  o.gpu_layers.reset();
  o.cpu_moe_layers = 1;  // layer 0's experts off the GPU
  p = plan_placement(in, box(4, 5), o);
  EXPECT_EQ(p.bytes_by_class.at("attention")[0], 2'000'000'000u) << "attention is not an expert";
  EXPECT_EQ(p.bytes_by_class.at("routed_expert")[0], 1'000'000'000u);
  for (size_t i = 0; i < in.items.size(); ++i) {
    if (in.items[i].expert >= 0 && in.items[i].layer == 0) {
      EXPECT_NE(p.tier[i], Tier::Gpu) << in.items[i].name;
    }
  }
  // The head (outside the layers) only with more than every layer, as llama.cpp counts it.
  const PlanItem head{"output.weight", "head", -1, -1, 1000, 1.0, false};
  PlanOptions g;
  g.gpu_layers = 2;
  EXPECT_FALSE(gpu_allowed(head, 2, g));
  g.gpu_layers = 3;
  EXPECT_TRUE(gpu_allowed(head, 2, g));
  EXPECT_TRUE(gpu_allowed(head, 2, PlanOptions{}));
}

// What runs with a layer's attention (its norm, V4's mHC around it) goes to the GPU with the
// attention, and stays in DRAM with it when the KV cache (and so the attention) is not there.
TEST(Planner, WhatRunsWithTheAttentionFollowsIt) {
  PlanInput in = model();
  PlanItem norm{"layers.0.attn_norm.weight", "norm", 0, -1, 1000, 1.0, false};
  norm.with_attention = true;
  PlanItem mix{"layers.0.hc_attn_fn", "hyper_connection", 0, -1, 1000, 1.0, false};
  mix.with_attention = true;
  in.items.push_back(norm);
  in.items.push_back(mix);
  const size_t n = in.items.size();
  PlanOptions o;
  o.context = 1000;  // 1 MB of KV cache
  Placement p = plan_placement(in, box(4, 50), o);
  ASSERT_EQ(p.kv_tier, Tier::Gpu);
  EXPECT_EQ(p.tier[0], Tier::Gpu);
  EXPECT_EQ(p.tier[n - 2], Tier::Gpu);
  EXPECT_EQ(p.tier[n - 1], Tier::Gpu);
  o.context = 3'000'000;  // 3 GB of KV cache: more than the GPU has beside the attention
  o.vram_budget_gb = 2.5;
  p = plan_placement(in, box(4, 50), o);
  ASSERT_EQ(p.kv_tier, Tier::Dram);
  EXPECT_EQ(p.tier[0], Tier::Dram);
  EXPECT_EQ(p.tier[n - 2], Tier::Dram) << "the norm of an attention the CPU runs";
  EXPECT_EQ(p.tier[n - 1], Tier::Dram) << "the mixing around an attention the CPU runs";
}

TEST(Planner, CostModelTakesTheSlowestResourcePerLayer) {
  PlanOptions o;
  o.context = 0;
  const Placement p = plan_placement(model(), box(0, 6.5), o);  // no GPU: 6.5 GB DRAM
  EXPECT_EQ(p.bytes[0], 0u);
  // DRAM: 2 GB attention + 0.5 GB embedding + 4 experts; NVMe: the other 4 experts.
  EXPECT_EQ(p.bytes[2], 4'000'000'000u);
  // Per token: layer 0 reads 1 GB attention + 4 DRAM experts x 0.5 = 3 GB from DRAM (30 ms);
  // layer 1 reads 1 GB from DRAM and 2 GB from NVMe (200 ms), which the CPU reads again
  // (DRAM 30 ms): 200 ms. Total 230 ms, bound by NVMe.
  EXPECT_NEAR(p.seconds_per_token, 0.230, 1e-9);
  EXPECT_NEAR(p.read_bytes_per_token[2], 2e9, 1);
  EXPECT_EQ(p.bound, "NVMe read bandwidth");
}

// A gathered table on NVMe costs the rows a token reads, each in its whole page.
TEST(Planner, GatheredTablesOnNvmeCostTheirPagesPerToken) {
  PlanInput in;
  in.model = "table";
  in.n_layers = 1;
  in.items.push_back({"layers.0.attn", "attention", 0, -1, 1'000'000'000, 1.0, false});
  PlanItem table{"layers.0.engram.table", "engram", 0, -1, 1'000'000'000, 0.001, true};
  table.nvme_read_factor = 16;
  in.items.push_back(table);
  PlanOptions o;
  o.context = 0;
  const Placement far = plan_placement(in, box(0, 1.2), o);  // room for the attention only
  ASSERT_EQ(far.tier[1], Tier::Nvme);
  EXPECT_NEAR(far.read_bytes_per_token[2], 1e9 * 0.001 * 16, 1);
  EXPECT_NEAR(far.read_bytes_per_token[1], 1e9, 1);
  const Placement near = plan_placement(in, box(0, 3), o);  // both in DRAM: the rows alone
  ASSERT_EQ(near.tier[1], Tier::Dram);
  EXPECT_NEAR(near.read_bytes_per_token[1], 1e9 + 1e9 * 0.001, 1);
  EXPECT_EQ(near.read_bytes_per_token[2], 0);
}

TEST(Planner, CacheOfNvmeExpertsTurnsTheirReadsIntoDramReads) {
  const PlanInput in = model();
  PlanOptions o;
  o.context = 0;
  const Placement before = plan_placement(in, box(0, 6.5), o);
  // No cache: as before the cache was modelled — the 4 NVMe experts of layer 1 read 2 GB.
  o.nvme_cache_bytes = 0;
  const Placement none = plan_placement(in, box(0, 6.5), o);
  EXPECT_EQ(none.nvme_experts, 4);
  EXPECT_EQ(none.nvme_cached_experts, 0);
  EXPECT_EQ(none.nvme_cache_hit_rate, 0);
  EXPECT_NEAR(none.read_bytes_per_token[2], 2e9, 1);
  EXPECT_EQ(none.read_bytes_per_token[1], before.read_bytes_per_token[1]);
  EXPECT_EQ(none.seconds_per_token, before.seconds_per_token);
  // A cache for all of them: nothing read from NVMe; the same bytes come from DRAM.
  o.nvme_cache_bytes = 4'000'000'000;
  const Placement all = plan_placement(in, box(0, 6.5), o);
  EXPECT_EQ(all.tier, none.tier) << "the cache does not move experts";
  EXPECT_EQ(all.read_bytes_per_token[2], 0);
  EXPECT_NEAR(all.read_bytes_per_token[1], none.read_bytes_per_token[1] + 2e9, 1);
  EXPECT_EQ(all.nvme_cached_experts, 4);
  EXPECT_DOUBLE_EQ(all.nvme_cache_hit_rate, 1.0);
  EXPECT_NEAR(all.seconds_per_token, 0.060, 1e-9) << "3 GB per layer from DRAM at 100 GB/s";
  EXPECT_NE(placement_text(in, box(0, 6.5), all).find("predicted hit rate 100.0%"), std::string::npos);
  const nlohmann::json j = placement_json(in, all);
  EXPECT_EQ(j["nvme_cache"]["experts_held"], 4);
  EXPECT_DOUBLE_EQ(j["nvme_cache"]["predicted_hit_rate"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["read_gb_per_token"]["nvme"].get<double>(), 0.0);
}

TEST(Planner, SkewedHotnessRaisesThePredictedCacheHitRate) {
  const PlanInput in = model();
  PlanOptions o;
  o.context = 0;
  o.nvme_cache_bytes = 1'000'000'000;  // one expert of the four on NVMe
  const Placement uniform = plan_placement(in, box(0, 6.5), o);
  EXPECT_EQ(uniform.nvme_cached_experts, 1);
  EXPECT_DOUBLE_EQ(uniform.nvme_cache_hit_rate, 0.25);
  EXPECT_NEAR(uniform.read_bytes_per_token[2], 1.5e9, 1);
  // Layer 1 routes mostly to expert 0: it goes to DRAM, one layer-0 expert (0.5) and layer 1's
  // cold experts (0.1, 0.05, 0.05) go to NVMe, and the cache holds the hottest of those.
  o.hotness[{1, 0}] = 0.8;
  o.hotness[{1, 1}] = 0.1;
  o.hotness[{1, 2}] = 0.05;
  o.hotness[{1, 3}] = 0.05;
  const Placement skewed = plan_placement(in, box(0, 6.5), o);
  EXPECT_EQ(skewed.nvme_experts, 4);
  EXPECT_EQ(skewed.nvme_cached_experts, 1);
  EXPECT_NEAR(skewed.nvme_cache_hit_rate, 0.5 / 0.7, 1e-12);
  EXPECT_GT(skewed.nvme_cache_hit_rate, uniform.nvme_cache_hit_rate);
  EXPECT_NEAR(skewed.read_bytes_per_token[2], 0.2e9, 1);
}

TEST(Planner, RefusesWhatCannotRunAndSaysWhy) {
  PlanOptions o;
  o.context = 10;
  STRATA_EXPECT_ERROR(plan_placement(model(), box(0, 1.5), o), "cannot run", "test-box", "2.00 GB");
  o.context = 10'000'000;  // 10 GB of KV
  STRATA_EXPECT_ERROR(plan_placement(model(), box(4, 5), o), "KV cache", "10000000 tokens");
}

TEST(Planner, FullSizeConfigsOnTheReferenceBox) {
  const HardwareProfile hw = find_profile("rtx4090-256gb", std::filesystem::path(STRATA_SOURCE_DIR) / "profiles");
  struct Case {
    const char* config;
    const char* type;
    double min_total_gb, max_total_gb;
    bool needs_nvme;
  };
  for (const Case& c : {Case{"deepseek-v3-671b", "fp8", 660, 700, true}, Case{"deepseek-v4-flash", "fp4", 140, 175, false},
                        Case{"deepseek-v4-pro", "fp4", 780, 900, true}}) {
    const ModelConfig cfg = load_hf_config(std::filesystem::path(STRATA_TEST_DATA) / "configs" / (std::string(c.config) + ".json"));
    const PlanInput in = plan_input_from_config(cfg, c.type, c.config);
    const Placement p = plan_placement(in, hw);
    const double total = double(p.bytes[0] + p.bytes[1] + p.bytes[2]) / 1e9;
    EXPECT_GT(total, c.min_total_gb) << c.config;
    EXPECT_LT(total, c.max_total_gb) << c.config;
    EXPECT_EQ(p.bytes[2] > 0, c.needs_nvme) << c.config;
    EXPECT_GT(p.tokens_per_s, 0) << c.config;
    EXPECT_NE(placement_svg(in, p).find("<svg"), std::string::npos);
  }
  STRATA_EXPECT_ERROR(plan_input_from_config(ModelConfig{}, "tq1_0", "x"), "tq1_0", "iq1_m");
}

// What the CPU computes wherever it is placed (norms outside attention, routers, the FFN's and
// the head's mHC) is never planned on the GPU, even with room to spare; what the device runs
// (attention with its norm and V4's mixing around it, the head, shared experts) is.
TEST(Planner, TensorsTheCpuComputesStayOffTheGpu) {
  const HardwareProfile hw = find_profile("rtx4090-256gb", std::filesystem::path(STRATA_SOURCE_DIR) / "profiles");
  for (const char* config : {"deepseek-v3-671b", "deepseek-v4-flash"}) {
    SCOPED_TRACE(config);
    const ModelConfig cfg = load_hf_config(std::filesystem::path(STRATA_TEST_DATA) / "configs" / (std::string(config) + ".json"));
    const PlanInput in = plan_input_from_config(cfg, "q4_k", config);
    PlanOptions o;
    o.vram_budget_gb = 1e5;  // room for everything
    const Placement p = plan_placement(in, hw, o);
    int host_only = 0;
    for (size_t i = 0; i < in.items.size(); ++i) {
      const PlanItem& it = in.items[i];
      const bool with_attention =
          it.name.find(".attn_norm.") != std::string::npos || it.name.find(".hc_attn_") != std::string::npos;
      const bool cpu =
          !with_attention && (it.cls == "router" || it.cls == "hyper_connection" || it.cls == "norm");
      EXPECT_EQ(it.host_only, cpu) << it.name;
      EXPECT_EQ(it.with_attention, with_attention) << it.name;
      if (it.gathered) continue;
      EXPECT_EQ(p.tier[i], cpu ? Tier::Dram : Tier::Gpu) << it.name;
      host_only += cpu;
    }
    EXPECT_GT(host_only, 0);
  }
}

}  // namespace
}  // namespace strata
