// A run on a CUDA device stays inside the plan: the step workspace, the weights and the KV cache
// the plan put on the GPU are what the device allocates (cudaMemGetInfo before and after a
// prompt longer than --ubatch and decoding to the full context), nothing past the reserved
// workspace (the logits against the CPU's: tests/cli/gpu_cuda.sh). Skipped, with the reason,
// where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu-kernels/gpu_ops.h"
#include "runtime/backend/cuda_device.h"
#include "runtime/backend/device.h"
#include "runtime/context/compute_context.h"
#include "runtime/model/plan_items.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

std::vector<float> greedy_logits(CausalLM& lm) {
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + 13 * i);
  std::vector<float> logits, all;
  lm.forward(prompt, logits, false);
  all = logits;
  while (lm.n_past() < lm.context()) {
    const int32_t next[1] = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
    lm.forward(next, logits, false);
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

TEST(CudaPlan, ARunStaysInsideThePlansBudget) {
  std::string why;
  if (cuda_device_count(&why) == 0) GTEST_SKIP() << "no CUDA device, CUDA plan test not run: " << why;
  test::ScratchDir dir("cuda-plan");
  for (const char* dtype : {"bf16", "q4_k"}) {
    SCOPED_TRACE(dtype);
    TinyOptions t;
    t.dtype = dtype;
    t.format = std::string(dtype) == "bf16" ? "hf" : "gguf";
    const ModelFiles m = open_model(make_tiny_model(t, dir / (std::string("v3-") + dtype + (t.format == "gguf" ? ".gguf" : ""))).path);
    RunRequest r;
    r.profile = "rtx4090-256gb";
    r.profiles_dir = std::string(STRATA_SOURCE_DIR) + "/profiles";
    r.opts.context = 64;
    r.opts.max_step_tokens = 16;
    r.gpu = "cuda:0";
    uint64_t free0 = 0, total = 0;
    gpu::set_device(0);
    gpu::mem_info(&free0, &total);
    {
      const ComputeContext ctx(m, r);
      ASSERT_TRUE(ctx.gpu());
      auto lm = ctx.load(m);
      const std::vector<float> got = greedy_logits(*lm);
      EXPECT_EQ(got.size(), 25u * static_cast<size_t>(m.config.vocab_size));
      uint64_t free1 = 0;
      gpu::mem_info(&free1, &total);
      Device& dev = *ctx.gpu();
      const uint64_t grew = free0 > free1 ? free0 - free1 : 0;
      std::printf("%s: the device counts %llu bytes held at most (%llu of them the step workspace, %llu in use at "
                  "most); cudaMemGetInfo says %llu more bytes in use than before the run; plan budget %llu\n",
                  dtype, static_cast<unsigned long long>(dev.peak()),
                  static_cast<unsigned long long>(dev.workspace_reserved()),
                  static_cast<unsigned long long>(dev.workspace_peak()), static_cast<unsigned long long>(grew),
                  static_cast<unsigned long long>(dev.capacity()));
      EXPECT_GT(dev.workspace_reserved(), 0u);
      EXPECT_EQ(dev.workspace_overflows(), 0u);
      EXPECT_LE(dev.peak(), dev.capacity());
      // What the driver holds beyond what the device counts: allocation granularity (2 MiB
      // pages), the lattice codebooks, the streams' and markers' own memory.
      EXPECT_LE(grew, dev.peak() + (uint64_t{64} << 20));
    }
  }
}

}  // namespace
}  // namespace strata
