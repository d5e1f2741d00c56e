// The heterogeneous schedule on the simulated GPU: with GPU-tier routed experts and shared
// experts on the device, DRAM-tier experts fixed on the host and NVMe-tier experts streamed
// through the cache, every architecture (V3, V3.2, V4, with Engram; HF and GGUF) must give the
// logits of the all-CPU run bit for bit; the device holds what the placement says, refuses
// what its memory cannot hold by name, and its share of a decode step overlaps the CPU's.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "runtime/backend/device.h"
#include "runtime/backend/schedule_stats.h"
#include "runtime/common/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/device_workspace.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/plan_items.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

const std::vector<int32_t> kPrompt = {1, 17, 200, 33, 4, 91, 300, 7};

struct Case {
  Arch arch;
  bool engram;
  std::string format, dtype;
  std::string name() const {
    return std::string(arch_name(arch)) + (engram ? "-engram-" : "-") + format + "-" + dtype;
  }
  // The tiny model of this case, written under dir.
  ModelFiles make(const test::ScratchDir& dir, uint64_t seed) const {
    TinyOptions t;
    t.arch = arch;
    t.engram = engram;
    t.format = format;
    t.dtype = dtype;
    t.seed = seed;
    return open_model(make_tiny_model(t, dir / (format == "gguf" ? name() + ".gguf" : name())).path);
  }
};

// Experts e % 3 == 0 on the GPU, 1 in DRAM, 2 on NVMe; every shared expert, the dense layers'
// FFN, the output head and the attention of every other layer on the GPU; V4's mHC mixing
// around the attention with it in every fourth layer (the others mix on the host).
void place(const ModelFiles& m, ModelOptions& o) {
  const ModelConfig& c = m.config;
  for (const TensorEntry& t : m.index.tensors())
    for (int li = 0; li < c.num_hidden_layers; li += 2) {
      const std::string p = "layers." + std::to_string(li) + ".";
      if (t.name.rfind(p + "attn", 0) == 0 || (li % 4 == 0 && t.name.rfind(p + "hc_attn_", 0) == 0))
        o.tensor_placement[t.name] = Tier::Gpu;
    }
  for (int li = 0; li < c.num_hidden_layers; ++li) {
    if (!c.is_moe_layer(li)) {  // a dense layer's FFN on the GPU
      for (int k = 1; k <= 3; ++k)
        o.tensor_placement["layers." + std::to_string(li) + ".ffn.w" + std::to_string(k) + ".weight"] = Tier::Gpu;
      continue;
    }
    for (int e = 0; e < c.n_routed_experts; ++e)
      o.expert_placement[{li, e}] = e % 3 == 0 ? Tier::Gpu : e % 3 == 1 ? Tier::Dram : Tier::Nvme;
    for (int k = 1; k <= 3; ++k)
      o.tensor_placement["layers." + std::to_string(li) + ".ffn.shared_experts.w" + std::to_string(k) + ".weight"] =
          Tier::Gpu;
  }
  if (!c.tie_word_embeddings) o.tensor_placement["head.weight"] = Tier::Gpu;
  o.expert_cache_bytes = 1 << 20;
}

// The prompt's last logits, then three greedy decode steps' logits, concatenated.
std::vector<float> run_on(CausalLM& lm) {
  std::vector<float> all, logits;
  std::vector<int32_t> next = kPrompt;
  for (int i = 0; i < 4; ++i) {
    lm.forward(next, logits, false);
    all.insert(all.end(), logits.begin(), logits.end());
    next = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
  }
  return all;
}
std::vector<float> run(const ModelFiles& m, const ModelOptions& o) { return run_on(*load_causal_lm(m, o)); }

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(GpuSim, SameLogitsBitForBitAsTheCpuOnEveryArchitecture) {
  test::ScratchDir dir("gpusim");
  for (const Case& k : {Case{Arch::DeepseekV3, false, "hf", "bf16"}, Case{Arch::DeepseekV32, false, "hf", "fp8"},
                        Case{Arch::DeepseekV4, false, "hf", "fp4"}, Case{Arch::DeepseekV3, true, "hf", "bf16"},
                        Case{Arch::DeepseekV4, true, "hf", "bf16"}, Case{Arch::DeepseekV3, false, "gguf", "q4_k"},
                        Case{Arch::DeepseekV32, false, "gguf", "q8_0"}}) {
    const std::string name = k.name();
    SCOPED_TRACE(name);
    const ModelFiles m = k.make(dir, 11);

    const std::vector<float> mapped = run(m, ModelOptions{});  // every expert read in place by the CPU
    ModelOptions cpu;
    place(m, cpu);  // GPU-tier experts fixed in DRAM, computed by the CPU
    const std::vector<float> want = run(m, cpu);
    EXPECT_TRUE(bit_equal(want, mapped));

    ModelOptions sim = cpu;
    sim.gpu = make_sim_gpu({.capacity_bytes = 64 << 20});
    auto lm = load_causal_lm(m, sim);
    const ExpertSource& ex = lm->experts();
    int on_gpu = 0;
    for (const auto& [key, tier] : sim.expert_placement) on_gpu += tier == Tier::Gpu;
    EXPECT_EQ(ex.device_experts(), on_gpu);
    EXPECT_GT(sim.gpu->used_by_class().at("routed experts"), 0u);
    if (m.config.n_shared_experts > 0) {
      EXPECT_GT(sim.gpu->used_by_class().at("shared experts"), 0u);
    }
    EXPECT_GT(sim.gpu->used_by_class().at("attention"), 0u);
    if (m.config.is_v4()) {
      // Layer 0's mHC mixing and norm went to the device with its attention; placed in DRAM
      // instead, they stay on the host, which mixes the streams around the device's attention.
      ModelOptions host_mix = sim;
      std::erase_if(host_mix.tensor_placement,
                    [](const auto& kv) { return kv.first.find(".hc_attn_") != std::string::npos; });
      host_mix.gpu = make_sim_gpu({.capacity_bytes = 64 << 20});
      auto hm = load_causal_lm(m, host_mix);
      const int64_t hc = m.config.hc_mult, d = m.config.hidden_size, rows = (2 + hc) * hc;
      EXPECT_GE(sim.gpu->used_by_class().at("attention"),
                host_mix.gpu->used_by_class().at("attention") +
                    static_cast<uint64_t>(rows * hc * d + rows + 3 + d) * 4);
      EXPECT_TRUE(bit_equal(run_on(*hm), want));
    }
    EXPECT_GT(sim.gpu->used_by_class().at("head"), 0u);
    if (m.config.first_k_dense_replace > 0) {
      EXPECT_GT(sim.gpu->used_by_class().at("dense layers"), 0u);
    }
    EXPECT_EQ(sim.gpu->used_by_class().count("KV cache"), 0u);  // no sequence yet
    {
      auto seq = lm->new_sequence();  // the caches of the GPU's layers are on the GPU
      EXPECT_GT(sim.gpu->used_by_class().at("KV cache"), 0u);
    }
    EXPECT_EQ(sim.gpu->used_by_class().count("KV cache"), 0u);
    lm.reset();
    EXPECT_TRUE(bit_equal(run(m, sim), want));
    EXPECT_GT(sim.gpu->bytes_to_device(), 0u);
    EXPECT_GT(sim.gpu->bytes_to_host(), 0u);

    // Prefill offload: the host's experts with 2+ tokens of the prompt (DRAM-fixed and cached
    // NVMe ones) copied to the device for the batch and computed there: the same bits.
    ModelOptions off = sim;
    off.offload_batch = 2;
    auto olm = load_causal_lm(m, off);
    EXPECT_TRUE(bit_equal(run_on(*olm), want));
    EXPECT_GT(olm->experts().offload_stats().experts, 0);
    EXPECT_GT(olm->experts().offload_stats().bytes, 0u);

    // A device whose step workspace has no room for the copies (4 KiB reserved) computes
    // those experts on the host instead: the same bits, nothing offloaded, no failure (what
    // does not fit the workspace is allocated beside it, and counted).
    ModelOptions full = off;
    full.gpu = make_sim_gpu({.capacity_bytes = 64 << 20});
    full.gpu->reserve_workspace(4096);
    auto flm = load_causal_lm(m, full);
    EXPECT_TRUE(bit_equal(run_on(*flm), want));
    EXPECT_EQ(flm->experts().offload_stats().experts, 0);
    EXPECT_GT(full.gpu->workspace_overflows(), 0u);
  }
}

// The step workspace (runtime/model/device_workspace.h) is what a step's device work holds at
// most: two sequences' prompts cut into pieces of max_step_tokens (one filling the context,
// so that a whole piece attends over all of it), then decoding, with prefill offload copying
// experts, never take scratch past it; and the figure is not far above what they take (it is
// set aside out of the GPU's budget).
TEST(GpuSim, StepsStayInsideTheReservedWorkspace) {
  test::ScratchDir dir("gpusim-ws");
  for (const Case& k : {Case{Arch::DeepseekV3, false, "hf", "bf16"}, Case{Arch::DeepseekV32, false, "hf", "fp8"},
                        Case{Arch::DeepseekV4, false, "hf", "fp4"}, Case{Arch::DeepseekV4, true, "hf", "bf16"},
                        Case{Arch::DeepseekV3, false, "gguf", "q4_k"}}) {
    const std::string name = k.name();
    SCOPED_TRACE(name);
    const ModelFiles m = k.make(dir, TinyOptions{}.seed);
    ModelOptions o;
    place(m, o);
    for (auto& [name_, tier] : o.tensor_placement) tier = Tier::Gpu;  // every layer's attention
    for (int li = 0; li < m.config.num_hidden_layers; ++li)
      for (const TensorEntry& te : m.index.tensors())
        if (te.name.rfind("layers." + std::to_string(li) + ".attn", 0) == 0 ||
            te.name.rfind("layers." + std::to_string(li) + ".hc_attn_", 0) == 0)
          o.tensor_placement[te.name] = Tier::Gpu;
    o.context = 40;
    o.max_step_tokens = 8;
    o.offload_batch = 2;
    o.gpu = make_sim_gpu({.capacity_bytes = 256 << 20});
    auto lm = load_causal_lm(m, o);
    Device& dev = *o.gpu;
    const uint64_t reserved = dev.workspace_reserved();
    EXPECT_EQ(reserved, device_step_workspace(m.config, {8, 40, largest_expert_bytes(plan_input_from_model(m))}));

    auto s1 = lm->new_sequence(), s2 = lm->new_sequence();
    std::vector<int32_t> p1(40), p2(11);  // p1 fills the context: its last piece is 8 tokens at 40
    for (size_t i = 0; i < p1.size(); ++i) p1[i] = static_cast<int32_t>(3 + 7 * i);
    for (size_t i = 0; i < p2.size(); ++i) p2[i] = static_cast<int32_t>(5 + 11 * i);
    std::vector<float> l1, l2;
    {
      const SequenceStep both[2] = {{s1.get(), p1, &l1, false}, {s2.get(), p2, &l2, false}};
      lm->forward_batch(both);
    }
    while (s2->n_past() < lm->context()) {
      const int32_t b[1] = {static_cast<int32_t>(std::max_element(l2.begin(), l2.end()) - l2.begin())};
      const SequenceStep step{s2.get(), b, &l2, false};
      lm->forward_batch({&step, 1});
    }
    EXPECT_GT(lm->experts().offload_stats().experts, 0);
    EXPECT_GT(dev.copy_lane_seconds(), 0.0);  // the offloaded weights crossed on the copy lane
    EXPECT_EQ(dev.workspace_overflows(), 0u);
    EXPECT_LE(dev.workspace_peak(), reserved);
    EXPECT_GE(dev.workspace_peak(), reserved * 6 / 10) << "the figure is far above what a step takes";
    std::printf("%s: step workspace %llu bytes reserved, %llu at most in use\n", name.c_str(),
                static_cast<unsigned long long>(reserved), static_cast<unsigned long long>(dev.workspace_peak()));
    EXPECT_EQ(dev.used_by_class().at("workspace"), reserved);  // nothing beside it
  }
}

TEST(GpuSim, DeviceTooSmallIsRefusedNamingWhatDidNotFit) {
  test::ScratchDir dir("gpusim-small");
  TinyOptions t;
  const ModelFiles m = open_model(make_tiny_model(t, dir / "v3").path);
  ModelOptions o;
  place(m, o);
  // Too small for the step workspace (then none is reserved), or with room for it and little
  // else (reserved first): the weights are refused either way.
  const uint64_t ws = device_step_workspace(m.config, {o.max_step_tokens, effective_context(m.config, o), 0});
  for (uint64_t capacity : {uint64_t{4096}, ws + 4096}) {
    o.gpu = make_sim_gpu({.capacity_bytes = capacity});
    try {
      (void)load_causal_lm(m, o);
      FAIL() << "loaded onto a device that cannot hold its tier";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("sim-gpu0"), std::string::npos) << msg;
      EXPECT_NE(msg.find("the output head needs"), std::string::npos) << msg;  // the first copied
    }
    EXPECT_EQ(o.gpu->workspace_reserved(), capacity < ws ? 0u : ws);
  }
}

// A bf16 KV cache (--cache-type-k bf16) wherever the attention runs: the device's cores read
// its rows widened as the CPU's do, and the device writes the rows it appends rounded as the
// CPU does, so the logits are the CPU's bit for bit (and not the f32 cache's); the caches of the
// device's layers take about half the device memory.
TEST(GpuSim, Bf16CacheRunsWhereverTheAttentionRuns) {
  test::ScratchDir dir("gpusim-bf16");
  for (const Case& k :
       {Case{Arch::DeepseekV3, false, "hf", "bf16"}, Case{Arch::DeepseekV32, false, "hf", "fp8"},
        Case{Arch::DeepseekV4, false, "hf", "fp4"}}) {
    SCOPED_TRACE(k.name());
    const ModelFiles m = k.make(dir, 11);
    ModelOptions cpu;
    place(m, cpu);
    const std::vector<float> f32 = run(m, cpu);
    cpu.kv_bf16 = true;
    const std::vector<float> want = run(m, cpu);
    EXPECT_FALSE(bit_equal(want, f32));
    uint64_t cache_bytes[2] = {};
    for (bool bf16 : {false, true}) {
      ModelOptions sim = cpu;
      sim.kv_bf16 = bf16;
      sim.gpu = make_sim_gpu({.capacity_bytes = 64 << 20});
      auto lm = load_causal_lm(m, sim);
      {
        auto seq = lm->new_sequence();
        cache_bytes[bf16] = sim.gpu->used_by_class().at("KV cache");
      }
      const std::vector<float> got = run_on(*lm);
      EXPECT_TRUE(bit_equal(got, bf16 ? want : f32));
    }
    EXPECT_LT(cache_bytes[1], cache_bytes[0] * 3 / 5);  // V4's compressors keep f32 state beside the rows
  }
}

TEST(GpuSim, DecodeStepOverlapsCpuAndDevice) {
  // Experts large enough that the CPU's share of a layer (the DRAM-tier experts and the
  // shared expert) takes measurable time; the device's share is paced to a slow memory. The
  // CPU computes on one thread: the simulated device's worker needs a core of its own, as a
  // GPU has its own (this machine may have two).
  configure_compute_arena({.threads = 1});
  struct Restore {
    ~Restore() { configure_compute_arena({}); }  // every hardware thread again, for the tests after
  } restore;
  test::ScratchDir dir("gpusim-overlap");
  TinyOptions t;
  t.config_overrides = {{"hidden_size", 1024}, {"moe_intermediate_size", 2048}};
  const ModelFiles m = open_model(make_tiny_model(t, dir / "v3").path);
  ModelOptions o;
  for (int li = 0; li < m.config.num_hidden_layers; ++li)
    if (m.config.is_moe_layer(li))
      for (int e = 0; e < m.config.n_routed_experts; ++e) o.expert_placement[{li, e}] = e % 2 ? Tier::Gpu : Tier::Dram;
  o.gpu = make_sim_gpu({.capacity_bytes = 256 << 20, .mem_gbps = 1.0, .pcie_gbps = 0});  // ~13 ms per expert
  auto lm = load_causal_lm(m, o);
  std::vector<float> logits;
  lm->forward(kPrompt, logits, false);
  // In every layer pass the CPU begins its share before the device's work has ended: it does
  // not wait for the device first. The device's work takes a paced ~13 ms an expert, so only a
  // CPU thread held off that long between submitting and starting could miss it (a loaded
  // machine: a few attempts). Run serially, no pass could count. How much of the two ran at
  // once depends on when the machine runs the device's thread: printed, not asserted.
  bool overlapped = false;
  for (int attempt = 0; attempt < 5 && !overlapped; ++attempt) {
    const ScheduleStats before = lm->schedule_stats();
    const double dev0 = o.gpu->busy_seconds();
    const double w0 = steady_seconds();
    for (int i = 0; i < 4; ++i) lm->forward(std::vector<int32_t>{static_cast<int32_t>(10 + i)}, logits, false);
    const double wall = steady_seconds() - w0;
    const ScheduleStats s = lm->schedule_stats();
    ASSERT_GT(s.passes, before.passes) << "no decode step had device work";
    const double device = o.gpu->busy_seconds() - dev0, cpu_busy = wall - (s.wait_s - before.wait_s);
    std::printf("4 decode steps: wall %.4f s, CPU busy %.4f s, device busy %.4f s, both busy %.4f s; %lld of %lld "
                "passes began the CPU's share while the device worked\n",
                wall, cpu_busy, device, s.both_s - before.both_s,
                static_cast<long long>(s.host_first - before.host_first), static_cast<long long>(s.passes - before.passes));
    overlapped = s.host_first - before.host_first == s.passes - before.passes;
  }
  EXPECT_TRUE(overlapped);
}

}  // namespace
}  // namespace strata
