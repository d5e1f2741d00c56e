// A GPU simulated on the host (runtime/backend/device.h: make_sim_gpu).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "gpu-kernels/op_workspace.h"
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

// The CPU kernels, each op paced to the device's memory rate by the weight bytes it reads, and
// each taking the device scratch its CUDA twin takes (gpu-kernels/op_workspace.h), so the
// simulated device's memory follows a CUDA device's through a step.
class SimOps final : public CpuOps {
 public:
  SimOps(Device& dev, double mem_gbps) : dev_(dev), mem_gbps_(mem_gbps) {}
  void linear(const WeightView& w, const float* x, int64_t n, float* out) const override {
    const Twin twin(dev_, gpu::linear_workspace_bytes(n, w.rows, w.cols));
    const double t0 = steady_seconds();
    CpuOps::linear(w, x, n, out);
    pace(t0, static_cast<uint64_t>(weight_data_bytes(w) + weight_scale_bytes(w)), mem_gbps_);
  }
  void linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx,
                   float* y, int64_t ldy) const override {
    const Twin twin(dev_, gpu::linear_workspace_bytes(n, nr, w.cols));
    CpuOps::linear_rows(w, r0, nr, x, n, ldx, y, ldy);
  }
  // The gate and up rows, and on top of them one product's chunk at a time.
  void mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const override {
    const Twin twin(dev_, gpu::mlp_workspace_bytes(n, m.w1.rows));
    const Twin product(dev_, std::max({gpu::linear_workspace_bytes(n, m.w1.rows, m.w1.cols),
                                       gpu::linear_workspace_bytes(n, m.w3.rows, m.w3.cols),
                                       gpu::linear_workspace_bytes(n, m.w2.rows, m.w2.cols)}));
    const double t0 = steady_seconds();
    CpuOps::mlp(m, x, n, out, swiglu_limit);
    pace(t0, mlp_bytes(m), mem_gbps_);
  }
  void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const float* latent,
                     const float* k_rope, const uint8_t* allowed, bool absorbed, float* out) const override {
    const Twin twin(dev_, gpu::mla_workspace_bytes(s, n, n_past + n));
    const double t0 = steady_seconds();
    CpuOps::mla_attention(s, up, q, n, n_past, latent, k_rope, allowed, absorbed, out);
    pace(t0, static_cast<uint64_t>((n_past + n) * (s.kv_lora + s.rope)) * sizeof(float), mem_gbps_);
  }
  void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh, int64_t hd,
                  int64_t top_k, uint8_t* allowed) const override {
    const Twin twin(dev_, gpu::index_topk_workspace_bytes(n, n_past + n));
    CpuOps::index_topk(q, w, keys, n, n_past, nh, hd, top_k, allowed);
  }
  void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H, int64_t D,
                      float scale, float* out) const override {
    const Twin twin(dev_, gpu::sink_attention_workspace_bytes(H, nk));
    CpuOps::sink_attention(q, keys, nk, sink, H, D, scale, out);
  }
  void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos, int64_t ratio,
                  int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count) const override {
    const Twin twin(dev_, gpu::index_pick_workspace_bytes(n, first_pos, ratio));
    CpuOps::index_pick(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count);
  }
  void hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post,
              float* comb) const override {
    const Twin twin(dev_, gpu::hc_workspace_bytes(n, p.hc, p.dim));
    CpuOps::hc_pre(p, w, X, n, u, post, comb);
  }
  void hc_head(const HcParams& p, const HcView& w, const float* X, float* u) const override {
    const Twin twin(dev_, gpu::hc_workspace_bytes(1, p.hc, p.dim));
    CpuOps::hc_head(p, w, X, u);
  }
  // A bf16 KV cache (--cache-type-k bf16), with the scratch the CUDA device takes for it.
  void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                     const uint16_t* latent, const uint16_t* k_rope, const uint8_t* allowed, bool absorbed,
                     float* out) const override {
    const Twin twin(dev_, gpu::mla_workspace_bytes(s, n, n_past + n));
    const double t0 = steady_seconds();
    CpuOps::mla_attention(s, up, q, n, n_past, latent, k_rope, allowed, absorbed, out);
    pace(t0, static_cast<uint64_t>((n_past + n) * (s.kv_lora + s.rope)) * sizeof(uint16_t), mem_gbps_);
  }
  void index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past, int64_t nh,
                  int64_t hd, int64_t top_k, uint8_t* allowed) const override {
    const Twin twin(dev_, gpu::index_topk_workspace_bytes(n, n_past + n));
    CpuOps::index_topk(q, w, keys, n, n_past, nh, hd, top_k, allowed);
  }
  void sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink, int64_t H,
                      int64_t D, float scale, float* out) const override {
    const Twin twin(dev_, gpu::sink_attention_workspace_bytes(H, nk));
    CpuOps::sink_attention(q, keys, nk, sink, H, D, scale, out);
  }
  void index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                  int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                  int64_t* count) const override {
    const Twin twin(dev_, gpu::index_pick_workspace_bytes(n, first_pos, ratio));
    CpuOps::index_pick(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count);
  }

 private:
  // The CUDA twin's work buffer, held (untouched) for the op's duration.
  struct Twin {
    Twin(Device& dev, uint64_t bytes) : mem(dev) {
      if (bytes > 0) mem.get<uint8_t>(static_cast<int64_t>(bytes));
    }
    DeviceScratch mem;
  };
  Device& dev_;
  double mem_gbps_;
};

class SimGpu final : public Device {
 public:
  SimGpu(const SimGpuOptions& o, const std::string& name)
      : Device(name, o.capacity_bytes), opts_(o), ops_(*this, o.mem_gbps), lane_(name + " copies"), queue_(name) {}
  ~SimGpu() override {
    queue_.submit([] {}).settle();  // queued work (and the copies it waits on) ends before its memory goes
    lane_.submit([] {}).settle();
    release_workspace_pool();
  }
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
  // The copy lane: a second worker, paced to the PCIe rate as the queue's copies are.
  LaneCopy copy_in_async(void* dst, const void* src, uint64_t n) override {
    return lane_copy(lane_.submit([this, dst, src, n] { to_device(dst, src, n); }));
  }
  double copy_lane_seconds() const override { return lane_.busy_seconds(); }

 protected:
  uint8_t* raw_alloc(uint64_t bytes) override {
    return static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  }
  void raw_free(uint8_t* p) override { std::free(p); }

 private:
  SimGpuOptions opts_;
  SimOps ops_;
  WorkQueue lane_;   // before the queue: the queue's work waits on it, so it stops after
  WorkQueue queue_;  // last: its worker stops before the rest goes
};

}  // namespace

std::shared_ptr<Device> make_sim_gpu(const SimGpuOptions& o, const std::string& name) {
  return std::make_shared<SimGpu>(o, name);
}

}  // namespace strata
