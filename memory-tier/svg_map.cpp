#include "memory-tier/svg_map.h"

#include <algorithm>
#include <sstream>

namespace strata {

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

namespace {

// 1, 2, 5, 10, 20, 50, ... : the smallest step giving at most `most` ticks over n.
int tick_step(int n, int most) {
  for (int base = 1;; base *= 10)
    for (int m : {1, 2, 5})
      if (n / (base * m) <= most) return base * m;
}

}  // namespace

std::string render_grid_svg(const GridMap& m) {
  const int C = std::max(m.cols, 1), R = std::max(m.rows, 1);
  const int cell = R > 64 ? 4 : 12, cw = C > 64 ? 4 : 12;
  const int left = 58, title_h = 22, legend_h = 20, gap = 4;
  const int top_row_h = m.top_row.empty() ? 0 : cell + gap;
  const int top = title_h + legend_h + 8;
  const int grid_y = top + top_row_h, grid_w = C * cw, grid_h = R * cell;
  const int title_w = static_cast<int>(m.title.size()) * 7 + 20;  // ~7 px a character at 13 px
  const int w = std::max(left + grid_w + 20, std::max(title_w, 420));
  const int h = grid_y + grid_h + 44;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"10\" y=\"16\" font-size=\"13\" font-weight=\"bold\">" << xml_escape(m.title) << "</text>\n";
  // Legend: a swatch and a label per entry.
  o << "<g id=\"legend\">\n";
  int lx = 10;
  for (const auto& [color, label] : m.legend) {
    o << "<rect x=\"" << lx << "\" y=\"" << title_h + 4 << "\" width=\"10\" height=\"10\" fill=\"" << color
      << "\" stroke=\"#555\" stroke-width=\"0.5\"/><text x=\"" << lx + 14 << "\" y=\"" << title_h + 13 << "\">"
      << xml_escape(label) << "</text>\n";
    lx += 24 + static_cast<int>(label.size()) * 6;
  }
  o << "</g>\n";
  if (!m.top_row.empty()) {
    o << "<text x=\"" << left - 4 << "\" y=\"" << top + cell << "\" text-anchor=\"end\" font-size=\"9\">"
      << xml_escape(m.top_row_label) << "</text>\n";
    for (int c = 0; c < C && c < static_cast<int>(m.top_row.size()); ++c)
      o << "<rect x=\"" << left + c * cw << "\" y=\"" << top << "\" width=\"" << cw << "\" height=\"" << cell
        << "\" fill=\"" << m.top_row[static_cast<size_t>(c)] << "\"><title>layer " << c << ": "
        << xml_escape(m.top_row_label) << "</title></rect>\n";
  }
  // Cells: one rectangle per run of one colour down a column.
  o << "<g id=\"cells\">\n";
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R;) {
      const std::string color = m.color(c, r);
      int end = r;
      while (end + 1 < R && m.color(c, end + 1) == color) ++end;
      o << "<rect x=\"" << left + c * cw << "\" y=\"" << grid_y + r * cell << "\" width=\"" << cw << "\" height=\""
        << (end - r + 1) * cell << "\" fill=\"" << color << "\"><title>" << xml_escape(m.tooltip(c, r, end))
        << "</title></rect>\n";
      r = end + 1;
    }
  o << "</g>\n";
  // Axes: ticks and labels.
  o << "<g id=\"axes\" stroke=\"#333\" stroke-width=\"0.5\">\n";
  o << "<line x1=\"" << left << "\" y1=\"" << grid_y + grid_h << "\" x2=\"" << left + grid_w << "\" y2=\""
    << grid_y + grid_h << "\"/>\n";
  o << "<line x1=\"" << left << "\" y1=\"" << grid_y << "\" x2=\"" << left << "\" y2=\"" << grid_y + grid_h << "\"/>\n";
  const int xs = tick_step(C, std::max(1, grid_w / 40)), ys = tick_step(R, std::max(1, grid_h / 30));
  for (int c = 0; c < C; c += xs) {
    const int x = left + c * cw + cw / 2;
    o << "<line x1=\"" << x << "\" y1=\"" << grid_y + grid_h << "\" x2=\"" << x << "\" y2=\"" << grid_y + grid_h + 4
      << "\"/><text x=\"" << x << "\" y=\"" << grid_y + grid_h + 15 << "\" text-anchor=\"middle\" stroke=\"none\">" << c
      << "</text>\n";
  }
  for (int r = 0; r < R; r += ys) {
    const int y = grid_y + r * cell + cell / 2;
    o << "<line x1=\"" << left - 4 << "\" y1=\"" << y << "\" x2=\"" << left << "\" y2=\"" << y << "\"/><text x=\""
      << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\" stroke=\"none\">" << r << "</text>\n";
  }
  o << "</g>\n";
  o << "<text x=\"" << left + grid_w / 2 << "\" y=\"" << h - 8 << "\" text-anchor=\"middle\">" << xml_escape(m.x_label)
    << "</text>\n";
  o << "<text x=\"14\" y=\"" << grid_y + grid_h / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << grid_y + grid_h / 2 << ")\">" << xml_escape(m.y_label) << "</text>\n";
  o << "</svg>\n";
  return o.str();
}

}  // namespace strata
