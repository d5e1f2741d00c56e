// Proves the CUDA wiring on a real device; skips with the reason when there is none.
#include <gtest/gtest.h>

#include "gpu-kernels/smoke.h"

namespace strata::gpu {
namespace {

TEST(GpuSmoke, AddMatchesHost) {
  std::string why;
  const auto devices = list_devices(&why);
  if (devices.empty()) GTEST_SKIP() << "no CUDA device, GPU test not run: " << why;
  std::vector<float> a(1000), b(1000), c;
  for (int i = 0; i < 1000; ++i) {
    a[i] = 0.5f * i;
    b[i] = 3.0f - i;
  }
  std::string error;
  ASSERT_TRUE(smoke_add(devices[0].index, a, b, c, &error)) << error;
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << "element " << i;
  std::printf("device %d: %s sm_%d%d, %.1f GiB\n", devices[0].index, devices[0].name.c_str(), devices[0].sm_major,
              devices[0].sm_minor, devices[0].total_memory / 1073741824.0);
}

}  // namespace
}  // namespace strata::gpu
