// cuBLAS for the products of many tokens (gpu_ops.h: blas_available, linear_blas). The library
// is loaded at run time (dlopen) rather than linked: a machine without it (or a bundle that
// leaves its half-gigabyte out) still runs every product, on linear.cu's own tiles. The
// weights are decoded to f32 a chunk of rows at a time (linear.cu: dequantize) and multiplied
// by an f32 GEMM (no TF32: the same sums as the tiles within f32 rounding).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "gpu-kernels/gpu_ops.h"

#ifndef STRATA_CUDA_LIB_DIR
#define STRATA_CUDA_LIB_DIR ""
#endif

namespace strata::gpu {
namespace {

struct Api {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  std::string why;  // empty when loaded
};

template <class F>
bool find(void* lib, const char* name, F& f, std::string& why) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f) why = std::string("libcublas has no ") + name;
  return f != nullptr;
}

const Api& api() {
  static const Api a = [] {
    Api r;
    const std::string so = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* lib = nullptr;
    std::string tried;
    for (const std::string& path :
         {std::string(STRATA_CUDA_LIB_DIR).empty() ? std::string()
                                                   : std::string(STRATA_CUDA_LIB_DIR) + "/" + so,
          so}) {
      if (path.empty()) continue;
      lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
      const char* e = dlerror();
      tried += (tried.empty() ? "" : "; ") + (e ? std::string(e) : path);
    }
    if (!lib) {
      r.why = "cuBLAS not loaded (" + tried + ")";
      return r;
    }
    if (find(lib, "cublasCreate_v2", r.create, r.why) &&
        find(lib, "cublasSetStream_v2", r.set_stream, r.why) &&
        find(lib, "cublasSetWorkspace_v2", r.set_workspace, r.why) &&
        find(lib, "cublasSgemm_v2", r.sgemm, r.why))
      r.why.clear();
    return r;
  }();
  return a;
}

void check_blas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS ") + what + " failed (status " +
                             std::to_string(static_cast<int>(st)) + ")");
}

// One handle per device, made on first use with its own workspace (so a GEMM allocates nothing).
constexpr size_t kBlasWorkspace = size_t{4} << 20;

cublasHandle_t handle_for_current_device() {
  static std::mutex mu;
  static std::map<int, cublasHandle_t> handles;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) throw std::runtime_error("cuBLAS: no current CUDA device");
  const std::lock_guard<std::mutex> lock(mu);
  if (auto it = handles.find(dev); it != handles.end()) return it->second;
  const Api& a = api();
  void* ws = nullptr;
  if (cudaMalloc(&ws, kBlasWorkspace) != cudaSuccess) {
    (void)cudaGetLastError();
    throw std::runtime_error("cuBLAS: its 4 MiB workspace does not fit on device " + std::to_string(dev));
  }
  cublasHandle_t h = nullptr;
  if (const cublasStatus_t st = a.create(&h); st != CUBLAS_STATUS_SUCCESS) {
    cudaFree(ws);
    check_blas(st, "create");
  }
  check_blas(a.set_workspace(h, ws, kBlasWorkspace), "set workspace");
  handles[dev] = h;  // kept to the process's end with its workspace, as the CUDA context is
  return h;
}

}  // namespace

bool blas_available(std::string* why) {
  const Api& a = api();
  if (why) *why = a.why;
  return a.why.empty();
}

void prepare_blas() {
  if (blas_available()) (void)handle_for_current_device();
}

void linear_blas(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx,
                 float* y, int64_t ldy, float* work, Stream s) {
  if (nr <= 0 || n <= 0) return;
  const Api& a = api();
  if (!a.why.empty()) throw std::runtime_error(a.why);
  cublasHandle_t h = handle_for_current_device();
  check_blas(a.set_stream(h, static_cast<cudaStream_t>(s)), "set stream");
  const int64_t chunk = blas_chunk_rows(w.cols);
  const float one = 1.0f, zero = 0.0f;
  for (int64_t k = 0; k < nr; k += chunk) {
    const int64_t rc = nr - k < chunk ? nr - k : chunk;
    dequantize(w, r0 + k, rc, work, s);
    // Column-major: Y(r, t) = Σ_c W(c, r) · X(c, t), W [cols, rc] with ld cols (its rows as
    // columns), X [cols, n] with ld ldx, Y [rc, n] at row k with ld ldy.
    check_blas(a.sgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rc), static_cast<int>(n),
                       static_cast<int>(w.cols), &one, work, static_cast<int>(w.cols), x,
                       static_cast<int>(ldx), &zero, y + k, static_cast<int>(ldy)),
               "sgemm");
  }
}

}  // namespace strata::gpu
