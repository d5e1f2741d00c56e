#include <gtest/gtest.h>

#include <map>
#include <string>

#include "memory-tier/hardware_profile.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

const std::filesystem::path kProfiles = std::filesystem::path(STRATA_SOURCE_DIR) / "profiles";

TEST(HardwareProfile, ShippedProfilesLoad) {
  for (const char* name : {"rtx4090-256gb", "rtx3090-128gb", "rtx5090-256gb", "dual-rtx4090-256gb", "cpu-only-128gb"}) {
    const HardwareProfile p = find_profile(name, kProfiles);
    EXPECT_EQ(p.name, name);
    EXPECT_EQ(p.source, "specification");
    EXPECT_GT(p.dram_read_gbps, 0);
    EXPECT_GT(p.nvme_read_gbps, 0);
  }
  const HardwareProfile ref = find_profile("rtx4090-256gb", kProfiles);
  EXPECT_TRUE(ref.has_gpu());
  EXPECT_EQ(ref.vram_gb, 24);
  EXPECT_EQ(ref.dram_gb, 256);
  EXPECT_FALSE(find_profile("cpu-only-128gb", kProfiles).has_gpu());
  EXPECT_EQ(find_profile("dual-rtx4090-256gb", kProfiles).gpus.size(), 2u);
}

TEST(HardwareProfile, JsonRoundTrip) {
  const HardwareProfile p = find_profile("rtx4090-256gb", kProfiles);
  EXPECT_EQ(profile_json(parse_profile(profile_json(p), "x")), profile_json(p));
}

TEST(HardwareProfile, ErrorsNameFileAndKey) {
  test::ScratchDir dir("profile");
  const auto base = profile_json(find_profile("rtx4090-256gb", kProfiles));
  auto write = [&](const nlohmann::json& j) {
    test::write_text(dir / "p.json", j.dump());
    return dir / "p.json";
  };
  auto j = base;
  j["budgets"].erase("dram_gb");
  STRATA_EXPECT_ERROR(load_profile(write(j)), "p.json", "budgets.dram_gb", "missing");
  j = base;
  j["bandwidth"]["dram_read_gbps"] = "fast";
  STRATA_EXPECT_ERROR(load_profile(write(j)), "bandwidth.dram_read_gbps", "number");
  j = base;
  j["budgets"]["vram_headroom_gb"] = 30;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "budgets.vram_headroom_gb");
  j = base;
  j["gpus"] = nlohmann::json::array();
  STRATA_EXPECT_ERROR(load_profile(write(j)), "budgets.vram_gb", "no GPU");
  j = base;
  j["cpu"]["isa"] = "sse2";
  STRATA_EXPECT_ERROR(load_profile(write(j)), "cpu.isa");
  j = base;
  j["budgets"]["dram_gb"] = -1;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "budgets.dram_gb", ">=");
  // Counts are whole numbers within bounds (2^31 cores once passed cores <= threads by overflow).
  for (const auto& [key, value] : {std::pair{"cores", nlohmann::json(2147483648.0)}, std::pair{"threads", nlohmann::json(31.5)},
                                   std::pair{"numa_nodes", nlohmann::json(1e12)}}) {
    j = base;
    j["cpu"][key] = value;
    STRATA_EXPECT_ERROR(load_profile(write(j)), std::string("cpu.") + key, "whole number");
  }
  // Bandwidths that the cost model divides by are > 0.
  j = base;
  j["bandwidth"]["nvme_read_gbps"] = 0;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "bandwidth.nvme_read_gbps", "> 0");
  j = base;
  j["gpus"][0]["mem_bandwidth_gbps"] = 0;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "gpus[0].mem_bandwidth_gbps", "> 0");
  j = base;
  j["bandwidth"]["pcie_h2d_gbps"] = 0;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "bandwidth.pcie_h2d_gbps", "lists a GPU");
  j = base;
  j["nvme_paths"] = "abc";
  STRATA_EXPECT_ERROR(load_profile(write(j)), "nvme_paths", "array");
  test::write_text(dir / "bad.json", "{\"name\": \"x\",,}");
  STRATA_EXPECT_ERROR(load_profile(dir / "bad.json"), "bad.json", "invalid JSON", "offset 14");
  STRATA_EXPECT_ERROR(find_profile("no-such-box", kProfiles), "no-such-box");
}

TEST(HardwareProfile, NumaPolicyParsesAndRoundTrips) {
  const auto base = profile_json(find_profile("rtx4090-256gb", kProfiles));
  EXPECT_EQ(find_profile("rtx4090-256gb", kProfiles).numa_policy, NumaPolicy::Default) << "shipped as local";
  auto j = base;
  j["cpu"].erase("numa_policy");
  EXPECT_EQ(parse_profile(j, "p.json").numa_policy, NumaPolicy::Interleave) << "without the key: interleave";
  j["cpu"]["numa_nodes"] = 2;
  for (const auto& [name, want] : {std::pair{"interleave", NumaPolicy::Interleave}, std::pair{"local", NumaPolicy::Default},
                                   std::pair{"bind", NumaPolicy::Bind}}) {
    j["cpu"]["numa_policy"] = name;
    const HardwareProfile p = parse_profile(j, "p.json");
    EXPECT_EQ(p.numa_policy, want) << name;
    EXPECT_EQ(p.numa_node, 0) << name;
    EXPECT_EQ(profile_json(p)["cpu"]["numa_policy"], name);
    const HostMemoryOptions o = host_memory_options(p);
    EXPECT_EQ(o.numa, want);
    EXPECT_EQ(o.bind_node, 0);
  }
  j["cpu"]["numa_policy"] = "bind";
  j["cpu"]["numa_node"] = 1;
  const HardwareProfile bound = parse_profile(j, "p.json");
  EXPECT_EQ(bound.numa_node, 1);
  EXPECT_EQ(host_memory_options(bound).bind_node, 1);
  EXPECT_EQ(profile_json(parse_profile(profile_json(bound), "x")), profile_json(bound));
  EXPECT_EQ(describe_numa(host_memory_options(bound)), "bind to node 1");
}

TEST(HardwareProfile, BadNumaPolicyNamesFileAndKey) {
  test::ScratchDir dir("profile");
  const auto base = profile_json(find_profile("rtx4090-256gb", kProfiles));
  auto write = [&](const nlohmann::json& j) {
    test::write_text(dir / "numa.json", j.dump());
    return dir / "numa.json";
  };
  auto j = base;
  j["cpu"]["numa_policy"] = "spread";
  STRATA_EXPECT_ERROR(load_profile(write(j)), "numa.json", "cpu.numa_policy", "interleave, bind or local", "'spread'");
  j["cpu"]["numa_policy"] = 1;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "numa.json", "cpu.numa_policy", "expected a string");
  j = base;
  j["cpu"]["numa_policy"] = "bind";
  j["cpu"]["numa_node"] = 1;  // the profile has one node
  STRATA_EXPECT_ERROR(load_profile(write(j)), "numa.json", "cpu.numa_node", "1 NUMA node(s)");
  j["cpu"]["numa_node"] = "0";
  STRATA_EXPECT_ERROR(load_profile(write(j)), "cpu.numa_node", "whole number");
  j["cpu"]["numa_node"] = -1;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "cpu.numa_node", "is -1");
  j["cpu"]["numa_policy"] = "interleave";
  j["cpu"]["numa_node"] = 0;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "numa.json", "cpu.numa_node", "only read with cpu.numa_policy \"bind\"");
  j = base;
  j["cpu"]["numa_split"] = "yes";
  STRATA_EXPECT_ERROR(load_profile(write(j)), "numa.json", "cpu.numa_split", "true or false", "\"yes\"");
  j = base;
  j["cpu"]["pin_threads"] = 1;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "numa.json", "cpu.pin_threads", "true or false", "got 1");
}

TEST(HardwareProfile, NumaSplitAndPinningAreReadAndWritten) {
  auto j = profile_json(find_profile("rtx4090-256gb", kProfiles));
  EXPECT_FALSE(parse_profile(j, "p.json").numa_split) << "off unless asked";
  EXPECT_FALSE(parse_profile(j, "p.json").pin_threads) << "off unless asked";
  EXPECT_FALSE(j["cpu"].contains("numa_split"));
  j["cpu"]["numa_split"] = true;
  HardwareProfile p = parse_profile(j, "p.json");
  EXPECT_TRUE(p.numa_split);
  EXPECT_FALSE(p.pin_threads);
  EXPECT_EQ(profile_json(p)["cpu"]["numa_split"], true);
  j["cpu"]["pin_threads"] = true;
  p = parse_profile(j, "p.json");
  EXPECT_TRUE(p.pin_threads);
  EXPECT_EQ(profile_json(p)["cpu"]["pin_threads"], true);
}

TEST(HardwareProfile, TilesCrossoversAreReadWrittenAndChecked) {
  test::ScratchDir dir("profile");
  auto write = [&](const nlohmann::json& j) {
    test::write_text(dir / "tiles.json", j.dump());
    return dir / "tiles.json";
  };
  const auto base = profile_json(find_profile("rtx4090-256gb", kProfiles));
  EXPECT_FALSE(base["cpu"].contains("tiles_min_batch")) << "absent: the CPU's defaults";
  EXPECT_TRUE(parse_profile(base, "p.json").tiles_min_batch.empty());
  auto j = base;
  j["cpu"]["tiles_min_batch"] = {{"q4_k", 6}, {"q6_k", 12}};
  const HardwareProfile p = parse_profile(j, "p.json");
  EXPECT_EQ(p.tiles_min_batch, (std::map<std::string, int64_t>{{"q4_k", 6}, {"q6_k", 12}}));
  EXPECT_EQ(parse_profile(profile_json(p), "again").tiles_min_batch, p.tiles_min_batch) << "written as read";
  j["cpu"]["tiles_min_batch"] = 8;
  STRATA_EXPECT_ERROR(load_profile(write(j)), "tiles.json", "cpu.tiles_min_batch", "an object of weight type: tokens");
  for (const nlohmann::json& bad : {nlohmann::json(0), nlohmann::json(2.5), nlohmann::json("8"), nlohmann::json(70000)}) {
    j["cpu"]["tiles_min_batch"] = {{"q4_k", bad}};
    STRATA_EXPECT_ERROR(load_profile(write(j)), "tiles.json", "cpu.tiles_min_batch.q4_k", "from 1 to 65536", bad.dump());
  }
}

}  // namespace
}  // namespace strata
