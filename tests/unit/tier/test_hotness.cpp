// Hotness files: what `strata profile` writes, `strata plan --hotness` reads back; bad files
// are refused with the file named.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "memory-tier/hotness.h"
#include "memory-tier/planner.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

Hotness sample() {
  Hotness h;
  h.model = "m";
  h.tokens = 10;
  h.counts = {{}, {10, 6, 4, 0}, {1, 1, 9, 9}};  // layer 0 dense
  h.layer_tokens = {0, 10, 10};
  return h;
}

TEST(Hotness, JsonRoundTripsThroughTheLoader) {
  test::ScratchDir dir("hot");
  test::write_text(dir / "h.json", hotness_json(sample()).dump());
  const auto h = load_hotness(dir / "h.json");
  ASSERT_EQ(h.size(), 8u);  // dense layer 0 is not listed
  EXPECT_DOUBLE_EQ(h.at({1, 0}), 1.0);
  EXPECT_DOUBLE_EQ(h.at({1, 2}), 0.4);
  EXPECT_DOUBLE_EQ(h.at({2, 3}), 0.9);
  EXPECT_EQ(h.count({0, 0}), 0u);
}

TEST(Hotness, ConcentrationIsTheSmallestShareOfPairsCoveringTheActivations) {
  const Hotness h = sample();  // 40 activations over 8 pairs: 10, 9, 9, 6, 4, 1, 1, 0
  EXPECT_DOUBLE_EQ(h.concentration(0.5), 3.0 / 8);   // 10 + 9 + 9 = 28 >= 20
  EXPECT_DOUBLE_EQ(h.concentration(0.9), 5.0 / 8);   // 38 >= 36
  EXPECT_DOUBLE_EQ(h.concentration(1.0), 7.0 / 8);   // the never-used pair is not needed
}

// Every (layer, expert) pair is covered by exactly one tooltip: a cell's own, or that of a run
// of cells of one shade down a layer ("experts 2–3"); the dense layer 0 by one of its own.
TEST(Hotness, HeatMapTooltipsCoverEveryPairOnce) {
  const std::string svg = hotness_svg(sample());
  std::map<int, int> covered;  // layer -> experts covered
  int dense = 0;
  for (size_t p = svg.find("<title>layer "); p != std::string::npos; p = svg.find("<title>layer ", p + 1)) {
    const std::string t = svg.substr(p + 7, svg.find("</title>", p) - p - 7);
    const int layer = std::stoi(t.substr(6));
    if (t.find("dense layer") != std::string::npos) {
      ++dense;
      continue;
    }
    int a = 0, b = 0;
    if (std::sscanf(t.c_str(), "layer %*d, experts %d–%d", &a, &b) == 2) covered[layer] += b - a + 1;
    else if (std::sscanf(t.c_str(), "layer %*d, expert %d", &a) == 1) covered[layer] += 1;
  }
  EXPECT_EQ(covered, (std::map<int, int>{{1, 4}, {2, 4}}));
  EXPECT_GE(dense, 1);
  EXPECT_NE(svg.find("id=\"legend\""), std::string::npos);
}

TEST(Hotness, BadFilesNameTheFileAndTheProblem) {
  test::ScratchDir dir("hot");
  STRATA_EXPECT_ERROR(load_hotness(dir / "none.json"), "none.json", "cannot open");
  test::write_text(dir / "a.json", "{");
  STRATA_EXPECT_ERROR(load_hotness(dir / "a.json"), "a.json", "invalid JSON");
  test::write_text(dir / "b.json", "{\"experts\": 3}");
  STRATA_EXPECT_ERROR(load_hotness(dir / "b.json"), "b.json", "'experts'");
  test::write_text(dir / "c.json", "{\"experts\": [[0, 1, 1.5]]}");
  STRATA_EXPECT_ERROR(load_hotness(dir / "c.json"), "c.json", "[0,1,1.5]", "probability in [0, 1]");
  test::write_text(dir / "d.json", "{\"experts\": [[-1, 1, 0.5]]}");
  STRATA_EXPECT_ERROR(load_hotness(dir / "d.json"), "d.json", "[-1,1,0.5]");
  // A layer of 2^32 + 1 is not layer 1.
  test::write_text(dir / "e.json", "{\"experts\": [[4294967297, 1, 0.5]]}");
  STRATA_EXPECT_ERROR(load_hotness(dir / "e.json"), "e.json", "[4294967297,1,0.5]");
}

// Hotness for layers or experts the model does not have is refused by the planner, not ignored.
TEST(Hotness, EntriesOutsideTheModelAreRefused) {
  PlanInput in;
  in.n_layers = 4;
  in.n_experts = 8;
  HardwareProfile hw;
  hw.dram_gb = 64;
  hw.dram_read_gbps = 50;
  for (std::pair<int, int> bad : {std::pair{4, 0}, std::pair{0, 8}}) {
    PlanOptions po;
    po.hotness[bad] = 0.5;
    STRATA_EXPECT_ERROR(plan_placement(in, hw, po), "hotness", "layer " + std::to_string(bad.first),
                        "expert " + std::to_string(bad.second), "4 layers, 8 routed experts");
  }
}

}  // namespace
}  // namespace strata
