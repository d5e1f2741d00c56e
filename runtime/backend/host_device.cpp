// The CPU as a Device (runtime/backend/device.h).
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <mutex>

#include "runtime/backend/cpu_ops.h"
#include "runtime/backend/device.h"

namespace strata {
namespace {

uint8_t* aligned_bytes(uint64_t n) {
  const uint64_t rounded = (n + 63) / 64 * 64;
  return static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
}

class HostDevice final : public Device {
 public:
  HostDevice() : Device("cpu", std::numeric_limits<uint64_t>::max()) {}
  ~HostDevice() override { release_workspace_pool(); }
  bool is_host() const override { return true; }
  Event submit(std::function<void()> fn) override {
    const double t0 = steady_seconds();
    fn();
    const double t = steady_seconds() - t0;
    std::lock_guard<std::mutex> lock(busy_mu_);
    busy_ += t;
    return {};
  }
  const Ops& ops() const override { return cpu_ops(); }
  double busy_seconds() const override {
    std::lock_guard<std::mutex> lock(busy_mu_);
    return busy_;
  }

 protected:
  uint8_t* raw_alloc(uint64_t bytes) override { return aligned_bytes(bytes); }
  void raw_free(uint8_t* p) override { std::free(p); }

 private:
  mutable std::mutex busy_mu_;
  double busy_ = 0;
};

}  // namespace

std::shared_ptr<Device> host_device() {
  static const std::shared_ptr<Device> dev = std::make_shared<HostDevice>();
  return dev;
}

}  // namespace strata
