// strata bench kernels [--json] [--batch 1,8,64] [--shapes v3,v4]
// Expert-shaped matrix products per weight type, printed next to this machine's DRAM read
// bandwidth and oneDNN BF16 GEMM rate (F32 where oneDNN has no BF16 matmul) measured in the same run.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/machine_limits.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/quantize.h"
#include "cpu-kernels/row_dequant.h"
#include "memory-tier/range_reader.h"
#include "runtime/common/error.h"
#include "tools/cli/commands.h"
#include "tools/cli/disk_timing.h"
#include "tools/cli/kernel_timing.h"

namespace strata::cli {
namespace {

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    try {
      v.push_back(std::stoll(item, &used));
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) throw Error("--batch: '" + item + "' is not a number");
    // Activations and outputs of a batch take batch x 7168 floats each: 65536 tokens is 1.75 GiB.
    if (v.back() < 1 || v.back() > 65536)
      throw Error("--batch: " + item + " tokens; each batch must be 1 to 65536");
  }
  if (v.empty()) throw Error("--batch: no batch size given");
  return v;
}

// An expert shape "HxI" for --shapes: hidden size H and intermediate size I, each a multiple of
// 256 (every weight type's block) from 256 to 65536.
struct ExpertShape {
  int64_t hidden, inter;
};
ExpertShape parse_expert_shape(const std::string& item) {
  const auto bad = [&item](const std::string& why) {
    return Error("--shapes: '" + item + "' " + why + " (expected v3, v4 or HxI, e.g. 2048x768)");
  };
  const size_t x = item.find('x');
  if (x == std::string::npos) throw bad("is not a shape");
  const auto dim = [&](const std::string& part) {
    if (part.empty() || part.size() > 6 || part.find_first_not_of("0123456789") != std::string::npos)
      throw bad("is not a shape");
    const int64_t v = std::stoll(part);
    if (v < 256 || v > 65536 || v % 256 != 0) throw bad("has a size that is not a multiple of 256 from 256 to 65536");
    return v;
  };
  return {dim(item.substr(0, x)), dim(item.substr(x + 1))};
}

// fio's O_DIRECT io_uring sequential read of the same file, block size and queue depth, in
// GB/s; 0 when fio is not installed or fails.
double fio_read_gbps(const std::string& file, uint64_t block, uint32_t qd, uint64_t size) {
  if (std::system("command -v fio >/dev/null 2>&1") != 0) return 0;
  const std::string cmd = "fio --name=strata --filename='" + file + "' --rw=read --bs=" + std::to_string(block) +
                          " --iodepth=" + std::to_string(qd) + " --ioengine=io_uring --direct=1 --size=" +
                          std::to_string(size) + " --output-format=json 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return 0;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, n);
  try {
    const auto j = nlohmann::json::parse(out.substr(std::min(out.find('{'), out.size())));
    return j.at("jobs").at(0).at("read").at("bw_bytes").get<double>() / 1e9;
  } catch (const std::exception&) {
    return 0;
  }
}

void bench_io(const std::string& file, uint64_t create_mb, uint32_t block, uint32_t qd, bool json) {
  namespace fs = std::filesystem;
  if (create_mb > 0) {
    if (!fs::exists(file)) write_random_file(file, create_mb, "--create-mb");
    else if (fs::file_size(file) < create_mb << 20)
      throw Error(file + ": exists and is smaller than --create-mb " + std::to_string(create_mb) +
                  " MiB; strata writes only new files: give a path that does not exist");
  }
  if (!fs::exists(file)) throw Error(file + ": no such file (use --create-mb N to make one)");
  if (fs::file_size(file) < block) throw Error(file + ": smaller than one block of " + std::to_string(block) + " bytes");
  // Alternating runs, best of three each: the drive's own variation hits both alike. One batch
  // over the whole file per run, so the queue never drains.
  SequentialRead best;
  double fio = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const SequentialRead r = time_sequential_read(file, block, qd, 1, UINT64_MAX, 1);
    if (r.gb_per_s > best.gb_per_s) best = r;
    fio = std::max(fio, fio_read_gbps(file, block, qd, r.bytes));
  }
  const uint64_t size = best.bytes;
  const double gbps = best.gb_per_s;
  if (json) {
    std::cout << nlohmann::json{{"file", file},         {"bytes", size},          {"block_size", block},
                                {"queue_depth", qd},    {"backend", best.backend}, {"direct", best.direct},
                                {"gb_per_s", gbps},     {"fio_gb_per_s", fio},    {"ratio_to_fio", fio > 0 ? gbps / fio : 0.0}}
                     .dump(2)
              << "\n";
    return;
  }
  std::printf("%s: %.2f GB read in %u-byte blocks, queue depth %u, %s%s\n", file.c_str(), double(size) / 1e9, block,
              qd, best.backend.c_str(), best.direct ? " + O_DIRECT" : " (page cache: no O_DIRECT here)");
  if (!best.fallback_reason.empty()) std::printf("  (%s)\n", best.fallback_reason.c_str());
  std::printf("strata  %.2f GB/s (best of 3)\n", gbps);
  if (fio > 0) std::printf("fio     %.2f GB/s (best of 3; same file, block size, queue depth; io_uring, direct)  ratio %.1f%%\n", fio, 100 * gbps / fio);
  else std::printf("fio     not installed: no same-run reference\n");
}

}  // namespace

void register_bench(CLI::App& app) {
  static bool json = false;
  static std::string batches = "1,8,64", shapes = "v3,v4", types = "bf16,f16,f32,q8_0,fp8,mxfp4,q4_k,q5_k,q6_k";
  auto* bench = app.add_subcommand("bench", "Benchmarks, printed next to this machine's measured limits");
  auto* k = bench->add_subcommand("kernels", "Expert-shaped products per weight type vs DRAM bandwidth and oneDNN BF16");
  k->add_flag("--json", json, "Print rows as JSON");
  k->add_option("--batch", batches, "Comma-separated batch sizes (tokens)");
  k->add_option("--shapes", shapes, "v3 (7168->2048->7168), v4 (4096->2048->4096) and/or HxI (an expert of hidden size H, intermediate I; multiples of 256)");
  k->add_option("--types", types, "Comma-separated weight types");
  k->add_flag_callback(
      "--exact-dot",
      [] {
        set_int_dot(false);
        set_gemm_bf16(false);
      },
      "Small batches widen integer/FP4 weights to f32 instead of the integer dot; batched products in f32");
  static std::string io_file;
  static uint64_t create_mb = 0;
  static uint32_t io_block = 1u << 20, io_qd = 32;
  static bool io_json = false;
  auto* io = bench->add_subcommand("io", "O_DIRECT sequential read throughput of a file, next to fio's");
  io->add_option("--file", io_file, "File to read (on the drive to measure)")->required();
  io->add_option("--create-mb", create_mb, "Create the file first (a new file) with this many MiB")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  io->add_option("--block-size", io_block, "Bytes per read (multiple of 4096)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            const unsigned long long b = std::strtoull(v.c_str(), nullptr, 10);
            return b > 0 && b % 4096 == 0 && b <= (1ull << 30) ? "" : v + " is not a multiple of 4096 from 4096 to 1 GiB";
          },
          "BYTES"));
  io->add_option("--queue-depth", io_qd, "Reads in flight")->check(CLI::Range(1u, 4096u));
  io->add_flag("--json", io_json, "Print the result as JSON");
  io->callback([] { bench_io(io_file, create_mb, io_block, io_qd, io_json); });
  register_bench_tier(bench);
  register_bench_moe(bench);
  register_bench_run(bench);
  register_bench_gpu(bench);
  bench->require_subcommand(1);
  k->callback([] {
    const std::vector<int64_t> bs = parse_list(batches);
    std::string item_of_shapes;
    // DRAM is probed before and after the rows; they are judged against the higher reading (a
    // shared or throttling machine's bandwidth moves during a run, and a probe that came out low
    // would flatter every ratio).
    const double bw_start = measure_read_bandwidth_gbps();
    const GemmRate gemm = measure_onednn_gemm();
    const double peak = gemm.gflops;
    struct Shape {
      std::string name;
      int64_t rows, cols;
    };
    std::vector<Shape> sh;
    const auto add_expert = [&sh](const std::string& tag, int64_t hidden, int64_t inter) {
      const std::string h = std::to_string(hidden), i = std::to_string(inter);
      sh.push_back({tag + "up " + h + "->" + i, inter, hidden});
      sh.push_back({tag + "down " + i + "->" + h, hidden, inter});
    };
    for (std::stringstream ss(shapes); std::getline(ss, item_of_shapes, ',');) {
      if (item_of_shapes == "v3") {
        add_expert("v3 ", 7168, 2048);
      } else if (item_of_shapes == "v4") {
        add_expert("v4 ", 4096, 2048);
      } else {
        const ExpertShape e = parse_expert_shape(item_of_shapes);
        add_expert("", e.hidden, e.inter);
      }
    }
    if (sh.empty()) throw Error("--shapes: no shape given");
    if (types.find_first_not_of(", ") == std::string::npos) throw Error("--types: no weight type given");
    struct Timed {
      std::string type, shape;
      int64_t batch, rows, cols;
      uint64_t bytes;
      double t, in_cache;  // in_cache: batch 1 only, else 0
      std::string path;
    };
    std::vector<Timed> timed;
    std::mt19937 g(1);
    std::normal_distribution<float> nd(0, 1);
    std::stringstream ts(types);
    std::string type;
    while (std::getline(ts, type, ',')) {
      if (type != "fp8" && type != "mxfp4" && !weight_type_from_name(type) && !is_tiled_name(type))
        throw Error("--types: unknown type '" + type + "'");
      if (!json) std::fprintf(stderr, "timing %s ...\n", type.c_str());
      for (const Shape& s : sh) {
        std::vector<float> src(static_cast<size_t>(s.rows * s.cols));
        for (float& v : src) v = nd(g);
        const Stored w = quantize(type, src, s.rows, s.cols);
        const Copies copies = spread(w);
        for (int64_t b : bs) {
          std::vector<float> x(static_cast<size_t>(b * s.cols), 0.5f), y(static_cast<size_t>(b * s.rows));
          const double t = time_linear(copies, x, b, y);
          const char* path = linear_path_name(linear_path(w.view, s.rows, b));  // the kernel that ran
          timed.push_back({type, s.name, b, s.rows, s.cols, w.bytes, t, b == 1 ? in_cache_gbps(w, x) : 0.0, path});
        }
      }
    }
    const double bw_end = measure_read_bandwidth_gbps(), bw = std::max(bw_start, bw_end);
    if (!json) {
      std::printf("dispatch %s; DRAM read bandwidth %.1f GB/s (probed before and after the rows: %.1f, %.1f); "
                  "oneDNN %s GEMM %.1f GFLOP/s (measured now)\n",
                  std::string(cpu_level_name(dispatch_level())).c_str(), bw, bw_start, bw_end, gemm.type.c_str(), peak);
      if (!gemm.note.empty()) std::printf("note: %s\n", gemm.note.c_str());
      std::printf("batches of %lld+ tokens (path gemm; %lld+ for the integer-dot types%s): weight panels widened to %s "
                  "for oneDNN\n",
                  static_cast<long long>(gemm_min_batch()), static_cast<long long>(int_dot_gemm_min_batch()),
                  int_dot_gemm_min_batch(WeightType::Q4_K) == INT64_MAX ? ", never for the K-quants, Q8_0, IQ4_XS and MXFP4: 16-row tiles" : "",
                  gemm_type_name());
      std::printf("batch 1 also on 8 MiB of rows that stay in the last-level cache (cache GB/s): the kernel's own speed\n");
      std::printf("%-7s %-20s %6s %10s %9s %11s %7s  %-7s %-5s %s\n", "type", "shape", "batch", "us", "GB/s", "GFLOP/s",
                  "ratio", "bound", "path", "cache GB/s");
    }
    nlohmann::json rows = nlohmann::json::array();
    for (const Timed& r : timed) {
      const double flop = 2.0 * r.rows * r.cols * r.batch;
      const double gbps = double(r.bytes) / r.t / 1e9, gflops = flop / r.t / 1e9;
      // The limit that bounds this row: bytes at DRAM bandwidth or flops at the oneDNN rate.
      const double t_mem = double(r.bytes) / (bw * 1e9), t_flop = flop / (peak * 1e9);
      const double ratio = std::max(t_mem, t_flop) / r.t;
      const char* bound = t_mem >= t_flop ? "memory" : "compute";
      nlohmann::json row = {{"type", r.type}, {"shape", r.shape}, {"batch", r.batch}, {"us", r.t * 1e6},
                            {"gb_per_s", gbps}, {"gflop_per_s", gflops}, {"ratio", ratio}, {"bound", bound},
                            {"path", r.path}};
      std::string cached;
      if (r.batch == 1) {
        row["in_cache_gb_per_s"] = r.in_cache;
        cached = std::to_string(static_cast<int>(r.in_cache + 0.5));
      }
      rows.push_back(row);
      if (!json)
        std::printf("%-7s %-20s %6lld %10.1f %9.2f %11.2f %6.1f%%  %-7s %-5s %s\n", r.type.c_str(), r.shape.c_str(),
                    static_cast<long long>(r.batch), r.t * 1e6, gbps, gflops, 100 * ratio, bound, r.path.c_str(),
                    cached.c_str());
    }
    if (json)
      std::cout << nlohmann::json{{"dispatch", std::string(cpu_level_name(dispatch_level()))},
                                  {"dram_read_gb_per_s", bw},
                                  {"dram_read_gb_per_s_start", bw_start},
                                  {"dram_read_gb_per_s_end", bw_end},
                                  {"onednn_gemm_gflop_per_s", peak},
                                  {"onednn_gemm_type", gemm.type},
                                  {"batched_products_type", gemm_type_name()},
                                  {"rows", rows}}
                       .dump(2)
                << "\n";
  });
}

}  // namespace strata::cli
