// Routed experts read through the memory tier's ExpertStore give the same logits as experts
// read in place, in every storage layout, with a cache too small for all experts (so experts
// are evicted and read again), on both reader backends; use counts and budget errors.
#include <gtest/gtest.h>

#include <numeric>

#include "cpu-kernels/compute_arena.h"

#include "runtime/model/causal_lm.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/expert_placement.h"
#include "runtime/model/expert_source.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

const std::vector<int32_t> kTokens = {1, 17, 200, 33, 4, 91, 300, 7, 12, 250, 5, 60};

ModelFiles tiny(const test::ScratchDir& dir, Arch arch, const std::string& dtype, const std::string& format,
                int shards = 1) {
  TinyOptions o;
  o.arch = arch;
  o.dtype = dtype;
  o.format = format;
  o.shards = shards;
  o.seed = 9;
  return open_model(make_tiny_model(o, dir / (std::string(arch_name(arch)) + dtype + format)).path);
}

// Prefill of half the tokens, then the rest one by one; every position's logits.
std::vector<float> run(CausalLM& lm) {
  std::vector<float> out, step;
  const size_t half = kTokens.size() / 2;
  lm.forward(std::span(kTokens).first(half), out, true);
  for (size_t i = half; i < kTokens.size(); ++i) {
    lm.forward(std::span(kTokens).subspan(i, 1), step, false);
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

uint64_t one_expert_bytes(const ModelFiles& m) {
  uint64_t b = 0;
  for (const char* w : {"w1", "w2", "w3"}) {
    const TensorEntry& t = m.index.expert(m.config.first_k_dense_replace, 0, w);
    b += t.nbytes + (t.scale.empty() ? 0 : m.index.at(t.scale).nbytes);
  }
  return b;
}

struct Case {
  Arch arch;
  std::string dtype, format;
  int shards;
};

TEST(ExpertSource, StoredExpertsGiveTheSameLogitsAsMappedOnes) {
  test::ScratchDir dir("experts");
  const Case cases[] = {{Arch::DeepseekV3, "bf16", "hf", 1},   {Arch::DeepseekV3, "fp8", "hf", 3},
                        {Arch::DeepseekV3, "q8_0", "gguf", 1}, {Arch::DeepseekV32, "q4_k", "gguf", 1},
                        {Arch::DeepseekV4, "fp4", "hf", 1},    {Arch::DeepseekV4, "fp8", "hf", 2}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(arch_name(c.arch)) + " " + c.dtype + " " + c.format);
    const ModelFiles m = tiny(dir, c.arch, c.dtype, c.format, c.shards);
    auto mapped = load_causal_lm(m);
    const auto want = run(*mapped);
    EXPECT_FALSE(mapped->experts().store_stats());
    for (bool pread : {false, true}) {
      ModelOptions o;
      o.expert_cache_bytes = 3 * (one_expert_bytes(m) + 3 * 4096);  // about three experts
      o.expert_io_pread = pread;
      auto stored = load_causal_lm(m, o);
      const auto got = run(*stored);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(got, want) << "pread " << pread;
      const auto st = stored->experts().store_stats();
      ASSERT_TRUE(st);
      EXPECT_GT(st->evictions, 0u);
      EXPECT_LE(st->peak_bytes, o.expert_cache_bytes);
      EXPECT_EQ(st->failures, 0u);
    }
  }
}

TEST(ExpertSource, CountsEveryRoutedTokenOfEveryMoeLayer) {
  test::ScratchDir dir("experts");
  const ModelFiles m = tiny(dir, Arch::DeepseekV3, "f32", "hf");
  auto lm = load_causal_lm(m);
  run(*lm);
  const auto& counts = lm->experts().counts();
  const auto& tokens = lm->experts().tokens();
  ASSERT_EQ(counts.size(), static_cast<size_t>(m.config.num_hidden_layers));
  for (int64_t li = 0; li < m.config.num_hidden_layers; ++li) {
    const int64_t sum = std::accumulate(counts[li].begin(), counts[li].end(), int64_t{0});
    if (!m.config.is_moe_layer(li)) {
      EXPECT_EQ(sum, 0);
      continue;
    }
    EXPECT_EQ(tokens[li], static_cast<int64_t>(kTokens.size()));
    EXPECT_EQ(sum, static_cast<int64_t>(kTokens.size()) * m.config.num_experts_per_tok) << "layer " << li;
  }
}

TEST(ExpertSource, NextLayerGuessesAreScoredOnlyWhenExpertsAreStored) {
  test::ScratchDir dir("experts");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV4}) {
    const ModelFiles m = tiny(dir, arch, "bf16", "hf");
    auto mapped = load_causal_lm(m);
    run(*mapped);
    EXPECT_EQ(mapped->experts().prediction_stats().guessed, 0);
    ModelOptions o;
    o.expert_cache_bytes = 1 << 20;
    auto stored = load_causal_lm(m, o);
    run(*stored);
    const auto& p = stored->experts().prediction_stats();
    // One guess per MoE layer after the first and per batch (1 prefill + 6 decode steps).
    int64_t guessed_layers = 0;
    for (int64_t li = 1; li < m.config.num_hidden_layers; ++li) guessed_layers += m.config.is_moe_layer(li - 1) && m.config.is_moe_layer(li);
    EXPECT_GT(p.guessed, 0);
    EXPECT_GE(p.guessed, guessed_layers * 7) << arch_name(arch);
    EXPECT_LE(p.correct, std::min(p.guessed, p.used));
    EXPECT_GT(p.correct, 0);
  }
}

TEST(ExpertSource, PlacedExpertsAreFixedInDramAndTheRestStream) {
  test::ScratchDir dir("experts");
  const ModelFiles m = tiny(dir, Arch::DeepseekV3, "bf16", "hf");
  auto mapped = load_causal_lm(m);
  const auto want = run(*mapped);
  // Odd experts in DRAM, even ones on NVMe (missing from the map: NVMe too).
  ModelOptions o;
  for (int li = 0; li < m.config.num_hidden_layers; ++li)
    if (m.config.is_moe_layer(li))
      for (int e = 1; e < m.config.n_routed_experts; e += 2) o.expert_placement[{li, e}] = e % 4 == 1 ? Tier::Dram : Tier::Gpu;
  STRATA_EXPECT_ERROR(load_causal_lm(m, o), "on NVMe but gives them no DRAM cache");
  o.expert_cache_bytes = 2 * (one_expert_bytes(m) + 3 * 4096);
  auto tiered = load_causal_lm(m, o);
  EXPECT_EQ(run(*tiered), want);
  const auto st = tiered->experts().store_stats();
  ASSERT_TRUE(st);
  EXPECT_GT(st->fixed_uses, 0u);
  EXPECT_GT(st->hits + st->late + st->misses, 0u);
  EXPECT_LE(st->peak_bytes, o.expert_cache_bytes);
  // Everything placed in DRAM: no cache needed, nothing read on use.
  for (int li = 0; li < m.config.num_hidden_layers; ++li)
    if (m.config.is_moe_layer(li))
      for (int e = 0; e < m.config.n_routed_experts; ++e) o.expert_placement[{li, e}] = Tier::Dram;
  o.expert_cache_bytes = 0;
  auto all = load_causal_lm(m, o);
  EXPECT_EQ(run(*all), want);
  EXPECT_EQ(all->experts().store_stats()->bytes_read, 0u);
  EXPECT_EQ(all->experts().store_stats()->hits + all->experts().store_stats()->misses, 0u);
}

// With a NUMA split (groups of cores standing in for nodes here) each node's arena computes its
// own experts, read in place, fixed in DRAM or through the cache: the logits do not change.
TEST(ExpertSource, NumaSplitGivesTheSameLogits) {
  test::ScratchDir dir("experts");
  struct Restore {
    ~Restore() { configure_compute_arena({}); }
  } restore;
  for (const Case& c : {Case{Arch::DeepseekV3, "q4_k", "gguf", 1}, Case{Arch::DeepseekV4, "fp4", "hf", 1}}) {
    SCOPED_TRACE(std::string(arch_name(c.arch)) + " " + c.dtype);
    const ModelFiles m = tiny(dir, c.arch, c.dtype, c.format);
    configure_compute_arena({});
    const auto want = run(*load_causal_lm(m));
    ArenaOptions split;
    split.numa_split = true;
    split.numa_groups = 2;
    if (configure_compute_arena(split).nodes < 2) GTEST_SKIP() << "one core: no two groups to make";
    EXPECT_EQ(run(*load_causal_lm(m)), want) << "mapped";
    ModelOptions o;
    for (int li = 0; li < m.config.num_hidden_layers; ++li)
      if (m.config.is_moe_layer(li))
        for (int e = 1; e < m.config.n_routed_experts; e += 2) o.expert_placement[{li, e}] = Tier::Dram;
    o.expert_cache_bytes = 2 * (one_expert_bytes(m) + 3 * 4096);
    auto tiered = load_causal_lm(m, o);
    EXPECT_EQ(run(*tiered), want) << "fixed + cached";
    EXPECT_GT(tiered->experts().store_stats()->fixed_uses, 0u);
  }
}

TEST(ExpertSource, EngramTablesPagedThroughTheStoreGiveTheSameLogits) {
  test::ScratchDir dir("experts");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV4})
    for (const char* dtype : {"bf16", "f32"}) {
      SCOPED_TRACE(std::string(arch_name(arch)) + " " + dtype);
      TinyOptions t;
      t.arch = arch;
      t.dtype = dtype;
      t.engram = true;
      t.seed = 4;
      const ModelFiles m = open_model(make_tiny_model(t, dir / (std::string(arch_name(arch)) + dtype + "e")).path);
      auto mapped = load_causal_lm(m);
      const auto want = run(*mapped);
      ModelOptions o;
      o.engram_cache_bytes = 3 * (64 << 10) + 8192;  // a few 64 KiB pages per table: evictions
      o.expert_io_pread = std::string(dtype) == "f32";
      auto stored = load_causal_lm(m, o);
      EXPECT_EQ(run(*stored), want);
      ASSERT_NE(stored->engram(), nullptr);
      int64_t reads = 0;
      for (int layer : stored->engram()->layer_ids()) {
        const auto* table = dynamic_cast<const StoredEngramTable*>(&stored->engram()->table(layer));
        ASSERT_NE(table, nullptr);
        const ExpertStoreStats st = table->stats();
        EXPECT_GT(st.hits + st.late + st.misses, 0u);
        EXPECT_GT(st.prefetched, 0u) << "rows are prefetched at the start of each step";
        EXPECT_LE(st.peak_bytes, o.engram_cache_bytes);
        reads += stored->engram()->row_reads(layer);
        const auto hist = stored->engram()->row_histogram(layer);
        EXPECT_EQ(std::accumulate(hist.begin(), hist.end(), int64_t{0}), stored->engram()->row_reads(layer));
      }
      EXPECT_GT(reads, 0);
    }
}

TEST(ExpertSource, BlockScaledEngramTablesAreNotPaged) {
  test::ScratchDir dir("experts");
  const ModelFiles m = tiny(dir, Arch::DeepseekV3, "fp8", "hf");
  // An FP8 matrix with 128x128 scales outside its rows, standing in for such a table.
  const TensorEntry& fp8 = m.index.expert(m.config.first_k_dense_replace, 0, "w1");
  ASSERT_FALSE(fp8.scale.empty());
  STRATA_EXPECT_ERROR(StoredEngramTable(m.index, fp8, 1 << 20, false), fp8.name, "cannot be paged by rows");
}

TEST(ExpertPlacement, SizesParseWithUnits) {
  EXPECT_DOUBLE_EQ(parse_gb("2G", "x"), 2);
  EXPECT_DOUBLE_EQ(parse_gb("512M", "x"), 0.512);
  EXPECT_DOUBLE_EQ(parse_gb("1.5gb", "x"), 1.5);
  EXPECT_DOUBLE_EQ(parse_gb("3", "x"), 3);
  EXPECT_DOUBLE_EQ(parse_gb("1T", "x"), 1000);
  STRATA_EXPECT_ERROR(parse_gb("2X", "--dram-budget"), "--dram-budget", "'2X' is not a size");
  STRATA_EXPECT_ERROR(parse_gb("-1G", "--dram-budget"), "not a size");
  STRATA_EXPECT_ERROR(parse_gb("G", "--dram-budget"), "not a size");
}

TEST(ExpertSource, BudgetBelowOneExpertIsRefusedAtLoad) {
  test::ScratchDir dir("experts");
  const ModelFiles m = tiny(dir, Arch::DeepseekV3, "bf16", "hf");
  ModelOptions o;
  o.expert_cache_bytes = one_expert_bytes(m) / 2;
  STRATA_EXPECT_ERROR(load_causal_lm(m, o), "more than the whole DRAM cache budget");
}

}  // namespace
}  // namespace strata
