// The step workspace a GPU device needs: the most device scratch (DeviceScratch) any one piece
// of a step's device work holds at once — a layer's attention, a dense FFN, a shared expert,
// the routed experts' device share with one offloaded expert's weights — for steps of at most
// `step_tokens` tokens over a context of `context`. The planner sets it aside on the GPU
// (PlanOptions::gpu_workspace_bytes) and the model reserves it on its device at load
// (Device::reserve_workspace), so a run stays inside the plan. It mirrors what the model
// files (deepseek_v3.cpp, deepseek_v4.cpp, moe_block.cpp, expert_source.cpp, device_layer.cpp)
// and the CUDA ops (gpu-kernels/op_workspace.h) take; the simulated GPU takes the same, and
// tests/unit/model/test_device_workspace.cpp checks the figure against what a step holds.
#pragma once

#include <cstdint>

#include "memory-tier/planner.h"
#include "runtime/config/model_config.h"

namespace strata {

// Rows of logits the output head computes at a time on a device (runtime/model/step_batch.h).
constexpr int64_t kDeviceHeadRows = 16;

struct StepWorkspace {
  int64_t step_tokens = 0;   // ModelOptions::max_step_tokens (0: the context)
  int64_t context = 0;       // tokens a sequence holds
  uint64_t offload_expert_bytes = 0;  // the largest routed expert copied for prefill offload (0: none)
};

uint64_t device_step_workspace(const ModelConfig& c, const StepWorkspace& w);

// The largest routed expert of a plan's model (what prefill offload copies at once).
uint64_t largest_expert_bytes(const PlanInput& in);

// What a run with a GPU reserves for a plan of `in` (planned for po.context): the workspace of
// steps of step_tokens, with an offloaded expert's weights when offload is on; set into
// po.gpu_workspace_bytes and po.step_tokens.
void plan_step_workspace(const ModelConfig& c, const PlanInput& in, int64_t step_tokens, bool offload, PlanOptions& po);

}  // namespace strata
