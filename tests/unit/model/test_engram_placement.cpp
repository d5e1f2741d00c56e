// Engram tables where the planner puts them: a DRAM budget that leaves no room for the tables
// sends them to NVMe, and the run pages exactly those through the Engram row cache (the others
// stay mapped) with the same logits as the unconstrained run; placement files carry the
// tables' tiers.
#include <gtest/gtest.h>

#include "memory-tier/planner.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/engram.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/expert_placement.h"
#include "runtime/model/plan_items.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

const std::vector<int32_t> kTokens = {1, 17, 200, 33, 4, 91, 300, 7, 12, 250};

std::vector<float> run(CausalLM& lm) {
  std::vector<float> out, step;
  lm.forward(std::span(kTokens).first(4), out, true);
  for (size_t i = 4; i < kTokens.size(); ++i) {
    lm.forward(std::span(kTokens).subspan(i, 1), step, false);
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

HardwareProfile box() {
  HardwareProfile hw;
  hw.name = "test-box";
  hw.source = "test";
  hw.dram_gb = 1;
  hw.dram_read_gbps = 100;
  hw.nvme_read_gbps = 10;
  return hw;
}

// With Engram tables at layers 1 and 2 (two tables, so one can be placed apart from the other).
ModelFiles tiny_engram(const test::ScratchDir& dir, Arch arch) {
  TinyOptions t;
  t.arch = arch;
  t.dtype = "bf16";
  t.engram = true;
  t.seed = 5;
  t.config_overrides["engram"] = {{"layer_ids", {1, 2}},      {"max_ngram_size", 3}, {"n_head_per_ngram", 2},
                                  {"n_embed_per_ngram", 16}, {"engram_vocab_size", {509, 521}}, {"kernel_size", 4},
                                  {"pad_id", 2}};
  return open_model(make_tiny_model(t, dir / std::string(arch_name(arch))).path);
}

// Bytes the planner must keep in DRAM (per-token tensors + KV for `context`), the largest
// routed expert and the largest gathered table.
struct Sizes {
  uint64_t fixed = 0, expert = 0, table = 0;
};
Sizes sizes(const ModelFiles& m, int64_t context) {
  const PlanInput in = plan_input_from_model(m);
  Sizes s;
  s.fixed = kv_bytes_at(in, context);
  for (const PlanItem& it : in.items) {
    if (it.expert >= 0) s.expert = std::max(s.expert, it.bytes);
    else if (it.gathered) s.table = std::max(s.table, it.bytes);
    else s.fixed += it.bytes;
  }
  return s;
}

ModelOptions options_of(const ExpertPlan& plan) {
  ModelOptions o;
  o.expert_placement = plan.tier;
  o.expert_cache_bytes = plan.cache_bytes;
  o.engram_placement = plan.engram_tier;
  o.engram_cache_bytes = plan.engram_cache_bytes;
  return o;
}

// The planner's items for Engram tables: the share of a table one token reads is one row per
// (n-gram order, head) of all that layer's rows, and on NVMe each row costs its 64 KiB page.
TEST(EngramPlacement, TableItemsCarryTheirPerTokenReads) {
  test::ScratchDir dir("engram-items");
  const ModelFiles m = tiny_engram(dir, Arch::DeepseekV3);
  const auto heads = engram_head_sizes(m.config.engram);
  int tables = 0;
  for (const PlanItem& it : plan_input_from_model(m).items) {
    if (it.cls != "engram" || !it.gathered) continue;
    ++tables;
    int64_t rows = 0;
    for (int64_t r : heads.at(it.layer)) rows += r;
    EXPECT_NEAR(it.reads_per_token, (3.0 - 1) * 2 / double(rows), 1e-12) << it.name;
    const double row_bytes = double(it.bytes) / double(rows);  // 8 bf16 values per head row
    EXPECT_EQ(row_bytes, 16);
    EXPECT_EQ(it.nvme_read_factor, 65536 / 16) << it.name;
  }
  EXPECT_EQ(tables, 2);
}

TEST(EngramPlacement, TablesPlannedOnNvmeArePagedWithTheSameLogits) {
  test::ScratchDir dir("engram-placement");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV4}) {
    SCOPED_TRACE(std::string(arch_name(arch)));
    const ModelFiles m = tiny_engram(dir, arch);
    auto free_lm = load_causal_lm(m);
    const auto want = run(*free_lm);
    ASSERT_NE(free_lm->engram(), nullptr);
    const std::vector<int> layers = free_lm->engram()->layer_ids();
    ASSERT_FALSE(layers.empty());

    PlanOptions po;
    po.context = 64;
    const Sizes s = sizes(m, po.context);
    const uint64_t expert_cache = 4 * s.expert, engram_cache = layers.size() * (s.table + 8192);
    // Room for what every token reads and the two caches; less than one table beside them.
    po.dram_budget_gb = static_cast<double>(s.fixed + expert_cache + engram_cache + s.table / 2) / 1e9;
    const ExpertPlan tight = plan_experts(m, box(), po, expert_cache, engram_cache);
    ASSERT_EQ(tight.engram_tier.size(), layers.size());
    for (const auto& [layer, t] : tight.engram_tier) EXPECT_EQ(t, Tier::Nvme) << "layer " << layer;
    EXPECT_EQ(tight.engram_cache_bytes, engram_cache);
    EXPECT_NE(tight.summary.find("Engram cache"), std::string::npos) << tight.summary;
    auto paged = load_causal_lm(m, options_of(tight));
    EXPECT_EQ(run(*paged), want) << "tables paged from NVMe change nothing";
    for (int layer : layers) {
      const auto* t = dynamic_cast<const StoredEngramTable*>(&paged->engram()->table(layer));
      ASSERT_NE(t, nullptr) << "layer " << layer << " is on NVMe: paged";
      const ExpertStoreStats st = t->stats();
      EXPECT_GT(st.hits + st.late + st.misses, 0u);
      EXPECT_LE(st.peak_bytes, engram_cache / layers.size());
    }

    // A budget with room for everything: tables in DRAM, mapped, no Engram cache.
    po.dram_budget_gb = 1;
    const ExpertPlan roomy = plan_experts(m, box(), po, 0, 0);
    for (const auto& [layer, t] : roomy.engram_tier) EXPECT_EQ(t, Tier::Dram) << "layer " << layer;
    EXPECT_EQ(roomy.engram_cache_bytes, 0u);
    auto mapped = load_causal_lm(m, options_of(roomy));
    EXPECT_EQ(run(*mapped), want);
    for (int layer : layers)
      EXPECT_EQ(dynamic_cast<const StoredEngramTable*>(&mapped->engram()->table(layer)), nullptr) << layer;
  }
}

TEST(EngramPlacement, OnlyTheNvmeTablesArePaged) {
  test::ScratchDir dir("engram-placement");
  const ModelFiles m = tiny_engram(dir, Arch::DeepseekV3);
  const auto want = run(*load_causal_lm(m));
  ModelOptions o;
  std::vector<int> layers = load_causal_lm(m)->engram()->layer_ids();
  ASSERT_GE(layers.size(), 2u);
  o.engram_placement[layers[0]] = Tier::Dram;
  for (size_t i = 1; i < layers.size(); ++i) o.engram_placement[layers[i]] = Tier::Nvme;
  o.engram_cache_bytes = uint64_t{1} << 20;
  auto lm = load_causal_lm(m, o);
  EXPECT_EQ(run(*lm), want);
  EXPECT_EQ(dynamic_cast<const StoredEngramTable*>(&lm->engram()->table(layers[0])), nullptr);
  for (size_t i = 1; i < layers.size(); ++i) {
    const auto* t = dynamic_cast<const StoredEngramTable*>(&lm->engram()->table(layers[i]));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->cache_bytes(), o.engram_cache_bytes / (layers.size() - 1)) << "the cache shared by the paged tables";
  }
  o.engram_cache_bytes = 0;
  STRATA_EXPECT_ERROR(load_causal_lm(m, o), "Engram table(s) on NVMe", "no DRAM cache", "--engram-cache-mb");
}

TEST(EngramPlacement, PlacementFilesCarryTheTables) {
  test::ScratchDir dir("engram-placement");
  const ModelFiles m = tiny_engram(dir, Arch::DeepseekV3);
  PlanOptions po;
  po.context = 64;
  const Sizes s = sizes(m, po.context);
  po.dram_budget_gb = static_cast<double>(s.fixed + s.table / 2) / 1e9;
  const PlanInput in = plan_input_from_model(m);
  const Placement p = plan_placement(in, box(), po);
  test::write_text(dir / "plan.json", placement_json(in, p).dump());
  const std::map<int, Tier> tables = load_engram_placement(dir / "plan.json", m.config);
  ASSERT_FALSE(tables.empty());
  for (size_t i = 0; i < in.items.size(); ++i)
    if (in.items[i].cls == "engram" && in.items[i].gathered) {
      EXPECT_EQ(tables.at(in.items[i].layer), p.tier[i]);
    }
  for (const auto& [layer, t] : tables) EXPECT_EQ(t, Tier::Nvme) << layer;

  test::write_text(dir / "old.json", R"({"experts": []})");
  EXPECT_TRUE(load_engram_placement(dir / "old.json", m.config).empty()) << "files without tables: none placed";
  test::write_text(dir / "bad.json", R"({"tables": [["layers.1.engram.multi_head_embedding.embedding.weight", "disk"]]})");
  STRATA_EXPECT_ERROR(load_engram_placement(dir / "bad.json", m.config), "bad.json", "'tables' entry", "disk");
  test::write_text(dir / "far.json",
                   R"({"tables": [["layers.99.engram.multi_head_embedding.embedding.weight", "nvme"]]})");
  STRATA_EXPECT_ERROR(load_engram_placement(dir / "far.json", m.config), "far.json", "layers.99", "no Engram table");
}

}  // namespace
}  // namespace strata
