// A GPU simulated on the host (runtime/backend/device.h: make_sim_gpu).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "runtime/backend/cpu_ops.h"
#include "runtime/backend/device.h"

namespace strata {
namespace {

// Sleeps until `bytes` at `gbps` would have taken since t0 (no pacing when gbps is 0).
void pace(double t0, uint64_t bytes, double gbps) {
  if (gbps <= 0) return;
  const double until = t0 + static_cast<double>(bytes) / (gbps * 1e9);
  const double left = until - steady_seconds();
  if (left > 0) std::this_thread::sleep_for(std::chrono::duration<double>(left));
}

// The CPU kernels, each op paced to the device's memory rate by the weight bytes it reads.
class SimOps final : public CpuOps {
 public:
  explicit SimOps(double mem_gbps) : mem_gbps_(mem_gbps) {}
  void linear(const WeightView& w, const float* x, int64_t n, float* out) const override {
    const double t0 = steady_seconds();
    CpuOps::linear(w, x, n, out);
    pace(t0, static_cast<uint64_t>(weight_data_bytes(w) + weight_scale_bytes(w)), mem_gbps_);
  }
  void mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const override {
    const double t0 = steady_seconds();
    CpuOps::mlp(m, x, n, out, swiglu_limit);
    pace(t0, mlp_bytes(m), mem_gbps_);
  }
  void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const float* latent,
                     const float* k_rope, const uint8_t* allowed, bool absorbed, float* out) const override {
    const double t0 = steady_seconds();
    CpuOps::mla_attention(s, up, q, n, n_past, latent, k_rope, allowed, absorbed, out);
    pace(t0, static_cast<uint64_t>((n_past + n) * (s.kv_lora + s.rope)) * sizeof(float), mem_gbps_);
  }

 private:
  double mem_gbps_;
};

class SimGpu final : public Device {
 public:
  SimGpu(const SimGpuOptions& o, const std::string& name)
      : Device(name, o.capacity_bytes), opts_(o), ops_(o.mem_gbps), queue_(name) {}
  ~SimGpu() override { release_workspace_pool(); }
  bool is_host() const override { return false; }
  Event submit(std::function<void()> fn) override { return queue_.submit(std::move(fn)); }
  void to_device(void* dst, const void* src, uint64_t n) override {
    const double t0 = steady_seconds();
    Device::to_device(dst, src, n);
    pace(t0, n, opts_.pcie_gbps);
  }
  void to_host(void* dst, const void* src, uint64_t n) override {
    const double t0 = steady_seconds();
    Device::to_host(dst, src, n);
    pace(t0, n, opts_.pcie_gbps);
  }
  const Ops& ops() const override { return ops_; }
  double busy_seconds() const override { return queue_.busy_seconds(); }

 protected:
  uint8_t* raw_alloc(uint64_t bytes) override {
    return static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  }
  void raw_free(uint8_t* p) override { std::free(p); }

 private:
  SimGpuOptions opts_;
  SimOps ops_;
  WorkQueue queue_;  // last: its worker stops before the rest goes
};

}  // namespace

std::shared_ptr<Device> make_sim_gpu(const SimGpuOptions& o, const std::string& name) {
  return std::make_shared<SimGpu>(o, name);
}

}  // namespace strata
