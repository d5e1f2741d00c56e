// A layers × experts map as SVG, readable at a glance: a title sized to fit, axes with ticks
// and labels, a legend, an optional top row (per-token tensors of each layer), and cells whose
// runs of one colour down a column are drawn as one rectangle with one tooltip — so a map of
// 61 × 256 experts stays tens of KB, not a megabyte.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace strata {

struct GridMap {
  std::string title;
  std::string x_label = "layer", y_label = "routed expert";
  int cols = 0, rows = 0;
  std::vector<std::pair<std::string, std::string>> legend;  // (colour, label)
  std::function<std::string(int col, int row)> color;        // a cell's fill
  // The tooltip of rows [row_begin, row_end] of a column (one run of one colour).
  std::function<std::string(int col, int row_begin, int row_end)> tooltip;
  std::vector<std::string> top_row;  // per column (empty: none)
  std::string top_row_label;         // what the top row shows
};

std::string render_grid_svg(const GridMap& m);

// Text safe inside SVG/XML (& < > " escaped).
std::string xml_escape(const std::string& s);

}  // namespace strata
