// Host-to-device copy rate over PCIe from pinned host memory: what `strata tune` records as
// the profile's pcie_h2d_gbps.
#pragma once

#include <cstddef>
#include <string>

namespace strata::gpu {

// Best of `repeats` copies of `bytes` from pinned host memory to device `device`, in GB/s;
// 0 with *why set on any CUDA failure.
double measure_h2d_gbps(int device, size_t bytes, int repeats, std::string* why);

}  // namespace strata::gpu
