// The CUDA device and its Ops (runtime/backend/cuda_device.h). Each Ops member is the
// gpu-kernels/ call of the same name; the workspace an attention core needs comes from the
// device's pool (DeviceScratch), so a warm step allocates no device memory.
#include "runtime/backend/cuda_device.h"

#include "runtime/common/error.h"

#if defined(STRATA_HAVE_CUDA)

#include <algorithm>
#include <atomic>
#include <map>
#include <stdexcept>

#include "gpu-kernels/gpu_ops.h"

namespace strata {
namespace {

class CudaDevice;

class CudaOps final : public Ops {
 public:
  explicit CudaOps(CudaDevice& dev) : dev_(dev) {}
  void linear(const WeightView& w, const float* x, int64_t n, float* out) const override {
    linear_rows(w, 0, w.rows, x, n, w.cols, out, w.rows);
  }
  // Many tokens through cuBLAS where it loaded, else (and for fewer) linear.cu's kernels.
  void linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx,
                   float* y, int64_t ldy) const override;
  void mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const override;
  void mlp_batch(std::span<const MlpJob> jobs, float swiglu_limit) const override {
    for (const MlpJob& j : jobs) mlp(*j.mlp, j.x, j.n, j.out, swiglu_limit);
  }
  void gather_rows(const WeightView& table, const int32_t* rows, int64_t n, float* out) const override {
    gpu::gather_rows(table, rows, n, out, stream());
  }
  void route(const RouterParams& p, const float* logits, const float* bias, const int32_t* fixed, int64_t n,
             int32_t* ids, float* weights) const override {
    gpu::route(p, logits, bias, fixed, n, ids, weights, stream());
  }
  void hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post,
              float* comb) const override;
  void hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X,
               int64_t n) const override {
    gpu::hc_post(p, f, post, comb, X, n, stream());
  }
  void hc_head(const HcParams& p, const HcView& w, const float* X, float* u) const override;
  void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t d, float eps) const override {
    gpu::rms_norm(x, w, y, n, d, eps, stream());
  }
  void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d,
                  float eps) const override {
    gpu::layer_norm(x, w, b, y, n, d, eps, stream());
  }
  void rope(const Rope& r, bool halves, float* x, int64_t n, int64_t heads, int64_t head_stride, int64_t token_stride,
            const int64_t* pos) const override {
    gpu::rope(r.freqs().data(), static_cast<int64_t>(r.freqs().size()), halves, x, n, heads, head_stride, token_stride,
              pos, 0, stream());
  }
  void rope_at(const Rope& r, float* x, int64_t heads, int64_t head_stride, int64_t pos) const override {
    gpu::rope(r.freqs().data(), static_cast<int64_t>(r.freqs().size()), false, x, 1, heads, head_stride, 0, nullptr,
              pos, stream());
  }
  void hadamard_rows(float* x, int64_t n, int64_t dim) const override { gpu::hadamard_rows(x, n, dim, stream()); }
  void quant_rows(float* x, int64_t n, int64_t stride, int64_t dim, int64_t block, RowQuant q) const override {
    gpu::quant_rows(x, n, stride, dim, block, q == RowQuant::Fp8 ? 0 : q == RowQuant::Fp8Pow2 ? 1 : 2, stream());
  }
  void add(const float* a, const float* b, float* out, int64_t n) const override { gpu::add(a, b, out, n, stream()); }
  void scale(float* x, int64_t n, float a) const override { gpu::scale(x, n, a, stream()); }
  void copy(void* dst, const void* src, uint64_t bytes) const override { gpu::copy_d2d(dst, src, bytes, stream()); }
  // The attention cores over f32 caches and over bf16 ones (--cache-type-k bf16).
  void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                     const float* latent, const float* k_rope, const uint8_t* allowed, bool,
                     float* out) const override {
    mla_core(s, up, q, n, n_past, latent, k_rope, allowed, out);
  }
  void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                     const uint16_t* latent, const uint16_t* k_rope, const uint8_t* allowed, bool,
                     float* out) const override {
    mla_core(s, up, q, n, n_past, latent, k_rope, allowed, out);
  }
  void to_bf16(uint16_t* dst, const float* src, int64_t n) const override {
    gpu::to_bf16(dst, src, n, stream());
  }
  void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh,
                  int64_t hd, int64_t top_k, uint8_t* allowed) const override {
    topk_core(q, w, keys, n, n_past, nh, hd, top_k, allowed);
  }
  void index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past, int64_t nh,
                  int64_t hd, int64_t top_k, uint8_t* allowed) const override {
    topk_core(q, w, keys, n, n_past, nh, hd, top_k, allowed);
  }
  void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H,
                      int64_t D, float scale, float* out) const override {
    sink_core(q, keys, nk, sink, H, D, scale, out);
  }
  void sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink, int64_t H,
                      int64_t D, float scale, float* out) const override {
    sink_core(q, keys, nk, sink, H, D, scale, out);
  }
  void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos,
                  int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                  int64_t* count) const override {
    pick_core(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count);
  }
  void index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                  int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                  int64_t* count) const override {
    pick_core(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count);
  }
  void compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score, int64_t ratio,
                     int64_t width, int64_t own, int64_t D, float* out) const override {
    gpu::compress_pool(kv, score, prev_kv, prev_score, ratio, width, own, D, out, stream());
  }

 private:
  gpu::Stream stream() const;
  // Each core with its work buffer from the device's scratch, for either cache type.
  template <class K>
  void mla_core(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                const K* latent, const K* k_rope, const uint8_t* allowed, float* out) const;
  template <class K>
  void topk_core(const float* q, const float* w, const K* keys, int64_t n, int64_t n_past, int64_t nh,
                 int64_t hd, int64_t top_k, uint8_t* allowed) const;
  template <class K>
  void sink_core(const float* q, const K* const* keys, int64_t nk, const float* sink, int64_t H, int64_t D,
                 float scale, float* out) const;
  template <class K>
  void pick_core(const float* q, const float* w, const K* keys, int64_t n, int64_t first_pos, int64_t ratio,
                 int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count) const;
  CudaDevice& dev_;
};

class CudaDevice final : public Device {
 public:
  CudaDevice(int index, uint64_t capacity, bool graphs)
      : Device("cuda:" + std::to_string(index), capacity),
        index_(index),
        graphs_on_(graphs),
        ops_(*this),
        queue_(name()) {
    gpu::set_device(index_);
    stream_ = gpu::stream_create();
    copy_stream_ = gpu::stream_create();
    gpu::prepare_device_tables();  // the lattice codebooks, before any step
    // cuBLAS's handle and workspace, before any step; without them the tiles do every product.
    if (gpu::blas_available()) {
      try {
        gpu::prepare_blas();
        blas_ = true;
      } catch (const std::runtime_error&) {
        blas_ = false;
      }
    }
  }
  ~CudaDevice() override {
    queue_.submit([] {}).settle();  // what is still queued runs before the stream and memory go
    release_workspace_pool();
    gpu::set_device_quietly(index_);
    for (auto& [slot, exec] : graphs_) gpu::graph_destroy(exec);
    gpu::stream_settle(copy_stream_);
    gpu::stream_destroy(copy_stream_);
    gpu::stream_destroy(stream_);
  }
  bool is_host() const override { return false; }
  // The work issues its kernels and copies on the stream; the event completes when they ran.
  Event submit(std::function<void()> fn) override {
    return queue_.submit([this, fn = std::move(fn)] {
      gpu::set_device(index_);
      try {
        fn();
      } catch (...) {
        gpu::stream_settle(stream_);  // the work's queued kernels end before its event says so
        throw;
      }
      gpu::stream_sync(stream_);
    });
  }
  void to_device(void* dst, const void* src, uint64_t n) override {
    gpu::copy_h2d(dst, src, n, stream_);
    count_copy(true, n);
  }
  void to_host(void* dst, const void* src, uint64_t n) override {
    gpu::copy_d2h(dst, src, n, stream_);
    count_copy(false, n);
  }
  // The copy lane: a second stream; each copy's marker says when it (and those before) landed.
  LaneCopy copy_in_async(void* dst, const void* src, uint64_t n) override {
    gpu::copy_h2d(dst, src, n, copy_stream_);
    count_copy(true, n);
    std::shared_ptr<void> marker(gpu::marker_create(), [](void* m) { gpu::marker_destroy(m); });
    gpu::marker_record(marker.get(), copy_stream_);
    return lane_copy({}, [marker] { gpu::marker_sync(marker.get()); });
  }
  const Ops& ops() const override { return ops_; }
  bool computes(WeightType t) const override { return gpu::linear_supported(t); }
  // Captured on the stream, then launched as the slot's graph (updated in place, or made anew
  // when the work's shape changed). A capture that fails leaves nothing queued and says so.
  void run_graph(int64_t slot, FunctionRef<void()> fn) override {
    if (!graphs_on_) return fn();
    gpu::capture_begin(stream_);
    try {
      fn();
    } catch (...) {
      gpu::capture_abort(stream_);
      throw;
    }
    gpu::GraphExec& exec = graphs_[slot];
    try {
      if (gpu::capture_end(stream_, &exec)) ++graph_instantiations_;
    } catch (const std::runtime_error& e) {
      throw Error(name() + " --cuda-graphs: a step's work could not be captured (" + e.what() +
                  "); run without --cuda-graphs");
    }
    gpu::graph_launch(exec, stream_);
    ++graph_launches_;
  }
  uint64_t graph_launches() const override { return graph_launches_; }
  uint64_t graph_instantiations() const override { return graph_instantiations_; }
  double busy_seconds() const override { return queue_.busy_seconds(); }
  gpu::Stream stream() const { return stream_; }
  bool blas() const { return blas_; }

 protected:
  uint8_t* raw_alloc(uint64_t bytes) override {
    gpu::set_device(index_);
    return static_cast<uint8_t*>(gpu::device_alloc(bytes, name() + " memory"));
  }
  // Runs in destructors: after a device fault or at exit it frees what it can and never throws.
  void raw_free(uint8_t* p) override {
    gpu::set_device_quietly(index_);
    gpu::device_free(p);
  }

 private:
  int index_;
  gpu::Stream stream_ = nullptr, copy_stream_ = nullptr;
  bool blas_ = false;
  bool graphs_on_ = false;
  std::map<int64_t, gpu::GraphExec> graphs_;  // by slot; used by the worker thread only
  std::atomic<uint64_t> graph_launches_{0}, graph_instantiations_{0};
  CudaOps ops_;
  WorkQueue queue_;  // last: its worker stops before the stream goes
};

gpu::Stream CudaOps::stream() const { return dev_.stream(); }

void CudaOps::mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const {
  const int64_t inter = m.w1.rows;
  DeviceScratch mem(dev_);
  float* g = mem.get(n * inter);
  float* u = mem.get(n * inter);
  linear(m.w1, x, n, g);
  linear(m.w3, x, n, u);
  gpu::swiglu(g, u, n * inter, swiglu_limit, stream());
  linear(m.w2, g, n, out);
}

void CudaOps::linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx,
                          float* y, int64_t ldy) const {
  if (n < gpu::kBlasMinTokens || !dev_.blas()) return gpu::linear(w, r0, nr, x, n, ldx, y, ldy, stream());
  DeviceScratch mem(dev_);
  float* work = mem.get(static_cast<int64_t>(gpu::linear_workspace_bytes(n, nr, w.cols) / sizeof(float)));
  gpu::linear_blas(w, r0, nr, x, n, ldx, y, ldy, work, stream());
}

void CudaOps::hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post,
                     float* comb) const {
  DeviceScratch mem(dev_);
  void* work = mem.get<uint8_t>(static_cast<int64_t>(gpu::hc_workspace_bytes(n, p.hc, p.dim)));
  gpu::hc_pre(p, w, X, n, u, post, comb, work, stream());
}

void CudaOps::hc_head(const HcParams& p, const HcView& w, const float* X, float* u) const {
  DeviceScratch mem(dev_);
  void* work = mem.get<uint8_t>(static_cast<int64_t>(gpu::hc_workspace_bytes(1, p.hc, p.dim)));
  gpu::hc_head(p, w, X, u, work, stream());
}

template <class K>
void CudaOps::mla_core(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                       const K* latent, const K* k_rope, const uint8_t* allowed, float* out) const {
  DeviceScratch mem(dev_);
  void* work = mem.get<uint8_t>(static_cast<int64_t>(gpu::mla_workspace_bytes(s, n, n_past + n)));
  gpu::mla_attention(s, up, q, n, n_past, latent, k_rope, allowed, out, work, stream());
}

template <class K>
void CudaOps::topk_core(const float* q, const float* w, const K* keys, int64_t n, int64_t n_past, int64_t nh,
                        int64_t hd, int64_t top_k, uint8_t* allowed) const {
  DeviceScratch mem(dev_);
  void* work = mem.get<uint8_t>(static_cast<int64_t>(gpu::index_topk_workspace_bytes(n, n_past + n)));
  gpu::index_topk(q, w, keys, n, n_past, nh, hd, top_k, allowed, work, stream());
}

template <class K>
void CudaOps::sink_core(const float* q, const K* const* keys, int64_t nk, const float* sink, int64_t H,
                        int64_t D, float scale, float* out) const {
  DeviceScratch mem(dev_);
  void* work = mem.get<uint8_t>(static_cast<int64_t>(gpu::sink_attention_workspace_bytes(H, nk)));
  gpu::sink_attention(q, keys, nk, sink, H, D, scale, out, work, stream());
}

template <class K>
void CudaOps::pick_core(const float* q, const float* w, const K* keys, int64_t n, int64_t first_pos,
                        int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                        int64_t* count) const {
  DeviceScratch mem(dev_);
  void* work = mem.get<uint8_t>(static_cast<int64_t>(gpu::index_pick_workspace_bytes(n, first_pos, ratio)));
  gpu::index_pick(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count, work, stream());
}

}  // namespace

bool cuda_backend_built() { return true; }

int cuda_device_count(std::string* why) { return gpu::device_count(why); }

std::shared_ptr<Device> make_cuda_device(int index, uint64_t capacity_bytes, std::string* note, bool graphs) {
  std::string why;
  const int count = gpu::device_count(&why);
  if (index >= count)
    throw Error("--gpu cuda:" + std::to_string(index) + ": " +
                (count == 0 ? why : "this machine has " + std::to_string(count) + " CUDA device(s)"));
  uint64_t free_bytes = 0, total = 0;
  try {
    gpu::set_device(index);
    gpu::mem_info(&free_bytes, &total);
  } catch (const std::runtime_error& e) {
    throw Error("--gpu cuda:" + std::to_string(index) + ": " + e.what());
  }
  constexpr uint64_t kReserve = uint64_t{512} << 20;  // the CUDA context's own allocations, kernels' stacks
  const uint64_t usable = free_bytes > kReserve ? free_bytes - kReserve : 0;
  if (capacity_bytes > usable) {
    if (note)
      *note = "note: cuda:" + std::to_string(index) + " (" + gpu::device_name(index) + ") has " +
              std::to_string(free_bytes >> 20) + " MiB free; the plan's " + std::to_string(capacity_bytes >> 20) +
              " MiB budget is lowered to " + std::to_string(usable >> 20) + " MiB (what does not fit is refused by name)";
    capacity_bytes = usable;
  }
  return std::make_shared<CudaDevice>(index, capacity_bytes, graphs);
}

}  // namespace strata

#else  // no CUDA in this build

namespace strata {

bool cuda_backend_built() { return false; }

int cuda_device_count(std::string* why) {
  if (why) *why = "this build has no CUDA (the toolkit was not found when it was configured)";
  return 0;
}

std::shared_ptr<Device> make_cuda_device(int index, uint64_t, std::string*, bool) {
  throw Error("--gpu cuda:" + std::to_string(index) +
              ": this build has no CUDA backend (configure with the CUDA toolkit present, STRATA_CUDA=ON)");
}

}  // namespace strata

#endif
