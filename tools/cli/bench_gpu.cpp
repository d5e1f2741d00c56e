// strata bench gpu [--device N] [--types q4_k,q8_0,...] [--json]
// The CUDA products and MLA decode next to the device's own limit measured in the same run:
// HBM by a device-to-device copy (bytes read + written per second), PCIe by pinned host-to-
// device copies. Per weight type, one token's product of a DeepSeek-V3 expert matrix (GB/s of
// weight bytes, and the share of HBM), and 128 tokens' (TFLOP/s); MLA decode over a 4k and a
// 32k latent cache at DeepSeek-V3's 128 heads. Everything runs through the backend seam (the
// CUDA device's Ops), as `run --gpu cuda:N` does.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/backend/cuda_device.h"
#include "runtime/common/error.h"
#include "tools/cli/commands.h"
#include "tools/cli/kernel_timing.h"
#if defined(STRATA_HAVE_CUDA)
#include "gpu-kernels/transfer.h"
#endif

namespace strata::cli {
namespace {

// Seconds per call of fn, best of a few rounds of `calls` calls each on the device's queue.
template <class F>
double per_call(Device& dev, int calls, F&& fn) {
  double best = 1e30;
  for (int round = 0; round < 4; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    dev.submit([&] {
         for (int i = 0; i < calls; ++i) fn();
       })
        .wait();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls);
  }
  return best;
}

std::vector<float> normal(int64_t n, float sd) {
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t s = 12345;
  for (float& x : v) {  // a cheap deterministic spread: the products' speed does not depend on it
    s = s * 1664525u + 1013904223u;
    x = sd * (static_cast<float>(s >> 8) / 8388608.0f - 1.0f);
  }
  return v;
}

}  // namespace

void register_bench_gpu(CLI::App* bench) {
  static int device = 0;
  static std::string types = "bf16,fp8,mxfp4,q8_0,q6_k,q5_k,q4_k,q3_k,q2_k,iq4_xs,iq3_s,iq2_xxs,iq1_s";
  static bool json = false;
  auto* g = bench->add_subcommand("gpu", "CUDA products and MLA decode vs the device's measured HBM bandwidth");
  g->add_option("--device", device, "CUDA device index")->capture_default_str()->check(CLI::Range(0, 63));
  g->add_option("--types", types, "Weight types, comma-separated")->capture_default_str();
  g->add_flag("--json", json, "Print the result as JSON");
  g->callback([] {
    std::string why;
    if (cuda_device_count(&why) <= device)
      throw Error("bench gpu: no CUDA device " + std::to_string(device) + " (" +
                  (why.empty() ? "fewer devices present" : why) + "); nothing was measured");
    auto dev = make_cuda_device(device, ~uint64_t{0});
    nlohmann::json out;
    out["device"] = dev->name();

    // The device's limits.
    constexpr uint64_t kCopy = uint64_t{1} << 30;
    DeviceBuffer a = dev->alloc(kCopy, "bench", "copy source"), b = dev->alloc(kCopy, "bench", "copy target");
    const double copy_s = per_call(*dev, 5, [&] { dev->ops().copy(b.data(), a.data(), kCopy); });
    const double hbm = 2.0 * static_cast<double>(kCopy) / copy_s / 1e9;
    out["hbm_copy_gbps"] = hbm;
    double pcie = 0;
#if defined(STRATA_HAVE_CUDA)
    pcie = gpu::measure_h2d_gbps(device, size_t{256} << 20, 5, &why);
#endif
    out["pcie_h2d_gbps"] = pcie;
    if (!json)
      std::printf("%s: HBM %.0f GB/s (device copy, read + write), PCIe host to device %.1f GB/s (pinned)\n\n",
                  dev->name().c_str(), hbm, pcie);

    // Products of one expert matrix (7168 -> 2048, DeepSeek-V3's gate/up).
    constexpr int64_t rows = 2048, cols = 7168;
    const std::vector<float> src = normal(rows * cols, 0.02f);
    if (!json) std::printf("%-9s %9s %9s %7s %12s\n", "type", "MiB", "1 tok us", "% HBM", "128 tok TF/s");
    std::stringstream list(types);
    std::string t;
    while (std::getline(list, t, ',')) {
      const Stored w = quantize(t, src, rows, cols);
      if (!dev->computes(w.view.type)) {
        if (!json) std::printf("%-9s (no CUDA decoder)\n", t.c_str());
        continue;
      }
      DeviceBuffer wd = dev->upload(w.view.data, static_cast<uint64_t>(weight_data_bytes(w.view)), "bench", t);
      DeviceBuffer ws;
      WeightView v = w.view;
      v.data = wd.data();
      if (w.view.scale) {
        ws = dev->upload(w.view.scale, static_cast<uint64_t>(weight_scale_bytes(w.view)), "bench", t + " scales");
        v.scale = ws.data();
      }
      const std::vector<float> x = normal(128 * cols, 1.0f);
      DeviceBuffer dx = dev->upload(x.data(), x.size() * sizeof(float), "bench", "x");
      DeviceBuffer dy = dev->alloc(static_cast<uint64_t>(128 * rows) * sizeof(float), "bench", "y");
      auto* xp = reinterpret_cast<const float*>(dx.data());
      auto* yp = reinterpret_cast<float*>(dy.data());
      const double one = per_call(*dev, 50, [&] { dev->ops().linear(v, xp, 1, yp); });
      const double many = per_call(*dev, 5, [&] { dev->ops().linear(v, xp, 128, yp); });
      const double gbps = static_cast<double>(w.bytes) / one / 1e9;
      const double tflops = 2.0 * rows * cols * 128 / many / 1e12;
      out["products"][t] = {{"bytes", w.bytes}, {"decode_us", one * 1e6}, {"decode_gbps", gbps},
                            {"decode_share_of_hbm", gbps / hbm}, {"prefill128_tflops", tflops}};
      if (!json)
        std::printf("%-9s %9.1f %9.1f %6.0f%% %12.2f\n", t.c_str(), static_cast<double>(w.bytes) / (1 << 20), one * 1e6,
                    100 * gbps / hbm, tflops);
    }

    // MLA decode at DeepSeek-V3's geometry (128 heads, latent 512 + rope 64, Q8_0 up-projection).
    const MlaShape sh{128, 128, 64, 128, 512, 0.1f};
    const Stored kvb = quantize("q8_0", normal(128 * 256 * 512, 0.02f), 128 * 256, 512);
    DeviceBuffer kd = dev->upload(kvb.view.data, kvb.bytes, "bench", "kv_b");
    MlaUp up;
    up.kv_b = kvb.view;
    up.kv_b.data = kd.data();
    up.nope = 128, up.v = 128, up.kv_lora = 512;
    if (!json) std::printf("\nMLA decode, 128 heads: %8s %9s %9s\n", "context", "us", "cache GB/s");
    for (int64_t ctx : {4096, 32768}) {
      DeviceBuffer lat = dev->alloc(static_cast<uint64_t>(ctx * 512) * 4, "bench", "latent"),
                   kr = dev->alloc(static_cast<uint64_t>(ctx * 64) * 4, "bench", "k_rope"),
                   q = dev->alloc(128 * 192 * 4, "bench", "q"), o = dev->alloc(128 * 128 * 4, "bench", "out");
      dev->submit([&] {
           dev->ops().scale(reinterpret_cast<float*>(lat.data()), ctx * 512, 0.f);
           dev->ops().scale(reinterpret_cast<float*>(kr.data()), ctx * 64, 0.f);
           dev->ops().scale(reinterpret_cast<float*>(q.data()), 128 * 192, 0.f);
         })
          .wait();
      const double s = per_call(*dev, 5, [&] {
        dev->ops().mla_attention(sh, up, reinterpret_cast<const float*>(q.data()), 1, ctx - 1,
                                 reinterpret_cast<const float*>(lat.data()), reinterpret_cast<const float*>(kr.data()),
                                 nullptr, true, reinterpret_cast<float*>(o.data()));
      });
      const double cache_gbps = static_cast<double>(ctx * 576 * 4) / s / 1e9;
      out["mla_decode"][std::to_string(ctx)] = {{"us", s * 1e6}, {"cache_gbps", cache_gbps}};
      if (!json) std::printf("                       %8lld %9.0f %9.0f\n", static_cast<long long>(ctx), s * 1e6, cache_gbps);
    }
    if (json) std::cout << out.dump(2) << "\n";
  });
}

}  // namespace strata::cli
