#include "memory-tier/planner.h"

#include "memory-tier/svg_map.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>

#include "runtime/common/error.h"

namespace strata {

std::string_view tier_name(Tier t) {
  switch (t) {
    case Tier::Gpu: return "gpu";
    case Tier::Dram: return "dram";
    case Tier::Nvme: return "nvme";
  }
  return "?";
}

namespace {

constexpr double kGB = 1e9;

// GB with two decimals, or three significant digits below 0.01 GB (a tiny model's sizes).
std::string gb(double bytes) {
  char buf[32];
  const double g = bytes / kGB;
  std::snprintf(buf, sizeof buf, g != 0 && std::abs(g) < 0.01 ? "%.3g" : "%.2f", g);
  return buf;
}

}  // namespace

double usable_vram_gb(const HardwareProfile& hw, const PlanOptions& opts) {
  return std::max(0.0, opts.vram_budget_gb ? *opts.vram_budget_gb : hw.vram_gb - hw.vram_headroom_gb);
}

double usable_dram_gb(const HardwareProfile& hw, const PlanOptions& opts) {
  return std::max(0.0, opts.dram_budget_gb ? *opts.dram_budget_gb : hw.dram_gb - hw.dram_headroom_gb);
}

std::string describe_budget(double usable_gb, const std::optional<double>& given, double profile_gb, double headroom_gb) {
  char b[160];
  if (given) std::snprintf(b, sizeof b, "%.4g GB (as given)", usable_gb);
  else if (headroom_gb > 0)
    std::snprintf(b, sizeof b, "%.4g GB (the profile's %.4g GB less %.4g GB headroom)", usable_gb, profile_gb, headroom_gb);
  else std::snprintf(b, sizeof b, "%.4g GB", usable_gb);
  return b;
}

bool gpu_allowed(const PlanItem& it, int n_layers, const PlanOptions& opts) {
  if (it.expert >= 0 && it.layer >= 0 && it.layer < opts.cpu_moe_layers) return false;
  if (!opts.gpu_layers) return true;
  const int n = *opts.gpu_layers;
  return it.layer >= 0 ? it.layer >= n_layers - n : n > n_layers;
}

uint64_t kv_bytes_at(const PlanInput& in, int64_t context) {
  const auto ctx = static_cast<uint64_t>(std::max<int64_t>(context, 0));
  if (in.kv_terms.empty()) return in.kv_fixed_bytes + in.kv_bytes_per_token * ctx;
  uint64_t b = in.kv_fixed_bytes;
  for (const KvTerm& t : in.kv_terms) {
    uint64_t rows = ctx / static_cast<uint64_t>(std::max<int64_t>(t.per, 1));
    if (t.at_least_one) rows = std::max<uint64_t>(rows, 1);
    b += rows * t.bytes;
  }
  return b;
}

Placement plan_placement(const PlanInput& in, const HardwareProfile& hw, const PlanOptions& opts) {
  // Hotness from another model (or a hand-edited file) would weigh experts that do not exist.
  std::set<int> moe_layers;
  for (const PlanItem& it : in.items)
    if (it.expert >= 0) moe_layers.insert(it.layer);
  for (const auto& [le, prob] : opts.hotness) {
    if (le.first >= in.n_layers || le.second >= in.n_experts)
      throw Error("hotness: entry [layer " + std::to_string(le.first) + ", expert " + std::to_string(le.second) +
                  "] is outside this model (" + std::to_string(in.n_layers) + " layers, " +
                  std::to_string(in.n_experts) + " routed experts per layer): was it profiled on another model?");
    if (!moe_layers.count(le.first))
      throw Error("hotness: entry [layer " + std::to_string(le.first) + ", expert " + std::to_string(le.second) +
                  "]: layer " + std::to_string(le.first) + " of this model has no routed experts (a dense layer)");
  }
  Placement p;
  const bool gpu = hw.has_gpu();
  const double vram = gpu ? usable_vram_gb(hw, opts) : 0.0;
  const double dram = std::max(0.0, usable_dram_gb(hw, opts) - opts.reserved_dram_gb);
  if (!gpu && opts.vram_budget_gb && *opts.vram_budget_gb > 0)
    p.notes.push_back("the profile has no GPU: the VRAM budget is ignored");
  p.budget_gb[0] = vram;
  p.vram_budget_given = opts.vram_budget_gb.has_value();
  p.budget_gb[1] = dram;
  p.budget_gb[2] = 0;
  p.budgets = "GPU " + describe_budget(vram, gpu ? opts.vram_budget_gb : std::nullopt, hw.vram_gb, hw.vram_headroom_gb) +
              ", DRAM " + describe_budget(usable_dram_gb(hw, opts), opts.dram_budget_gb, hw.dram_gb, hw.dram_headroom_gb);
  if (opts.reserved_dram_gb > 0) {
    char b[96];
    std::snprintf(b, sizeof b, " of which %.4g GB for the DRAM caches", opts.reserved_dram_gb);
    p.budgets += b;
  }
  double free_b[2] = {vram * kGB, dram * kGB};

  // 0. The device's step workspace, when anything may go on the GPU.
  p.step_tokens = opts.step_tokens;
  if (gpu && vram > 0 && opts.gpu_layers.value_or(1) > 0 && opts.gpu_workspace_bytes > 0) {
    if (double(opts.gpu_workspace_bytes) <= free_b[0]) {
      p.gpu_workspace_bytes = opts.gpu_workspace_bytes;
      free_b[0] -= double(opts.gpu_workspace_bytes);
    } else {
      p.notes.push_back("the GPU budget (" + gb(free_b[0]) + " GB) cannot hold the step workspace (" +
                        gb(double(opts.gpu_workspace_bytes)) + " GB): nothing placed on the GPU");
      free_b[0] = 0;
    }
  }

  // 1. KV cache.
  p.context = opts.context;
  p.kv_bytes = kv_bytes_at(in, opts.context);
  if (gpu && p.kv_bytes <= free_b[0] && opts.gpu_layers.value_or(1) > 0) {
    p.kv_tier = Tier::Gpu;
  } else if (p.kv_bytes <= free_b[1]) {
    p.kv_tier = Tier::Dram;
  } else {
    throw std::runtime_error(in.model + ": the KV cache for " + std::to_string(opts.context) + " tokens needs " +
                             gb(double(p.kv_bytes)) + " GB, more than the GPU (" + gb(free_b[0]) + " GB) or DRAM (" +
                             gb(free_b[1]) + " GB) budget of " + hw.name);
  }
  free_b[static_cast<int>(p.kv_tier)] -= double(p.kv_bytes);

  // 2. Per-token tensors; the refusal test first.
  double per_token_bytes = 0;
  for (const PlanItem& it : in.items)
    if (it.expert < 0 && !it.gathered) per_token_bytes += double(it.bytes);
  if (per_token_bytes + double(p.kv_bytes) > (vram + dram) * kGB)
    throw std::runtime_error(in.model + " cannot run on " + hw.name + ": its attention, dense and shared tensors (" +
                             gb(per_token_bytes) + " GB) and KV cache (" + gb(double(p.kv_bytes)) +
                             " GB) exceed GPU + DRAM (" + gb((vram + dram) * kGB) +
                             " GB); they are read for every token and cannot stream from NVMe");

  p.tier.assign(in.items.size(), Tier::Nvme);
  auto put = [&](size_t i, bool try_gpu) {
    const double b = double(in.items[i].bytes);
    if (try_gpu && gpu && b <= free_b[0] && gpu_allowed(in.items[i], in.n_layers, opts)) {
      p.tier[i] = Tier::Gpu;
      free_b[0] -= b;
    } else if (b <= free_b[1]) {
      p.tier[i] = Tier::Dram;
      free_b[1] -= b;
    } else {
      p.tier[i] = Tier::Nvme;
    }
  };
  // A layer's KV cache lives where its attention runs: attention goes on the GPU only when the
  // KV cache was planned there.
  for (size_t i = 0; i < in.items.size(); ++i)
    if (in.items[i].expert < 0 && !in.items[i].gathered)
      put(i, !in.items[i].host_only &&
                 ((in.items[i].cls != "attention" && !in.items[i].with_attention) || p.kv_tier == Tier::Gpu));
  for (size_t i = 0; i < in.items.size(); ++i)
    if (in.items[i].expert < 0 && in.items[i].gathered) put(i, false);

  // 3. Routed experts, hottest first.
  std::vector<double> reads(in.items.size());
  std::vector<size_t> experts;
  for (size_t i = 0; i < in.items.size(); ++i) {
    const PlanItem& it = in.items[i];
    reads[i] = it.reads_per_token;
    if (it.expert < 0) continue;
    if (auto h = opts.hotness.find({it.layer, it.expert}); h != opts.hotness.end()) reads[i] = h->second;
    experts.push_back(i);
  }
  std::stable_sort(experts.begin(), experts.end(), [&](size_t a, size_t b) { return reads[a] > reads[b]; });
  for (size_t i : experts) put(i, true);

  // Totals.
  for (size_t i = 0; i < in.items.size(); ++i) {
    const int t = static_cast<int>(p.tier[i]);
    p.bytes[t] += in.items[i].bytes;
    p.bytes_by_class[in.items[i].cls][static_cast<size_t>(t)] += in.items[i].bytes;
  }
  {
    // Longest context: the KV tier's budget minus the per-token tensors there (experts would
    // be demoted to make room).
    const int kt = static_cast<int>(p.kv_tier);
    double fixed = 0;
    for (size_t i = 0; i < in.items.size(); ++i)
      if (in.items[i].expert < 0 && static_cast<int>(p.tier[i]) == kt) fixed += double(in.items[i].bytes);
    const double room = p.budget_gb[kt] * kGB - fixed - double(in.kv_fixed_bytes) -
                        (kt == 0 ? double(p.gpu_workspace_bytes) : 0.0);
    p.longest_context = in.kv_bytes_per_token ? static_cast<int64_t>(std::max(0.0, room) / double(in.kv_bytes_per_token)) : 0;
    if (in.max_context > 0) p.longest_context = std::min(p.longest_context, in.max_context);
    // On the GPU the step workspace grows with the context too (attention over all of it): the
    // longest context whose KV cache and workspace both fit.
    if (kt == 0 && p.gpu_workspace_bytes > 0 && opts.gpu_workspace_at) {
      const double space = p.budget_gb[0] * kGB - fixed;
      auto fits = [&](int64_t ctx) {
        return double(kv_bytes_at(in, ctx)) + double(opts.gpu_workspace_at(ctx)) <= space;
      };
      int64_t lo = 0, hi = p.longest_context;  // fits(lo); the answer is at most hi
      while (lo < hi) {
        const int64_t mid = lo + (hi - lo + 1) / 2;
        if (fits(mid)) lo = mid;
        else hi = mid - 1;
      }
      p.longest_context = lo;
    }
  }
  if (p.bytes[2] > 0)
    p.notes.push_back(gb(double(p.bytes[2])) + " GB of weights do not fit in GPU + DRAM and stream from NVMe");
  if (opts.gpu_layers && gpu) {
    const int n = std::clamp(*opts.gpu_layers, 0, in.n_layers);
    p.notes.push_back(n == 0 ? std::string("-ngl 0: nothing on the GPU, the KV cache in DRAM")
                             : "-ngl " + std::to_string(*opts.gpu_layers) + ": only layers " +
                                   std::to_string(in.n_layers - n) + "-" + std::to_string(in.n_layers - 1) +
                                   " may use the GPU" + (*opts.gpu_layers > in.n_layers ? ", and the head" : ""));
  }
  if (opts.cpu_moe_layers > 0 && gpu)
    p.notes.push_back(opts.cpu_moe_layers >= in.n_layers
                          ? std::string("--cpu-moe: no routed expert on the GPU")
                          : "--n-cpu-moe " + std::to_string(opts.cpu_moe_layers) + ": the routed experts of layers 0-" +
                                std::to_string(opts.cpu_moe_layers - 1) + " stay off the GPU");

  // The NVMe-tier experts' DRAM cache holds the hottest of them that fit.
  std::vector<bool> cached(in.items.size(), false);
  {
    p.nvme_cache_bytes = opts.nvme_cache_bytes;
    uint64_t room = opts.nvme_cache_bytes;
    double all = 0, hit = 0;
    for (size_t i : experts) {  // hottest first
      if (p.tier[i] != Tier::Nvme) continue;
      const double r = double(in.items[i].bytes) * reads[i];
      ++p.nvme_experts;
      all += r;
      if (in.items[i].bytes <= room) {
        room -= in.items[i].bytes;
        cached[i] = true;
        hit += r;
        ++p.nvme_cached_experts;
      }
    }
    p.nvme_cache_hit_rate = all > 0 ? hit / all : 0;
  }

  // Cost model.
  const double gpu_bw = gpu ? hw.gpus.front().mem_bandwidth_gbps * double(hw.gpus.size()) * kGB : 1;
  const double dram_bw = hw.dram_read_gbps * kGB, nvme_bw = std::max(hw.nvme_read_gbps, 1e-9) * kGB;
  const int n_layers = std::max(in.n_layers, 0);
  // Bucket 0: outside the layers; bucket l + 1: layer l (MTP layers past n_layers ignored).
  std::vector<std::array<double, 3>> per_layer(static_cast<size_t>(n_layers) + 1, {0, 0, 0});
  for (size_t i = 0; i < in.items.size(); ++i) {
    const int l = in.items[i].layer;
    if (l >= n_layers) continue;
    const size_t bucket = l < 0 ? 0 : static_cast<size_t>(l) + 1;
    const Tier from = cached[i] ? Tier::Dram : p.tier[i];
    const double b = double(in.items[i].bytes) * reads[i] * (from == Tier::Nvme ? in.items[i].nvme_read_factor : 1.0);
    per_layer[bucket][static_cast<size_t>(from)] += b;
  }
  const double kv_read = double(p.kv_bytes) / std::max(n_layers, 1);
  for (size_t l = 1; l < per_layer.size(); ++l) per_layer[l][static_cast<size_t>(p.kv_tier)] += kv_read;
  std::array<double, 4> bound_time = {0, 0, 0, 0};  // gpu, dram, nvme, pcie
  for (const auto& layer : per_layer) {
    for (int t = 0; t < 3; ++t) p.read_bytes_per_token[t] += layer[static_cast<size_t>(t)];
    const double g = layer[0] / gpu_bw;
    const double n = layer[2] / nvme_bw;
    const double d = (layer[1] + layer[2]) / dram_bw;  // streamed bytes are read again by the CPU
    p.time_per_token.gpu_s += g;
    p.time_per_token.dram_s += d;
    p.time_per_token.nvme_s += n;
    const double m = std::max({g, d, n});
    p.seconds_per_token += m;
    bound_time[m == n && n > 0 ? 2 : m == d ? 1 : 0] += m;
  }
  p.tokens_per_s = p.seconds_per_token > 0 ? 1.0 / p.seconds_per_token : 0;
  static const char* kRes[] = {"GPU memory bandwidth", "DRAM bandwidth (CPU experts)", "NVMe read bandwidth", "PCIe"};
  p.bound = kRes[std::max_element(bound_time.begin(), bound_time.end()) - bound_time.begin()];
  return p;
}

nlohmann::json placement_json(const PlanInput& in, const Placement& p) {
  nlohmann::json j;
  j["model"] = in.model;
  // The model's shape, so a run refuses a placement made for another model.
  j["layers"] = in.n_layers;
  j["routed_experts"] = in.n_experts;
  j["budget_gb"] = {{"gpu", p.budget_gb[0]}, {"dram", p.budget_gb[1]}};
  j["weights_gb"] = {{"gpu", double(p.bytes[0]) / kGB}, {"dram", double(p.bytes[1]) / kGB},
                     {"nvme", double(p.bytes[2]) / kGB}};
  nlohmann::json cls = nlohmann::json::object();
  for (const auto& [name, b] : p.bytes_by_class)
    cls[name] = {{"gpu", double(b[0]) / kGB}, {"dram", double(b[1]) / kGB}, {"nvme", double(b[2]) / kGB}};
  j["weights_gb_by_class"] = cls;
  j["kv_cache"] = {{"tier", tier_name(p.kv_tier)},
                   {"context", p.context},
                   {"gb", double(p.kv_bytes) / kGB},
                   {"longest_context", p.longest_context}};
  j["gpu_workspace"] = {{"gb", double(p.gpu_workspace_bytes) / kGB}, {"step_tokens", p.step_tokens}};
  j["read_gb_per_token"] = {{"gpu", p.read_bytes_per_token[0] / kGB},
                            {"dram", p.read_bytes_per_token[1] / kGB},
                            {"nvme", p.read_bytes_per_token[2] / kGB}};
  j["seconds_per_token"] = {{"gpu", p.time_per_token.gpu_s},
                            {"dram", p.time_per_token.dram_s},
                            {"nvme", p.time_per_token.nvme_s},
                            {"total", p.seconds_per_token}};
  j["nvme_cache"] = {{"gb", double(p.nvme_cache_bytes) / kGB},
                     {"nvme_experts", p.nvme_experts},
                     {"experts_held", p.nvme_cached_experts},
                     {"predicted_hit_rate", p.nvme_cache_hit_rate}};
  j["predicted_decode_tokens_per_s"] = p.tokens_per_s;
  j["bound_by"] = p.bound;
  j["notes"] = p.notes;
  nlohmann::json experts = nlohmann::json::array();
  for (size_t i = 0; i < in.items.size(); ++i)
    if (in.items[i].expert >= 0)
      experts.push_back({in.items[i].layer, in.items[i].expert, tier_name(p.tier[i])});
  j["experts"] = experts;  // [layer, expert, tier]
  nlohmann::json tables = nlohmann::json::array();
  for (size_t i = 0; i < in.items.size(); ++i)
    if (in.items[i].gathered) tables.push_back({in.items[i].name, tier_name(p.tier[i])});
  j["tables"] = tables;  // [tensor, tier] of each gathered table (embedding, Engram)
  nlohmann::json tensors = nlohmann::json::array();
  for (size_t i = 0; i < in.items.size(); ++i)
    if (in.items[i].expert < 0 && !in.items[i].gathered) tensors.push_back({in.items[i].name, tier_name(p.tier[i])});
  j["tensors"] = tensors;  // [tensor, tier] of every other tensor (attention, norms, shared experts, ...)
  return j;
}

std::string placement_text(const PlanInput& in, const HardwareProfile& hw, const Placement& p) {
  std::ostringstream o;
  char line[256];
  o << "model      " << in.model << " (" << in.n_layers << " layers, " << in.n_experts << " routed experts, top-"
    << in.top_k << ")\n";
  o << "profile    " << hw.name << " (" << hw.source << ")\n";
  o << "budgets    " << p.budgets << ", NVMe unbounded\n";
  std::snprintf(line, sizeof line,
                "KV cache   %lld tokens = %.2f GB on %s; longest context that fits there: %lld tokens\n",
                static_cast<long long>(p.context), double(p.kv_bytes) / kGB, std::string(tier_name(p.kv_tier)).c_str(),
                static_cast<long long>(p.longest_context));
  o << line;
  if (p.gpu_workspace_bytes > 0) {
    std::snprintf(line, sizeof line,
                  "workspace  %.3f GB on gpu: a step's device scratch, steps of up to %lld tokens at the full "
                  "context (--ubatch)\n",
                  double(p.gpu_workspace_bytes) / kGB, static_cast<long long>(p.step_tokens));
    o << line;
  }
  o << "\n";
  std::snprintf(line, sizeof line, "%-18s %10s %10s %10s\n", "weights (GB)", "gpu", "dram", "nvme");
  o << line;
  for (const auto& [name, b] : p.bytes_by_class) {
    std::snprintf(line, sizeof line, "  %-16s %10.2f %10.2f %10.2f\n", name.c_str(), double(b[0]) / kGB,
                  double(b[1]) / kGB, double(b[2]) / kGB);
    o << line;
  }
  std::snprintf(line, sizeof line, "  %-16s %10.2f %10.2f %10.2f\n\n", "total", double(p.bytes[0]) / kGB,
                double(p.bytes[1]) / kGB, double(p.bytes[2]) / kGB);
  o << line;
  if (p.budget_gb[0] > 0) {
    const double kv_gpu = p.kv_tier == Tier::Gpu ? double(p.kv_bytes) : 0.0;
    std::snprintf(line, sizeof line,
                  "gpu memory         weights %.2f + KV cache %.2f + workspace %.2f = %.2f GB of the %.2f GB budget; %s\n\n",
                  double(p.bytes[0]) / kGB, kv_gpu / kGB, double(p.gpu_workspace_bytes) / kGB,
                  (double(p.bytes[0]) + kv_gpu + double(p.gpu_workspace_bytes)) / kGB, p.budget_gb[0],
                  p.vram_budget_given ? "the CUDA context and driver need room beside it (run lowers the budget to the "
                                        "device's free memory less 512 MiB)"
                                      : ("the CUDA context and driver live in the profile's " +
                                         gb(hw.vram_headroom_gb * kGB) + " GB headroom")
                                            .c_str());
    o << line;
  }
  if (p.nvme_experts > 0) {
    std::snprintf(line, sizeof line,
                  "expert cache       %.3f GB of DRAM for the %d NVMe-tier experts: holds the %d hottest, "
                  "predicted hit rate %.1f%%\n",
                  double(p.nvme_cache_bytes) / kGB, p.nvme_experts, p.nvme_cached_experts,
                  100.0 * p.nvme_cache_hit_rate);
    o << line;
  }
  std::snprintf(line, sizeof line, "read per token     %10.2f %10.2f %10.2f  GB\n", p.read_bytes_per_token[0] / kGB,
                p.read_bytes_per_token[1] / kGB, p.read_bytes_per_token[2] / kGB);
  o << line;
  std::snprintf(line, sizeof line, "time per token     %10.1f %10.1f %10.1f  ms (each resource alone)\n",
                1e3 * p.time_per_token.gpu_s, 1e3 * p.time_per_token.dram_s, 1e3 * p.time_per_token.nvme_s);
  o << line;
  std::snprintf(line, sizeof line, "predicted decode   %.2f tokens/s (%.1f ms/token), bound by %s\n", p.tokens_per_s,
                1e3 * p.seconds_per_token, p.bound.c_str());
  o << line;
  for (const auto& n : p.notes) o << "note: " << n << "\n";
  return o.str();
}

std::string placement_svg(const PlanInput& in, const Placement& p) {
  static const char* kColor[] = {"#2e7d32", "#1565c0", "#ef6c00"};
  const int L = std::max(in.n_layers, 1), E = std::max(in.n_experts, 1);
  // Per layer: the tier holding most of its per-token bytes; per (layer, expert): its tier.
  std::vector<std::array<uint64_t, 3>> dense(static_cast<size_t>(L), {0, 0, 0});
  std::vector<int> tier(static_cast<size_t>(L) * static_cast<size_t>(E), -1);
  for (size_t i = 0; i < in.items.size(); ++i) {
    const PlanItem& it = in.items[i];
    if (it.layer < 0 || it.layer >= L) continue;
    if (it.expert < 0) dense[static_cast<size_t>(it.layer)][static_cast<size_t>(p.tier[i])] += it.bytes;
    else if (it.expert < E) tier[static_cast<size_t>(it.layer) * E + it.expert] = static_cast<int>(p.tier[i]);
  }
  GridMap m;
  m.title = in.model + ": where each routed expert lives (" + std::to_string(L) + " layers × " + std::to_string(E) +
            " experts)";
  m.cols = L;
  m.rows = E;
  m.legend = {{kColor[0], "GPU"}, {kColor[1], "DRAM"}, {kColor[2], "NVMe"}, {"#eeeeee", "dense layer (no experts)"}};
  auto name = [](int t) { return t < 0 ? std::string("none") : std::string(tier_name(static_cast<Tier>(t))); };
  m.color = [&](int c, int r) {
    const int t = tier[static_cast<size_t>(c) * E + r];
    return std::string(t < 0 ? "#eeeeee" : kColor[t]);
  };
  m.tooltip = [&](int c, int r0, int r1) {
    const int t = tier[static_cast<size_t>(c) * E + r0];
    return "layer " + std::to_string(c) + ", " + (r0 == r1 ? "expert " + std::to_string(r0)
                                                           : "experts " + std::to_string(r0) + "–" + std::to_string(r1)) +
           ": " + (t < 0 ? "dense layer" : name(t));
  };
  for (int l = 0; l < L; ++l) {
    const auto& d = dense[static_cast<size_t>(l)];
    m.top_row.push_back(kColor[std::max_element(d.begin(), d.end()) - d.begin()]);
  }
  m.top_row_label = "attention, dense";
  return render_grid_svg(m);
}

}  // namespace strata
