// Page-locking of host memory the caller already owns (cudaHostRegister), so host-to-device
// copies from it run at full PCIe speed without a staging copy. Used by memory-tier/host_memory
// for large tier buffers; plain C++ so callers need no CUDA headers.
#pragma once

#include <cstddef>
#include <string>

namespace strata::gpu {

// CUDA devices visible (0 with *why set when there is none or no driver). Asked once per
// process; later calls return the first answer.
int pinning_device_count(std::string* why = nullptr);

// Registers [p, p + bytes) as page-locked and portable (every device's context sees it).
// false with *why set on any CUDA failure (e.g. the memlock limit).
bool host_register(void* p, size_t bytes, std::string* why = nullptr);
// Undoes host_register; false with *why set when p was not registered.
bool host_unregister(void* p, std::string* why = nullptr);

}  // namespace strata::gpu
