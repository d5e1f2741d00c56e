// The smallest end-to-end proof that the CUDA build, runtime and a device work.
#pragma once

#include <string>
#include <vector>

namespace strata::gpu {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int sm_major = 0, sm_minor = 0;
  size_t total_memory = 0;
};

// Devices visible to the CUDA runtime; empty (and *why set) when there is none or no driver.
std::vector<DeviceInfo> list_devices(std::string* why = nullptr);

// c = a + b on device `device`; returns false with *error set on any CUDA failure.
bool smoke_add(int device, const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c,
               std::string* error);

}  // namespace strata::gpu
