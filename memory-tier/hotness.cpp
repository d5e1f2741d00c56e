#include "memory-tier/hotness.h"

#include "memory-tier/svg_map.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <sstream>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/common/json_file.h"

namespace strata {

double Hotness::probability(size_t layer, size_t expert) const {
  if (layer >= counts.size() || expert >= counts[layer].size() || layer_tokens.at(layer) <= 0) return 0;
  return static_cast<double>(counts[layer][expert]) / static_cast<double>(layer_tokens[layer]);
}

double Hotness::concentration(double share) const {
  std::vector<int64_t> all;
  for (const auto& row : counts) all.insert(all.end(), row.begin(), row.end());
  const int64_t total = std::accumulate(all.begin(), all.end(), int64_t{0});
  if (all.empty() || total == 0) return 0;
  std::sort(all.begin(), all.end(), std::greater<>());
  int64_t acc = 0;
  size_t k = 0;
  while (k < all.size() && static_cast<double>(acc) < share * static_cast<double>(total)) acc += all[k++];
  return static_cast<double>(k) / static_cast<double>(all.size());
}

nlohmann::json hotness_json(const Hotness& h) {
  nlohmann::json j;
  j["model"] = h.model;
  j["tokens"] = h.tokens;
  j["layers"] = nlohmann::json::array();
  j["experts"] = nlohmann::json::array();
  j["counts"] = nlohmann::json::array();
  for (size_t l = 0; l < h.counts.size(); ++l) {
    if (h.counts[l].empty()) continue;
    j["layers"].push_back({l, h.layer_tokens[l]});
    for (size_t e = 0; e < h.counts[l].size(); ++e) {
      j["experts"].push_back({l, e, h.probability(l, e)});
      j["counts"].push_back({l, e, h.counts[l][e]});
    }
  }
  return j;
}

std::string hotness_svg(const Hotness& h) {
  const int L = std::max<int>(static_cast<int>(h.counts.size()), 1);
  int E = 1;
  double top = 0;
  for (size_t l = 0; l < h.counts.size(); ++l) {
    E = std::max<int>(E, static_cast<int>(h.counts[l].size()));
    for (size_t e = 0; e < h.counts[l].size(); ++e) top = std::max(top, h.probability(l, e));
  }
  // Ten shades from white (never used) to dark red (the hottest expert's probability).
  constexpr int kLevels = 10;
  auto level = [&](int l, int e) {
    if (static_cast<size_t>(l) >= h.counts.size() || static_cast<size_t>(e) >= h.counts[static_cast<size_t>(l)].size())
      return -1;
    const double v = top > 0 ? h.probability(static_cast<size_t>(l), static_cast<size_t>(e)) / top : 0;
    return static_cast<int>(std::lround(v * kLevels));
  };
  auto shade = [](int lv) {
    if (lv < 0) return std::string("#eeeeee");
    const int g = static_cast<int>(std::lround(255.0 * (1 - static_cast<double>(lv) / kLevels)));
    return "rgb(" + std::to_string(140 + (115 * g) / 255) + "," + std::to_string(g) + "," + std::to_string(g) + ")";
  };
  char hot[64];
  std::snprintf(hot, sizeof hot, "%.3g", top);
  GridMap m;
  m.title = h.model + ": how often each routed expert is used (" + std::to_string(h.tokens) + " tokens)";
  m.cols = L;
  m.rows = E;
  m.legend = {{shade(0), "never"}, {shade(kLevels / 2), "half the hottest"}, {shade(kLevels), std::string("the hottest: ") + hot + " per token"},
              {"#eeeeee", "dense layer"}};
  m.color = [&](int c, int r) { return shade(level(c, r)); };
  m.tooltip = [&](int c, int r0, int r1) {
    if (level(c, r0) < 0) return "layer " + std::to_string(c) + ": dense layer";
    std::string t = "layer " + std::to_string(c) + ", ";
    if (r0 == r1) {
      char b[64];
      std::snprintf(b, sizeof b, "expert %d: %.4g per token", r0, h.probability(static_cast<size_t>(c), static_cast<size_t>(r0)));
      return t + b;
    }
    double lo = 1e300, hi = 0;
    for (int r = r0; r <= r1; ++r) {
      const double p = h.probability(static_cast<size_t>(c), static_cast<size_t>(r));
      lo = std::min(lo, p), hi = std::max(hi, p);
    }
    char b[96];
    std::snprintf(b, sizeof b, "experts %d–%d: %.4g–%.4g per token", r0, r1, lo, hi);
    return t + b;
  };
  return render_grid_svg(m);
}

std::map<std::pair<int, int>, double> load_hotness(const std::filesystem::path& path, std::string_view flag) {
  return parse_hotness(read_json_file(path, flag), input_name(path, flag));
}

static std::map<std::pair<int, int>, double> parse_hotness_entries(const nlohmann::json& j, const std::string& p) {
  if (!j.is_object() || !j.contains("experts") || !j["experts"].is_array())
    throw Error(p + ": key 'experts' missing or not an array of [layer, expert, probability]");
  std::map<std::pair<int, int>, double> h;
  for (const auto& e : j["experts"]) {
    if (!e.is_array() || e.size() != 3 || !e[0].is_number_integer() || !e[1].is_number_integer() ||
        !e[2].is_number() || e[0].get<int64_t>() < 0 || e[1].get<int64_t>() < 0 ||
        e[0].get<int64_t>() > INT32_MAX || e[1].get<int64_t>() > INT32_MAX || !(e[2].get<double>() >= 0) ||
        !(e[2].get<double>() <= 1))
      throw Error(p + ": 'experts' entry " + e.dump() + " is not [layer, expert, probability in [0, 1]]");
    if (!h.emplace(std::pair{e[0].get<int>(), e[1].get<int>()}, e[2].get<double>()).second)
      throw Error(p + ": 'experts' names layer " + std::to_string(e[0].get<int>()) + " expert " +
                  std::to_string(e[1].get<int>()) + " twice (" + e.dump() + ")");
  }
  return h;
}

std::map<std::pair<int, int>, double> parse_hotness(const nlohmann::json& j, const std::string& source) {
  try {
    return parse_hotness_entries(j, source);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": a value has the wrong JSON type: " + e.what());
  }
}

}  // namespace strata
