// strata tune [--out FILE] [--scratch PATH] [--scratch-mb N] [--name NAME]
// Measures the box it runs on and writes a hardware profile (source "measured"): hwloc
// topology, DRAM read bandwidth, io_uring O_DIRECT reads of a scratch file over block sizes
// and queue depths, CPU matrix-vector rates per weight type (and from how many tokens the
// integer-dot tiles beat the row kernels: cpu.tiles_min_batch) and the oneDNN GEMM rate,
// and, with CUDA and a device, GPU memory and the host-to-device PCIe rate.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/machine_limits.h"
#include "memory-tier/hardware_profile.h"
#include "memory-tier/range_reader.h"
#include "memory-tier/topology.h"
#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "tools/cli/commands.h"
#include "tools/cli/disk_timing.h"
#include "tools/cli/kernel_timing.h"
#ifdef STRATA_HAVE_CUDA
#include "gpu-kernels/smoke.h"
#include "gpu-kernels/transfer.h"
#endif

namespace strata::cli {
namespace {

class Progress {
 public:
  explicit Progress(int steps) : steps_(steps) {}
  void step(const std::string& what) {
    ++done_;
    const int width = 30, filled = width * (done_ - 1) / steps_;
    std::fprintf(stderr, "\r[%s%s] %d/%d %-48s", std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(width - filled), '.').c_str(), done_, steps_, what.c_str());
    std::fflush(stderr);
  }
  void finish() { std::fprintf(stderr, "\r[%s] done%-60s\n", std::string(30, '#').c_str(), ""); }

 private:
  int steps_, done_ = 0;
};

}  // namespace

void register_tune(CLI::App& app) {
  static std::string out, scratch = "strata-tune.bin", name = "measured";
  static uint64_t scratch_mb = 1024;
  auto* cmd = app.add_subcommand("tune", "Measure this box and write a hardware profile for strata plan / run");
  cmd->add_option("--out", out, "Profile to write (default: print it)");
  cmd->add_option("--scratch", scratch, "Scratch file on the drive that will hold the weights (deleted after)")
      ->capture_default_str();
  cmd->add_option("--scratch-mb", scratch_mb, "Size of the scratch file, MiB")->capture_default_str()->check(CLI::Range(16, 1 << 20));
  cmd->add_option("--name", name, "Profile name")->capture_default_str();
  cmd->callback([] {
    // Before minutes of measuring: the scratch file must be new, the output writable.
    if (std::filesystem::exists(scratch))
      throw Error("--scratch " + scratch + ": exists; a scratch file must be new (it is overwritten and deleted)");
    if (!out.empty()) {
      // An existing --out is replaced (atomically, as every output), never by the scratch file
      // that is deleted after the measurement.
      check_output_path(out, "--out");
      if (std::filesystem::weakly_canonical(out) == std::filesystem::weakly_canonical(scratch))
        throw Error("--out " + out + ": the same file as --scratch (which is deleted after the measurement)");
    }
    const std::vector<uint32_t> blocks = {128u << 10, 1u << 20, 4u << 20};
    const std::vector<uint32_t> depths = {8, 32, 64};
    const std::vector<std::string> types = {"bf16", "q8_0", "fp8", "mxfp4", "q4_k", "q5_k", "q6_k", "q3_k", "q2_k", "iq4_xs", "iq2_xxs", "iq1_s"};
    Progress bar(4 + static_cast<int>(blocks.size() * depths.size() + types.size()) + 1);
    HardwareProfile p;
    p.name = name;
    p.source = "measured";
    nlohmann::json measured;

    bar.step("topology (hwloc)");
    Topology topo;
    try {
      topo = probe_topology();
    } catch (const std::runtime_error& e) {
      throw Error(std::string("tune: ") + e.what());
    }
    p.cpu_model = topo.cpu_model;
    p.cores = topo.cores;
    p.threads = topo.threads;
    p.numa_nodes = std::max<int>(1, static_cast<int>(topo.numa.size()));
    // Several nodes: spread the tier's buffers so every node's memory channels serve them.
    p.numa_policy = p.numa_nodes > 1 ? NumaPolicy::Interleave : NumaPolicy::Default;
    // ... and compute each routed expert on the node that holds it.
    p.numa_split = p.numa_nodes > 1;
    p.isa = std::string(cpu_level_name(dispatch_level()));
    p.dram_gb = static_cast<double>(topo.total_memory_bytes) / 1e9;
    p.dram_headroom_gb = std::max(2.0, 0.1 * p.dram_gb);  // OS, page cache, activations

    bar.step("DRAM read bandwidth");
    p.dram_read_gbps = measure_read_bandwidth_gbps();
    bar.step("oneDNN GEMM");
    const GemmRate gemm = measure_onednn_gemm();
    measured["onednn_gemm_gflop_per_s"] = gemm.gflops;
    measured["onednn_gemm_type"] = gemm.type;

    bar.step("scratch file");
    const std::filesystem::path sp = scratch;
    write_random_file(sp, scratch_mb, "--scratch");
    const RemoveOnSignal interrupted(sp);  // deleted after, also when the measurement is interrupted
    struct Cleanup {
      std::filesystem::path p;
      ~Cleanup() {
        std::error_code ec;
        std::filesystem::remove(p, ec);
      }
    } cleanup{sp};
    nlohmann::json io = nlohmann::json::array();
    std::string backend;
    double best = 0;
    for (uint32_t b : blocks)
      for (uint32_t qd : depths) {
        bar.step("disk read, block " + std::to_string(b >> 10) + " KiB, queue depth " + std::to_string(qd));
        const SequentialRead rd = time_sequential_read(sp, b, qd, 1, UINT64_MAX, 2);
        const double g = rd.gb_per_s;
        backend = rd.backend + (rd.direct ? " + O_DIRECT" : "");
        io.push_back({{"block_size", b}, {"queue_depth", qd}, {"gb_per_s", g}});
        if (g > best) best = g, p.nvme_queue_depth = static_cast<int>(qd);
      }
    p.nvme_read_gbps = best;
    p.nvme_paths = {std::filesystem::absolute(sp).parent_path().string()};
    measured["disk_reads"] = io;
    measured["disk_backend"] = backend;

    nlohmann::json gemv = nlohmann::json::object(), tiles = nlohmann::json::object();
    for (const std::string& t : types) {
      bar.step("CPU GEMV " + t + " 7168->2048, and where its tiles overtake the row kernels");
      std::vector<float> src(2048 * 7168);
      std::mt19937 g(1);
      std::normal_distribution<float> nd(0, 1);
      for (float& v : src) v = nd(g);
      const Stored w = quantize(t, src, 2048, 7168);
      const Copies c = spread(w);
      std::vector<float> x(7168, 0.5f), y(2048);
      gemv[t] = double(w.bytes) / time_linear(c, x, 1, y) / 1e9;
      // Where the tiles overtake the row kernels on this box (the run applies it from the
      // profile, cpu.tiles_min_batch).
      const TilesCrossover tc = measure_tiles_crossover(c, {2, 3, 4, 6, 8, 12, 16, 24});
      if (tc.points.empty()) continue;
      nlohmann::json pts = nlohmann::json::array();
      for (const auto& pt : tc.points) pts.push_back({{"batch", pt.batch}, {"rows_us", pt.rows_s * 1e6}, {"tiles_us", pt.tiles_s * 1e6}});
      tiles[t] = {{"min_batch", tc.min_batch}, {"times", pts}};
      p.tiles_min_batch[t] = tc.min_batch;
    }
    measured["cpu_gemv_gb_per_s"] = gemv;
    if (!tiles.empty()) measured["cpu_tiles_crossover"] = tiles;

    bar.step("GPU");
#ifdef STRATA_HAVE_CUDA
    std::string why;
    for (const auto& d : gpu::list_devices(&why)) {
      GpuSpec g;
      g.name = d.name;
      g.vram_gb = static_cast<double>(d.total_memory) / 1e9;
      g.sm = "sm_" + std::to_string(d.sm_major) + std::to_string(d.sm_minor);
      p.gpus.push_back(g);
      p.vram_gb += g.vram_gb;
      const double h2d = gpu::measure_h2d_gbps(d.index, size_t{256} << 20, 5, &why);
      p.pcie_h2d_gbps = p.pcie_h2d_gbps > 0 ? std::min(p.pcie_h2d_gbps, h2d) : h2d;
    }
    if (p.gpus.empty()) measured["gpu"] = "none: " + why;
    p.vram_headroom_gb = p.vram_gb > 0 ? 1.5 : 0;
#else
    measured["gpu"] = "not measured: built without CUDA";
#endif
    bar.finish();
    p.description = topo.cpu_model + ", " + std::to_string(topo.cores) + " cores, measured by strata tune";

    nlohmann::json j = profile_json(p);
    j["measured"] = measured;
    parse_profile(j, "tune");  // what we write must load
    const std::string text = j.dump(2) + "\n";
    if (out.empty()) {
      std::cout << text;
      return;
    }
    write_output_file(out, "// Measured by strata tune on this box.\n" + text, "--out");
    load_profile(out);
    std::printf("wrote %s: DRAM %.1f GB at %.1f GB/s, disk %.2f GB/s (queue depth %d), %zu GPU(s), %d NUMA node(s), "
                "policy %s\n",
                out.c_str(), p.dram_gb, p.dram_read_gbps, p.nvme_read_gbps, p.nvme_queue_depth, p.gpus.size(),
                p.numa_nodes, std::string(numa_policy_name(p.numa_policy)).c_str());
  });
}

}  // namespace strata::cli
