// The backend seam's devices: memory counted against a capacity with errors that name what
// did not fit, queues that run work in order and hand back what it threw, copies counted per
// direction, and a CPU share overlapping a simulated GPU's share.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gpu-kernels/op_workspace.h"
#include "runtime/backend/device.h"
#include "runtime/backend/device_weights.h"
#include "runtime/backend/gpu_choice.h"
#include "runtime/backend/schedule_stats.h"
#include "runtime/common/error.h"

namespace strata {
namespace {

TEST(Device, MemoryIsCountedAndRefusedPastCapacityByName) {
  auto dev = make_sim_gpu({.capacity_bytes = 1000});
  {
    DeviceBuffer a = dev->alloc(600, "routed experts", "expert 3");
    EXPECT_EQ(dev->used(), 600u);
    EXPECT_EQ(dev->used_by_class().at("routed experts"), 600u);
    try {
      (void)dev->alloc(500, "workspace", "the activations");
      FAIL() << "allocated past the capacity";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("sim-gpu0"), std::string::npos) << m;
      EXPECT_NE(m.find("the activations"), std::string::npos) << m;
    }
    EXPECT_EQ(dev->used(), 600u);  // the refused request left nothing behind
    DeviceBuffer b = std::move(a);
    EXPECT_EQ(dev->used(), 600u);
  }
  EXPECT_EQ(dev->used(), 0u);
  EXPECT_EQ(dev->peak(), 600u);
  EXPECT_TRUE(dev->used_by_class().empty());
}

TEST(Device, QueueRunsInOrderOnItsOwnThreadAndRethrows) {
  auto dev = make_sim_gpu({.capacity_bytes = 1 << 20});
  std::vector<int> order;
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id worker;
  std::vector<Event> evs;
  for (int i = 0; i < 20; ++i)
    evs.push_back(dev->submit([&, i] {
      order.push_back(i);
      worker = std::this_thread::get_id();
    }));
  evs.back().wait();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
  EXPECT_NE(worker, caller);
  EXPECT_TRUE(evs.front().ready());
  EXPECT_GT(evs.back().end(), 0.0);

  const Event bad = dev->submit([] { throw Error("the kernel failed"); });
  EXPECT_THROW(bad.wait(), Error);
  dev->submit([] {}).wait();  // the queue goes on after a failure
}

TEST(Device, TheHostRunsWorkInlineAndCountsNothingAgainstAnyCapacity) {
  Device& host = *host_device();
  EXPECT_TRUE(host.is_host());
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran;
  const Event e = host.submit([&] { ran = std::this_thread::get_id(); });
  EXPECT_TRUE(e.ready());
  EXPECT_EQ(ran, caller);
  EXPECT_THROW(host.submit([] { throw Error("inline failure"); }), Error);
  DeviceBuffer b = host.alloc(uint64_t{1} << 20, "workspace", "test");
  EXPECT_NE(b.data(), nullptr);
}

TEST(Device, CopiesAreRealAndCounted) {
  auto dev = make_sim_gpu({.capacity_bytes = 1 << 20});
  std::vector<float> host = {1, 2, 3, 4}, back(4, 0);
  DeviceBuffer b = dev->upload(host.data(), 16, "workspace", "test");
  dev->submit([&] { dev->to_host(back.data(), b.data(), 16); }).wait();
  EXPECT_EQ(back, host);
  EXPECT_EQ(dev->bytes_to_device(), 16u);
  EXPECT_EQ(dev->bytes_to_host(), 16u);
}

TEST(Device, UploadedWeightsComputeWhatTheHostCopyComputes) {
  // A small F32 MLP, run by the host's ops on the host copy and by the device on its copy.
  const int64_t d = 8, inter = 16;
  std::vector<float> w1(inter * d), w2(d * inter), w3(inter * d), x(2 * d);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = static_cast<float>((i * 7) % 11) / 11.0f - 0.5f;
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = static_cast<float>((i * 5) % 13) / 13.0f - 0.5f;
  for (size_t i = 0; i < w3.size(); ++i) w3[i] = static_cast<float>((i * 3) % 7) / 7.0f - 0.5f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) / 10.0f - 0.7f;
  auto view = [](const std::vector<float>& v, int64_t r, int64_t c) {
    return WeightView{WeightType::F32, reinterpret_cast<const uint8_t*>(v.data()), r, c};
  };
  const Mlp host{view(w1, inter, d), view(w2, d, inter), view(w3, inter, d)};
  std::vector<float> want(2 * d), got(2 * d);
  host_device()->ops().mlp(host, x.data(), 2, want.data(), 0);
  auto dev = make_sim_gpu({.capacity_bytes = 1 << 20});
  const DeviceMlp on = upload_mlp(*dev, host, "shared experts", "test mlp");
  EXPECT_EQ(dev->used(), mlp_bytes(host));
  EXPECT_NE(on.mlp.w1.data, host.w1.data);
  dev->submit([&] { dev->ops().mlp(on.mlp, x.data(), 2, got.data(), 0); }).wait();
  EXPECT_EQ(got, want);
}

TEST(Device, CpuShareOverlapsTheDevicesShare) {
  // The scheduler's pattern: submit the device's share, do the CPU's, then wait. The device's
  // share is paced (as --sim-throttle paces it), the CPU's is real work of similar length.
  auto dev = make_sim_gpu({.capacity_bytes = 1 << 20, .mem_gbps = 0, .pcie_gbps = 1e-5});  // 10 KB/s
  std::vector<uint8_t> src(1000), dst(1000);  // 0.1 s at that rate
  DeviceBuffer b = dev->alloc(1000, "workspace", "test");
  ScheduleStats s;
  const double w0 = steady_seconds();
  const Event e = dev->submit([&] { dev->to_device(b.data(), src.data(), src.size()); });
  const double h0 = steady_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the CPU's share
  const double h1 = steady_seconds();
  e.wait();
  s.add(h0, h1, {&e});
  const double wall = steady_seconds() - w0;
  EXPECT_GE(s.device_s, 0.09);
  EXPECT_GT(s.both_s, 0.0);
  EXPECT_LT(wall, s.host_s + s.device_s);  // the two shares ran at once
  EXPECT_EQ(s.passes, 1);
}

TEST(GpuChoice, ParsesAndRefusesWhatThisBuildCannotRun) {
  EXPECT_EQ(parse_gpu_choice("auto").kind, GpuChoice::Auto);
  EXPECT_EQ(parse_gpu_choice("none").kind, GpuChoice::None);
  EXPECT_EQ(parse_gpu_choice("sim").kind, GpuChoice::Sim);
  EXPECT_EQ(parse_gpu_choice("cuda:3").index, 3);
  for (const char* bad : {"", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "sim2"})
    EXPECT_THROW(parse_gpu_choice(bad), Error) << bad;
  // auto stays on the CPU; the CUDA backend runs when named.
  EXPECT_EQ(resolve_gpu_choice(parse_gpu_choice("auto")).kind, GpuChoice::None);
  // A device this machine lacks (no CUDA device at all, or fewer than 64) is refused, saying
  // what runs instead.
  for (const char* absent : {"cuda:63", cuda_forward_available() ? "cuda:63" : "cuda:0"}) {
    try {
      resolve_gpu_choice(parse_gpu_choice(absent));
      FAIL() << absent;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--gpu sim"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(absent), std::string::npos) << e.what();
    }
  }
}

TEST(Device, ReservedWorkspaceIsTakenInStackOrderAndOverflowIsCounted) {
  auto dev = make_sim_gpu({.capacity_bytes = 1 << 20});
  dev->reserve_workspace(4096);
  EXPECT_EQ(dev->workspace_reserved(), 4096u);
  EXPECT_EQ(dev->used_by_class().at("workspace"), 4096u);
  uint8_t *first = nullptr, *again = nullptr;
  dev->submit([&] {
       DeviceScratch outer(*dev);
       first = outer.get<uint8_t>(100);  // rounded to 256
       {
         DeviceScratch inner(*dev);
         uint8_t* b = inner.get<uint8_t>(1000);
         EXPECT_EQ(b, first + 256);
         uint8_t* big = inner.get<uint8_t>(8192);  // past the reservation: from the pool, counted
         EXPECT_TRUE(big < first || big >= first + 4096);
       }
       again = outer.get<uint8_t>(10);  // the inner scratch's space is free again
       EXPECT_EQ(again, first + 256);
     })
      .wait();
  EXPECT_EQ(dev->workspace_overflows(), 1u);
  EXPECT_EQ(dev->workspace_peak(), 256u + 1024u + 8192u);  // what the reservation would have needed
  // The next step gets the same addresses.
  dev->submit([&] {
       DeviceScratch s(*dev);
       EXPECT_EQ(s.get<uint8_t>(100), first);
     })
      .wait();
  // Another thread while the device's worker is inside it takes from the pool instead.
  std::atomic<bool> inside{false}, done{false};
  Event e = dev->submit([&] {
    DeviceScratch s(*dev);
    (void)s.get<uint8_t>(100);
    inside = true;
    while (!done) std::this_thread::yield();
  });
  while (!inside) std::this_thread::yield();
  {
    DeviceScratch other(*dev);
    uint8_t* p = other.get<uint8_t>(100);
    EXPECT_TRUE(p < first || p >= first + 4096);
  }
  done = true;
  e.wait();
  EXPECT_EQ(dev->workspace_overflows(), 1u);  // not an overflow: the pool served another thread
  // Replacing it while idle; dropping it.
  dev->reserve_workspace(8192);
  EXPECT_EQ(dev->workspace_reserved(), 8192u);
  dev->reserve_workspace(0);
  EXPECT_EQ(dev->workspace_reserved(), 0u);
}

// The simulated GPU's products take the scratch the CUDA device's take: none for a few tokens,
// from kBlasMinTokens one chunk of decoded rows (the cuBLAS path), at most kBlasChunkFloats.
TEST(Device, SimulatedProductsTakeTheCudaTwinsScratch) {
  const int64_t rows = 300, cols = 1000;
  std::vector<float> w(static_cast<size_t>(rows * cols), 0.01f), x(static_cast<size_t>(200 * cols), 1.0f),
      y(static_cast<size_t>(200 * rows));
  const WeightView v{WeightType::F32, reinterpret_cast<const uint8_t*>(w.data()), rows, cols};
  auto peak_of = [&](int64_t n, int64_t nr) {
    auto dev = make_sim_gpu({.capacity_bytes = 64 << 20});
    dev->reserve_workspace(8 << 20);
    dev->submit([&] { dev->ops().linear_rows(v, 0, nr, x.data(), n, cols, y.data(), rows); }).wait();
    return dev->workspace_peak();
  };
  EXPECT_EQ(peak_of(gpu::kBlasMinTokens - 1, rows), 0u);
  EXPECT_EQ(peak_of(gpu::kBlasMinTokens, rows), Device::workspace_round(rows * cols * sizeof(float)));
  EXPECT_EQ(peak_of(200, 37), Device::workspace_round(37 * cols * sizeof(float)));
  EXPECT_EQ(gpu::linear_workspace_bytes(200, 100000, 7168),
            static_cast<uint64_t>(gpu::kBlasChunkFloats / 7168 * 7168) * sizeof(float));
  EXPECT_NEAR(y[0], 0.01 * cols, 1e-3);  // the products ran (f32 sums of 1000 terms)
}

TEST(Device, TheCopyLaneCopiesBesideTheQueueInOrder) {
  auto dev = make_sim_gpu({.capacity_bytes = 1 << 20});
  DeviceBuffer dst = dev->alloc(3 * 4096, "routed experts", "slots");
  std::vector<uint8_t> a(4096, 1), b(4096, 2), c(4096, 3);
  dev->submit([&] {
       // Three copies in flight; waiting for the last one means all have landed (in order).
       (void)dev->copy_in_async(dst.data(), a.data(), a.size());
       (void)dev->copy_in_async(dst.data() + 4096, b.data(), b.size());
       const Device::LaneCopy last = dev->copy_in_async(dst.data() + 8192, c.data(), c.size());
       last.wait();
     })
      .wait();
  for (size_t i = 0; i < 3 * 4096; i += 512) EXPECT_EQ(dst.data()[i], 1 + i / 4096) << i;
  EXPECT_EQ(dev->bytes_to_device(), 3u * 4096u);
  EXPECT_GT(dev->copy_lane_seconds(), 0.0);  // they ran on the lane's worker, not in line
  // The host copies in line and says its lane is idle.
  std::vector<uint8_t> out(16, 0), in(16, 9);
  host_device()->copy_in_async(out.data(), in.data(), in.size()).wait();
  EXPECT_EQ(out, in);
  EXPECT_EQ(host_device()->copy_lane_seconds(), 0.0);
}

TEST(Device, WorkspaceMissesRoundUpSoGrowingScratchReusesItsBuffer) {
  EXPECT_EQ(workspace_size(1), 256u);
  EXPECT_EQ(workspace_size(256), 256u);
  EXPECT_EQ(workspace_size(257), 320u);   // 256 + 64
  EXPECT_EQ(workspace_size(1024), 1024u);
  EXPECT_EQ(workspace_size(1025), 1280u);
  EXPECT_EQ(workspace_size(1800), 1792u + 256u);  // 1024·1.75 < 1800 <= 2048
  for (uint64_t b : {uint64_t{3000}, uint64_t{123456}, uint64_t{67108865}}) {
    EXPECT_GE(workspace_size(b), b);
    EXPECT_LE(workspace_size(b), b + b / 4);
  }
  // Scratch that grows by a row per step (scores over the cache) misses the pool once per
  // quarter-power-of-two, not per step.
  auto dev = make_sim_gpu({uint64_t{1} << 30});
  int misses = 0;
  uint64_t held = 0;
  for (uint64_t n = 1000; n < 2000; ++n) {
    DeviceBuffer b = dev->take_workspace(n * 4);
    if (b.size() != held) ++misses, held = b.size();
    dev->return_workspace(std::move(b));
  }
  EXPECT_LE(misses, 5);  // 4096, 5120, 6144, 7168, 8192 bytes (without rounding: 1000)
}

}  // namespace
}  // namespace strata
