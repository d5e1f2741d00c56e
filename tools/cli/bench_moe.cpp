// strata bench moe [--type q4_k] [--experts 256] [--top-k 8] [--tokens 32] [--json]
// One MoE layer at DeepSeek-V3 size with its experts in DRAM: every expert's gate, up and down
// matrices (7168 -> 2048 -> 7168) stored as --type, distinct copies in memory, and for each
// decoded token top-k experts drawn at random (seeded) run as the spine runs them. Prints the
// decode latency per token and the weight bandwidth it implies next to the DRAM read bandwidth
// measured in the same run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/machine_limits.h"
#include "memory-tier/host_memory.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"
#include "runtime/backend/device.h"
#include "tools/cli/commands.h"
#include "tools/cli/kernel_timing.h"

namespace strata::cli {

void register_bench_moe(CLI::App* bench) {
  static std::string type = "q4_k";
  static int experts = 256, top_k = 8, tokens = 32;
  static bool json = false, sequential = false, numa_split = false;
  auto* m = bench->add_subcommand("moe", "A DeepSeek-V3-sized MoE layer (experts in DRAM): decode latency per token");
  m->add_option("--type", type, "Weight type of the experts")->capture_default_str();
  m->add_option("--experts", experts, "Routed experts in the layer")->capture_default_str()->check(CLI::Range(1, 4096));
  m->add_option("--top-k", top_k, "Experts per token")->capture_default_str()->check(CLI::Range(1, 64));
  m->add_option("--tokens", tokens, "Decoded tokens timed")->capture_default_str()->check(CLI::Range(1, 100000));
  m->add_flag("--json", json, "Print the result as JSON");
  m->add_flag("--sequential", sequential, "Run the token's experts one after another (default: as one parallel job, as the spine does)");
  m->add_flag("--numa-split", numa_split,
              "One compute arena per NUMA node, each expert held and computed by its home node (as `run --numa-split`)");
  m->callback([] {
    int nodes = 1;
    if (numa_split) {
      ArenaOptions o;
      o.numa_split = true;
      const ArenaInfo info = configure_compute_arena(o);
      nodes = info.nodes;
      if (!json && !info.note.empty()) std::printf("note: %s\n", info.note.c_str());
    }
    if (top_k > experts) throw Error("bench moe: --top-k " + std::to_string(top_k) + " exceeds --experts");
    constexpr int64_t d = 7168, inter = 2048;
    std::mt19937 g(5);
    std::normal_distribution<float> nd(0, 0.02f);
    std::vector<float> up(static_cast<size_t>(inter * d)), down(static_cast<size_t>(d * inter));
    for (float& v : up) v = nd(g);
    for (float& v : down) v = nd(g);
    const Stored w_up = quantize(type, up, inter, d), w_down = quantize(type, down, d, inter);
    const uint64_t expert_bytes = 2 * w_up.bytes + w_down.bytes;
    const uint64_t total = expert_bytes * static_cast<uint64_t>(experts);
    const uint64_t phys = physical_memory_bytes();
    if (total > phys / 10 * 7)
      throw Error("bench moe: " + std::to_string(experts) + " experts of " + human_bytes(expert_bytes) + " need " +
                  human_bytes(total) + ", more than 70% of this machine's " + human_bytes(phys) +
                  " (use --experts N)");
    // Distinct copies of every matrix (and its scales), so each expert streams from DRAM; one
    // buffer per expert from the memory tier's allocator (huge pages, NUMA policy), as the
    // experts a run fixes in DRAM get.
    struct Copy {
      uint8_t* buf = nullptr;
      size_t bytes = 0;
      Mlp mlp;
    };
    std::vector<Copy> pool(static_cast<size_t>(experts));
    const size_t copy_bytes = 2 * (w_up.data.size() + w_up.scale.size()) + w_down.data.size() + w_down.scale.size();
    struct Free {
      std::vector<Copy>& pool;
      ~Free() {
        for (Copy& c : pool)
          if (c.buf) host_free(c.buf, c.bytes);
      }
    } free_pool{pool};
    for (size_t e = 0; e < pool.size(); ++e) {
      Copy& c = pool[e];
      c.bytes = copy_bytes;
      const HostMemoryOptions mem = bound_to_node({}, compute_node_os_index(expert_home_node(static_cast<int>(e))));
      c.buf = static_cast<uint8_t*>(host_alloc(copy_bytes, mem));
      size_t at = 0;
      auto place = [&](const Stored& st) {
        WeightView v = st.view;
        std::copy(st.data.begin(), st.data.end(), c.buf + at);
        v.data = c.buf + at;
        at += st.data.size();
        v.scale = nullptr;
        if (!st.scale.empty()) {
          std::copy(st.scale.begin(), st.scale.end(), c.buf + at);
          v.scale = c.buf + at;
          at += st.scale.size();
        }
        return v;
      };
      const WeightView w1 = place(w_up), w2 = place(w_down), w3 = place(w_up);
      c.mlp = {w1, w2, w3};
    }
    const double bw_start = measure_read_bandwidth_gbps();  // and again after the tokens (bench kernels)
    std::vector<float> x(static_cast<size_t>(d), 0.01f), acc(static_cast<size_t>(d));
    std::vector<std::vector<float>> y(static_cast<size_t>(top_k), std::vector<float>(static_cast<size_t>(d)));
    std::vector<int> ids(static_cast<size_t>(experts));
    for (int i = 0; i < experts; ++i) ids[static_cast<size_t>(i)] = i;
    auto token = [&] {
      std::shuffle(ids.begin(), ids.end(), g);
      std::vector<MlpJob> jobs;
      for (int j = 0; j < top_k; ++j) {
        const int e = ids[static_cast<size_t>(j)];
        jobs.push_back({&pool[static_cast<size_t>(e)].mlp, x.data(), 1, y[static_cast<size_t>(j)].data(), expert_home_node(e)});
      }
      if (sequential)
        for (const MlpJob& job : jobs) host_device()->ops().mlp_batch({&job, 1}, 0);
      else
        host_device()->ops().mlp_batch(jobs, 0);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int j = 0; j < top_k; ++j)
        for (int64_t i = 0; i < d; ++i) acc[static_cast<size_t>(i)] += 0.1f * y[static_cast<size_t>(j)][static_cast<size_t>(i)];
    };
    for (int w = 0; w < 2; ++w) token();  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < tokens; ++t) token();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / tokens;
    const double bytes = double(expert_bytes) * top_k, gbps = bytes / s / 1e9;
    const double bw_end = measure_read_bandwidth_gbps(), bw = std::max(bw_start, bw_end);
    if (json) {
      std::cout << nlohmann::json{{"type", type},           {"experts", experts},     {"top_k", top_k},
                                  {"expert_bytes", expert_bytes}, {"ms_per_token", 1e3 * s}, {"sequential", sequential}, {"numa_nodes", nodes}, {"gb_per_s", gbps},
                                  {"dram_read_gb_per_s", bw}, {"dram_read_gb_per_s_start", bw_start},
                                  {"dram_read_gb_per_s_end", bw_end}, {"ratio", gbps / bw}}
                       .dump(2)
                << "\n";
      return;
    }
    std::printf("MoE layer: %d experts of 7168->2048->7168 %s (%s each, %s in DRAM), top-%d, batch 1, %s%s\n", experts,
                type.c_str(), human_bytes(expert_bytes).c_str(), human_bytes(total).c_str(), top_k,
                sequential ? "experts one after another" : "experts as one parallel job",
                nodes > 1 ? (", experts split over " + std::to_string(nodes) + " NUMA nodes").c_str() : "");
    std::printf("decode: %.2f ms per token per layer; %s of weights per token = %.1f GB/s, %.1f%% of the DRAM read "
                "bandwidth (%.1f GB/s, the higher of %.1f and %.1f probed before and after)\n",
                1e3 * s, human_bytes(static_cast<uint64_t>(bytes)).c_str(), gbps, 100 * gbps / bw, bw, bw_start, bw_end);
  });
}

}  // namespace strata::cli
