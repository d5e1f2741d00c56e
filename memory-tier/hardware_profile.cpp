#include "memory-tier/hardware_profile.h"

#include <fstream>
#include <stdexcept>
#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/common/json_file.h"

namespace strata {
namespace {

struct Reader {
  const nlohmann::json& root;
  const std::string& file;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(file + ": key '" + key + "': " + what);
  }
  const nlohmann::json& at(const nlohmann::json& obj, const std::string& path, const std::string& key) const {
    if (!obj.is_object() || !obj.contains(key)) fail(path + key, "missing");
    return obj.at(key);
  }
  double at_least(const nlohmann::json& obj, const std::string& path, const std::string& key, double min) const {
    const auto& v = at(obj, path, key);
    if (!v.is_number()) fail(path + key, "expected a number, got " + std::string(v.type_name()));
    const double d = v.get<double>();
    if (d < min) fail(path + key, "must be >= " + std::to_string(min) + ", got " + std::to_string(d));
    return d;
  }
  // Sizes (GB), rates (GB/s, TFLOP/s): at most kMaxQuantity, so bytes computed from them fit
  // in 64 bits (1e300 GB would turn into a budget of 0 bytes).
  static constexpr double kMaxQuantity = 1e6;
  double number(const nlohmann::json& obj, const std::string& path, const std::string& key, double min) const {
    const double d = at_least(obj, path, key, min);
    if (d > kMaxQuantity)
      fail(path + key,
           "must be at most 1e6 (a petabyte, or a petabyte per second), got " + at(obj, path, key).dump());
    return d;
  }
  // A whole number in [min, max] (counts: cores, threads, NUMA nodes, queue depth, a threshold).
  int count(const nlohmann::json& obj, const std::string& path, const std::string& key, int min, int max) const {
    const double d = at_least(obj, path, key, min);
    if (d > max || d != static_cast<double>(static_cast<int64_t>(d)))
      fail(path + key, "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) + ", got " +
                           at(obj, path, key).dump());
    return static_cast<int>(d);
  }
  std::string string(const nlohmann::json& obj, const std::string& path, const std::string& key) const {
    const auto& v = at(obj, path, key);
    if (!v.is_string()) fail(path + key, "expected a string, got " + std::string(v.type_name()));
    return v.get<std::string>();
  }
};

}  // namespace

static HardwareProfile parse_profile_fields(const nlohmann::json& j, const std::string& file) {
  const Reader r{j, file};
  if (!j.is_object()) throw Error(file + ": a profile is a JSON object");
  HardwareProfile p;
  p.name = r.string(j, "", "name");
  p.description = j.value("description", "");
  p.source = j.value("source", "specification");
  const auto& gpus = r.at(j, "", "gpus");
  if (!gpus.is_array()) r.fail("gpus", "expected an array");
  for (size_t i = 0; i < gpus.size(); ++i) {
    const std::string path = "gpus[" + std::to_string(i) + "].";
    GpuSpec g;
    g.name = r.string(gpus[i], path, "name");
    g.vram_gb = r.number(gpus[i], path, "vram_gb", 0);
    g.mem_bandwidth_gbps = r.number(gpus[i], path, "mem_bandwidth_gbps", 0);
    g.bf16_tflops = r.number(gpus[i], path, "bf16_tflops", 0);
    g.sm = gpus[i].value("sm", "");
    p.gpus.push_back(g);
  }
  const auto& b = r.at(j, "", "budgets");
  p.vram_gb = r.number(b, "budgets.", "vram_gb", 0);
  p.vram_headroom_gb = r.number(b, "budgets.", "vram_headroom_gb", 0);
  p.dram_gb = r.number(b, "budgets.", "dram_gb", 0);
  p.dram_headroom_gb = r.number(b, "budgets.", "dram_headroom_gb", 0);
  const auto& bw = r.at(j, "", "bandwidth");
  p.dram_read_gbps = r.number(bw, "bandwidth.", "dram_read_gbps", 0);
  p.pcie_h2d_gbps = r.number(bw, "bandwidth.", "pcie_h2d_gbps", 0);
  p.nvme_read_gbps = r.number(bw, "bandwidth.", "nvme_read_gbps", 0);
  p.nvme_queue_depth = r.count(bw, "bandwidth.", "nvme_queue_depth", 1, 65536);
  const auto& cpu = r.at(j, "", "cpu");
  p.cpu_model = cpu.value("model", "");
  p.cores = r.count(cpu, "cpu.", "cores", 1, 1 << 20);
  p.threads = r.count(cpu, "cpu.", "threads", 1, 1 << 20);
  p.isa = r.string(cpu, "cpu.", "isa");
  p.numa_nodes = r.count(cpu, "cpu.", "numa_nodes", 1, 1024);
  if (cpu.contains("numa_policy")) {
    const std::string name = r.string(cpu, "cpu.", "numa_policy");
    const auto pol = numa_policy_from_name(name);
    if (!pol) r.fail("cpu.numa_policy", "must be interleave, bind or local, got '" + name + "'");
    p.numa_policy = *pol;
  }
  if (cpu.contains("numa_node")) {
    if (p.numa_policy != NumaPolicy::Bind) r.fail("cpu.numa_node", "is only read with cpu.numa_policy \"bind\"");
    const auto& v = cpu.at("numa_node");
    if (!v.is_number_integer()) r.fail("cpu.numa_node", "expected a whole number, got " + v.dump());
    p.numa_node = v.get<int>();
    if (p.numa_node < 0 || p.numa_node >= p.numa_nodes)
      r.fail("cpu.numa_node", "is " + std::to_string(p.numa_node) + " but the profile has " +
                                  std::to_string(p.numa_nodes) + " NUMA node(s) (cpu.numa_nodes)");
  }
  for (auto [key, out] : {std::pair{"numa_split", &p.numa_split}, std::pair{"pin_threads", &p.pin_threads}}) {
    if (!cpu.contains(key)) continue;
    const auto& v = cpu.at(key);
    if (!v.is_boolean()) r.fail(std::string("cpu.") + key, "expected true or false, got " + v.dump());
    *out = v.get<bool>();
  }
  if (cpu.contains("tiles_min_batch")) {
    const auto& v = cpu.at("tiles_min_batch");
    if (!v.is_object()) r.fail("cpu.tiles_min_batch", "expected an object of weight type: tokens, got " + v.dump());
    for (const auto& [type, n] : v.items()) {
      if (!n.is_number_integer() || n.get<int64_t>() < 1 || n.get<int64_t>() > 65536)
        r.fail("cpu.tiles_min_batch." + type, "expected a whole number of tokens from 1 to 65536, got " + n.dump());
      p.tiles_min_batch[type] = n.get<int64_t>();
    }
  }
  p.gpu_offload_batch_threshold = r.count(j, "", "gpu_offload_batch_threshold", 0, 1 << 24);
  if (j.contains("nvme_paths")) {
    const auto& v = j["nvme_paths"];
    if (!v.is_array()) r.fail("nvme_paths", "expected an array of paths, got " + std::string(v.type_name()));
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) r.fail("nvme_paths[" + std::to_string(i) + "]", "expected a path (a string)");
      p.nvme_paths.push_back(v[i].get<std::string>());
    }
  }

  if (p.isa != "avx512" && p.isa != "avx2" && p.isa != "scalar")
    r.fail("cpu.isa", "must be avx512, avx2 or scalar, got '" + p.isa + "'");
  if (p.vram_headroom_gb > p.vram_gb) r.fail("budgets.vram_headroom_gb", "exceeds budgets.vram_gb");
  if (p.dram_headroom_gb >= p.dram_gb) r.fail("budgets.dram_headroom_gb", "leaves no DRAM (>= budgets.dram_gb)");
  if (p.vram_gb > 0 && p.gpus.empty()) r.fail("budgets.vram_gb", "is set but the profile lists no GPU");
  if (p.dram_read_gbps <= 0) r.fail("bandwidth.dram_read_gbps", "must be > 0");
  if (p.nvme_read_gbps <= 0) r.fail("bandwidth.nvme_read_gbps", "must be > 0");
  for (size_t i = 0; i < p.gpus.size(); ++i)
    if (p.gpus[i].mem_bandwidth_gbps <= 0) r.fail("gpus[" + std::to_string(i) + "].mem_bandwidth_gbps", "must be > 0");
  if (!p.gpus.empty() && p.pcie_h2d_gbps <= 0) r.fail("bandwidth.pcie_h2d_gbps", "must be > 0 when the profile lists a GPU");
  if (p.threads < p.cores) r.fail("cpu.threads", "fewer than cpu.cores");
  return p;
}

HardwareProfile load_profile(const std::filesystem::path& path, std::string_view flag) {
  const std::string text = read_input_file(path, "profile", uint64_t{16} << 20, flag);
  const nlohmann::json j = parse_json_bounded(text, input_name(path, flag), /*comments=*/true);
  return parse_profile(j, input_name(path, flag));
}

HardwareProfile find_profile(const std::string& name_or_path, const std::filesystem::path& profiles_dir) {
  if (std::filesystem::exists(name_or_path)) return load_profile(name_or_path, "--profile");
  const auto p = profiles_dir / (name_or_path + ".json");
  if (!std::filesystem::exists(p))
    throw Error("--profile: no profile '" + name_or_path + "' (neither a file nor " + p.string() + ")");
  return load_profile(p);
}

HostMemoryOptions host_memory_options(const HardwareProfile& p) {
  HostMemoryOptions o;
  o.numa = p.numa_policy;
  o.bind_node = p.numa_node;
  return o;
}

nlohmann::json profile_json(const HardwareProfile& p) {
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : p.gpus)
    gpus.push_back({{"name", g.name},
                    {"vram_gb", g.vram_gb},
                    {"mem_bandwidth_gbps", g.mem_bandwidth_gbps},
                    {"bf16_tflops", g.bf16_tflops},
                    {"sm", g.sm}});
  nlohmann::json cpu = {{"model", p.cpu_model},
                        {"cores", p.cores},
                        {"threads", p.threads},
                        {"isa", p.isa},
                        {"numa_nodes", p.numa_nodes},
                        {"numa_policy", numa_policy_name(p.numa_policy)}};
  if (p.numa_policy == NumaPolicy::Bind) cpu["numa_node"] = p.numa_node;
  if (p.numa_split) cpu["numa_split"] = true;
  if (p.pin_threads) cpu["pin_threads"] = true;
  if (!p.tiles_min_batch.empty()) cpu["tiles_min_batch"] = p.tiles_min_batch;
  return {{"name", p.name},
          {"description", p.description},
          {"source", p.source},
          {"gpus", gpus},
          {"budgets",
           {{"vram_gb", p.vram_gb},
            {"vram_headroom_gb", p.vram_headroom_gb},
            {"dram_gb", p.dram_gb},
            {"dram_headroom_gb", p.dram_headroom_gb}}},
          {"bandwidth",
           {{"dram_read_gbps", p.dram_read_gbps},
            {"pcie_h2d_gbps", p.pcie_h2d_gbps},
            {"nvme_read_gbps", p.nvme_read_gbps},
            {"nvme_queue_depth", p.nvme_queue_depth}}},
          {"cpu", cpu},
          {"gpu_offload_batch_threshold", p.gpu_offload_batch_threshold},
          {"nvme_paths", p.nvme_paths}};
}

// A value of the wrong JSON type deep in the reading (nlohmann's type errors name no file) is
// reported with the file.
HardwareProfile parse_profile(const nlohmann::json& j, const std::string& file) {
  try {
    return parse_profile_fields(j, file);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": a value has the wrong JSON type: " + e.what());
  }
}

}  // namespace strata
