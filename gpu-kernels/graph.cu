// CUDA graphs of a stream's work (gpu_ops.h: capture_begin, capture_end, graph_*): a layer's
// decode attention is many small kernels whose launches would leave the device idle between
// them; captured once per step and launched as one graph, they run back to back. The step's
// arguments (positions, cache rows) change every token, so each capture updates the layer's
// executable graph in place (cudaGraphExecUpdate), instantiating anew only when its shape
// (the kernels and their order) changed.
#include "gpu-kernels/cuda_util.cuh"

namespace strata::gpu {

void capture_begin(Stream s) {
  // Relaxed: a buffer the step workspace could not hold may still be allocated meanwhile.
  check(cudaStreamBeginCapture(cu(s), cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
}

void capture_abort(Stream s) noexcept {
  cudaGraph_t g = nullptr;
  if (cudaStreamEndCapture(cu(s), &g) == cudaSuccess && g) cudaGraphDestroy(g);
  (void)cudaGetLastError();
}

bool capture_end(Stream s, GraphExec* exec) {
  cudaGraph_t g = nullptr;
  check(cudaStreamEndCapture(cu(s), &g), "cudaStreamEndCapture (the work could not be captured)");
  bool fresh = false;
  auto e = static_cast<cudaGraphExec_t>(*exec);
  if (e) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(e, g, &info) != cudaSuccess) {
      (void)cudaGetLastError();  // the update's refusal is not sticky: instantiate anew
      cudaGraphExecDestroy(e);
      e = nullptr;
    }
  }
  if (!e) {
    const cudaError_t r = cudaGraphInstantiate(&e, g, 0);
    cudaGraphDestroy(g);
    check(r, "cudaGraphInstantiate");
    fresh = true;
  } else {
    cudaGraphDestroy(g);
  }
  *exec = e;
  return fresh;
}

void graph_launch(GraphExec exec, Stream s) {
  check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), cu(s)), "cudaGraphLaunch");
}

void graph_destroy(GraphExec exec) noexcept {
  if (exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
}

}  // namespace strata::gpu
