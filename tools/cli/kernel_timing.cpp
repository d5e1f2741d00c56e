#include "tools/cli/kernel_timing.h"

#include <algorithm>
#include <chrono>

#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/quantize.h"
#include "cpu-kernels/tile_layout.h"
#include "runtime/common/error.h"

namespace strata::cli {

bool is_tiled_name(const std::string& type) {
  constexpr std::string_view kSuffix = "_t16";
  if (!type.ends_with(kSuffix)) return false;
  const auto t = weight_type_from_name(type.substr(0, type.size() - kSuffix.size()));
  return t && tiled_layout_of(*t);
}

Stored quantize(const std::string& type, const std::vector<float>& src, int64_t rows, int64_t cols) {
  if (is_tiled_name(type)) {
    const Stored plain = quantize(type.substr(0, type.size() - 4), src, rows, cols);
    if (!can_tile(plain.view))
      throw Error("weight type '" + type + "': a [" + std::to_string(rows) + ", " + std::to_string(cols) +
                  "] matrix has no tiled layout (rows in 16s, columns in 256s)");
    Stored s = plain;
    s.data.resize(static_cast<size_t>(tiled_data_bytes(plain.view)));
    s.view = repack_to_tiles(plain.view, s.data.data());
    s.bytes = s.data.size();
    return s;
  }
  Stored s;
  WeightType scale_type = WeightType::F32;
  WeightType t;
  if (type == "fp8") {
    t = WeightType::F8_E4M3;
    quantize_fp8_blockscaled_ref(src.data(), rows, cols, WeightType::F32, s.data, s.scale);
  } else if (type == "mxfp4") {
    t = WeightType::MXFP4;
    scale_type = WeightType::F8_E8M0;
    quantize_mxfp4_ref(src.data(), rows, cols, s.data, s.scale);
  } else {
    const auto named = weight_type_from_name(type);
    if (!named || !(is_gguf_block_type(*named) || *named == WeightType::F32 || *named == WeightType::F16 ||
                    *named == WeightType::BF16))
      throw Error("weight type '" + type + "': expected fp8, mxfp4, f32, f16, bf16 or one of " + gguf_block_type_names());
    t = *named;
    s.data = quantize_row_ref(t, src.data(), rows * cols);
  }
  s.view = {t, s.data.data(), rows, cols, s.scale.empty() ? nullptr : s.scale.data(), scale_type};
  s.bytes = s.data.size() + s.scale.size();
  return s;
}

Copies spread(const Stored& w) {
  constexpr uint64_t kSpan = uint64_t{1} << 29;  // 512 MiB
  const size_t n = static_cast<size_t>(std::max<uint64_t>(2, (kSpan + w.data.size() - 1) / w.data.size()));
  Copies c;
  c.data.assign(n, w.data);
  for (auto& d : c.data) {
    WeightView v = w.view;
    v.data = d.data();
    c.views.push_back(v);
  }
  return c;
}

namespace {

// Best seconds of f() over up to `calls` calls or `budget` seconds of them.
template <class F>
double best_seconds(int calls, double budget, F&& f) {
  using clock = std::chrono::steady_clock;
  double best = 1e30, total = 0;
  for (int i = 0; i < calls && total < budget; ++i) {
    const auto t0 = clock::now();
    f(i);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::min(best, dt);
    total += dt;
  }
  return best;
}

}  // namespace

double time_linear(const Copies& w, const std::vector<float>& x, int64_t batch, std::vector<float>& y) {
  linear(w.views[0], x.data(), batch, y.data());  // warm-up (thread pool, page tables)
  return best_seconds(20, 1.0, [&](int i) {
    linear(w.views[static_cast<size_t>(i + 1) % w.views.size()], x.data(), batch, y.data());
  });
}

double in_cache_gbps(const Stored& w, const std::vector<float>& x) {
  const double row_bytes = double(w.bytes) / double(w.view.rows);
  int64_t rows = std::max<int64_t>(128, static_cast<int64_t>(double(8 << 20) / row_bytes) / 128 * 128);
  rows = std::min(rows, w.view.rows);
  WeightView v = w.view;
  v.rows = rows;
  std::vector<float> y(static_cast<size_t>(rows));
  for (int i = 0; i < 3; ++i) linear(v, x.data(), 1, y.data());  // into cache
  const double best = best_seconds(200, 0.5, [&](int) { linear(v, x.data(), 1, y.data()); });
  return row_bytes * double(rows) / best / 1e9;
}

TilesCrossover measure_tiles_crossover(const Copies& w, const std::vector<int64_t>& batches) {
  TilesCrossover c;
  // Both paths are the integer dot's: none to compare where it is off (--exact-dot's setting).
  if (batches.empty() || !kernel_choices().int_dot || !qdot_supported(w.views[0].type) ||
      !qdot_tiles_supported(w.views[0].type))
    return c;
  const int64_t most = *std::max_element(batches.begin(), batches.end());
  std::vector<float> x(static_cast<size_t>(most * w.views[0].cols)), y(static_cast<size_t>(most * w.views[0].rows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 29) * 0.07f - 1.0f;
  KernelChoices k = kernel_choices();
  const auto slot = static_cast<size_t>(w.views[0].type);
  for (int64_t b : batches) {
    TilesCrossover::Point p{b, 0, 0};
    {
      KernelChoices rows = k;
      rows.int_dot_tiles = false;
      const ScopedKernelChoices scoped(rows);
      p.rows_s = time_linear(w, x, b, y);
    }
    {
      KernelChoices tiles = k;
      tiles.tiles_min_batch[slot] = 1;  // the tiles at every batch size
      const ScopedKernelChoices scoped(tiles);
      p.tiles_s = time_linear(w, x, b, y);
    }
    c.points.push_back(p);
  }
  // From the largest batch down: the tiles must win at the start and at every larger size.
  c.min_batch = 2 * most;
  for (auto it = c.points.rbegin(); it != c.points.rend() && it->tiles_s <= it->rows_s; ++it) c.min_batch = it->batch;
  return c;
}

}  // namespace strata::cli
