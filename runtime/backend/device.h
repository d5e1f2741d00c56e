// A device the model's work runs on: the memory it owns (counted against its capacity), its
// queue of ordered work (runtime/backend/work_queue.h), copies between the host and it, and
// the Ops that compute there. The model asks the device that holds a weight to run the work
// that reads it; the scheduler (runtime/model/moe_block.cpp) submits the GPU's share of a layer
// before computing the CPU's, so the two run at once.
//
//   device      memory                      queue                  ops
//   host (CPU)  host DRAM, not counted      the calling thread     cpu-kernels/ (oneTBB arena)
//   sim GPU     host memory, capacity of    one worker thread in   the CPU kernels, paced to
//               the plan's VRAM budget      its own arena          the profile's rates if asked
//   CUDA        device memory               a CUDA stream (its     gpu-kernels/ (gpu_ops.h)
//                                           worker waits on it)
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpu-kernels/function_ref.h"
#include "runtime/backend/ops.h"
#include "runtime/backend/work_queue.h"

namespace strata {

class Device;

// Memory one device owns, returned to it when the buffer goes. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  Device* device() const { return dev_; }

 private:
  friend class Device;
  void release();
  Device* dev_ = nullptr;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::string cls_;
};

class Device {
 public:
  virtual ~Device() = default;
  const std::string& name() const { return name_; }
  // Shares the host's memory and cores (the CPU itself): no copies needed, work runs inline.
  virtual bool is_host() const = 0;

  // Memory: `cls` groups what it holds for reports ("routed experts", "shared experts",
  // "workspace"); `what` names it in the error when the capacity cannot hold it.
  DeviceBuffer alloc(uint64_t bytes, const std::string& cls, const std::string& what);
  uint64_t capacity() const { return capacity_; }
  uint64_t used() const;
  uint64_t peak() const;
  std::map<std::string, uint64_t> used_by_class() const;

  // Runs fn on the device's queue after everything submitted before it.
  virtual Event submit(std::function<void()> fn) = 0;
  // Copies between host memory and this device's memory, inside submitted work.
  virtual void to_device(void* dst, const void* src, uint64_t n);
  virtual void to_host(void* dst, const void* src, uint64_t n);
  // Copies src into a new buffer of this device (and waits).
  DeviceBuffer upload(const void* src, uint64_t n, const std::string& cls, const std::string& what);

  // The copy lane: host-to-device copies that run beside the work on the queue (a GPU's second
  // stream; the simulated GPU's second worker), in the order issued, so the next expert's
  // weights cross PCIe while the current one computes (prefill offload). Called inside
  // submitted work; src must stay valid and dst unread until the returned copy is waited for.
  // Without a lane (the base) the copy runs at once, in line.
  class LaneCopy {
   public:
    LaneCopy() = default;
    // Blocks until the copy (and every one issued before it) has landed; rethrows its error.
    void wait() const;
    // The same, ignoring errors (for paths already throwing).
    void settle() const noexcept;

   private:
    friend class Device;
    Event event_;
    std::function<void()> wait_native_;  // a GPU's event synchronize
  };
  virtual LaneCopy copy_in_async(void* dst, const void* src, uint64_t n);
  // Seconds the copy lane spent copying (0 without one).
  virtual double copy_lane_seconds() const { return 0; }
  uint64_t bytes_to_device() const;
  uint64_t bytes_to_host() const;

  virtual const Ops& ops() const = 0;
  // Whether the device's products read weights stored as t (upload_matrix refuses the others
  // by name before any of their bytes move).
  virtual bool computes(WeightType) const { return true; }
  // Seconds the device spent running submitted work.
  virtual double busy_seconds() const = 0;

  // Runs fn, inside submitted work whose device side is only kernels and copies within the
  // device's memory (no host copies, no waits), as one unit: a CUDA device with graphs on
  // (--cuda-graphs) captures it and launches it as a CUDA graph kept in `slot` (one per layer),
  // updated in place each step while its shape holds; elsewhere fn simply runs.
  virtual void run_graph(int64_t slot, FunctionRef<void()> fn) {
    (void)slot;
    fn();
  }
  // Graphs launched, and how many of them were instantiated anew (0 where graphs are off).
  virtual uint64_t graph_launches() const { return 0; }
  virtual uint64_t graph_instantiations() const { return 0; }

  // A step's workspace: a buffer of at least `bytes` from this device's pool, allocated (and
  // counted as "workspace") only when no pooled buffer is large enough; return_workspace puts
  // it back. So a warm decode step allocates no device memory (a prerequisite of capturing it
  // as a graph on a GPU). The pool keeps at most kWorkspacePool buffers; a miss frees the
  // largest pooled one smaller than the request (it would only be superseded).
  DeviceBuffer take_workspace(uint64_t bytes);
  void return_workspace(DeviceBuffer b);
  static constexpr size_t kWorkspacePool = 64;

  // The step workspace the plan sets aside (runtime/model/device_workspace.h), allocated once
  // and counted as "workspace": the DeviceScratch of one thread at a time (the device's worker)
  // takes its buffers from it in stack order, each rounded up to kWorkspaceAlign, so a step's
  // scratch lives at the same addresses every step and inside the plan's budget. A request
  // that does not fit falls back to the pool above and is counted (workspace_overflows), so a
  // plan that sized it too small shows. Replacing it needs it idle; 0 drops it.
  void reserve_workspace(uint64_t bytes);
  uint64_t workspace_reserved() const;
  // The most scratch one thread held through the reserved workspace at once, overflow included
  // (what the reservation would have needed), and how many requests did not fit.
  uint64_t workspace_peak() const;
  uint64_t workspace_overflows() const;
  static constexpr uint64_t kWorkspaceAlign = 256;
  // What one buffer of `bytes` takes of the reserved workspace (at least one alignment).
  static constexpr uint64_t workspace_round(uint64_t bytes) {
    return ((bytes ? bytes : 1) + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign;
  }

 protected:
  // Frees the pooled and the reserved workspace: every derived device calls it in its destructor (the buffers
  // are freed through raw_free, which must still be there).
  void release_workspace_pool();
  Device(std::string name, uint64_t capacity) : name_(std::move(name)), capacity_(capacity) {}
  virtual uint8_t* raw_alloc(uint64_t bytes) = 0;
  virtual void raw_free(uint8_t* p) = 0;
  void count_copy(bool to_device, uint64_t n);
  // A LaneCopy completed by `e` (the simulated lane), or by `wait_native` (a GPU event).
  static LaneCopy lane_copy(Event e, std::function<void()> wait_native = {});

 private:
  friend class DeviceBuffer;
  friend class DeviceScratch;
  void give_back(uint8_t* p, uint64_t n, const std::string& cls);
  // The reserved workspace's stack: enter gives the calling thread's mark (-1 while another
  // thread is inside it, or with none reserved), take a buffer on top (null when it does not
  // fit: `overflow` bytes then come from the pool), leave drops back to the mark.
  int64_t arena_enter();
  uint8_t* arena_take(uint64_t bytes);
  void arena_overflow(uint64_t bytes);
  void arena_leave(int64_t mark, uint64_t overflow);

  std::string name_;
  uint64_t capacity_;
  mutable std::mutex mu_;
  uint64_t used_ = 0, peak_ = 0, to_device_ = 0, to_host_ = 0;
  std::map<std::string, uint64_t> by_class_;
  std::mutex pool_mu_;
  std::vector<DeviceBuffer> pool_;
  mutable std::mutex arena_mu_;
  DeviceBuffer arena_;
  uint64_t arena_top_ = 0, arena_overflow_live_ = 0, arena_peak_ = 0, arena_overflows_ = 0;
  int arena_depth_ = 0;
  std::thread::id arena_owner_;
};

// The size a workspace miss allocates for `bytes`: the next of 2^k·{1, 1.25, 1.5, 1.75} (at
// least 256), so scratch that grows with the context reuses its buffer for a while.
uint64_t workspace_size(uint64_t bytes);

// Scratch of one step in a device's memory ("workspace"), taken from the device's pool and
// returned to it when the scratch goes; its own list of buffers is this thread's, reused.
class DeviceScratch {
 public:
  explicit DeviceScratch(Device& dev);
  ~DeviceScratch();
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  template <typename T = float>
  T* get(int64_t n) {
    return reinterpret_cast<T*>(take(static_cast<uint64_t>(n) * sizeof(T)));
  }

 private:
  uint8_t* take(uint64_t bytes);
  Device& dev_;
  std::vector<DeviceBuffer>* bufs_;
  size_t first_;       // where this scratch's buffers start in the thread's list
  int64_t mark_ = -1;  // its start in the device's reserved workspace (-1: from the pool)
  uint64_t overflow_ = 0;
};

// The CPU as a device: host memory (capacity unbounded here: the planner budgets DRAM), work
// run inline on the calling thread, the CPU kernels.
std::shared_ptr<Device> host_device();

// A GPU simulated on the host: its own memory capacity, its own worker thread as its stream,
// copies that are real memcpys, and the CPU kernels computing inside its worker's arena.
// With rates, each copy takes at least bytes / pcie_gbps and each op at least the bytes of
// weights it reads / mem_gbps (sleeping out the rest), so a schedule can be tried at a real
// GPU's proportions. This is how the heterogeneous schedule is tested without a GPU.
struct SimGpuOptions {
  uint64_t capacity_bytes = 0;
  double mem_gbps = 0, pcie_gbps = 0;  // 0: no pacing
};
std::shared_ptr<Device> make_sim_gpu(const SimGpuOptions& o, const std::string& name = "sim-gpu0");

}  // namespace strata
