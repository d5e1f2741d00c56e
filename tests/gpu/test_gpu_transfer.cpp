// The PCIe probe `strata tune` uses returns a positive rate on a real device and reports a
// bad device index; skips with the reason when there is no device.
#include <gtest/gtest.h>

#include "gpu-kernels/smoke.h"
#include "gpu-kernels/transfer.h"

namespace strata::gpu {
namespace {

TEST(GpuTransfer, HostToDeviceRateIsMeasured) {
  std::string why;
  const auto devices = list_devices(&why);
  if (devices.empty()) GTEST_SKIP() << "no CUDA device, GPU test not run: " << why;
  std::string error;
  const double gbps = measure_h2d_gbps(devices[0].index, 64 << 20, 3, &error);
  EXPECT_GT(gbps, 0) << error;
  std::printf("host to device: %.1f GB/s\n", gbps);
  EXPECT_EQ(measure_h2d_gbps(static_cast<int>(devices.size()) + 7, 1 << 20, 1, &error), 0);
  EXPECT_NE(error.find("cudaSetDevice"), std::string::npos) << error;
}

}  // namespace
}  // namespace strata::gpu
