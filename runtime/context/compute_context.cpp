#include "runtime/context/compute_context.h"

#include <stdexcept>

#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/qdot.h"
#include "memory-tier/hotness.h"
#include "runtime/backend/cuda_device.h"
#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/model/device_workspace.h"
#include "runtime/model/expert_placement.h"
#include "runtime/model/plan_items.h"

namespace strata {

void apply_tiles_min_batch(const HardwareProfile& hw, const std::string& profile, KernelChoices c) {
  if (hw.tiles_min_batch.empty()) return;
  for (const auto& [name, n] : hw.tiles_min_batch) {
    const std::optional<WeightType> t = weight_type_from_name(name);
    if (!t || !qdot_supported(*t) || static_cast<size_t>(*t) >= c.tiles_min_batch.size())
      throw Error("--profile " + profile + ": cpu.tiles_min_batch." + name +
                  ": not a weight type the integer dot computes (e.g. q4_k, q6_k, q8_0, iq4_xs, mxfp4)");
    // A figure the run's own choices already hold wins over the profile's.
    int64_t& slot = c.tiles_min_batch[static_cast<size_t>(*t)];
    if (slot == 0) slot = n;
  }
  set_kernel_choices(c);
}

ComputeContext::ComputeContext(const ModelFiles& m, const RunRequest& r) : opts_(r.opts) {
  set_kernel_choices(r.kernels);
  const GpuChoice gpu = resolve_gpu_choice(parse_gpu_choice(r.gpu));
  const bool sim = gpu.kind == GpuChoice::Sim, cuda = gpu.kind == GpuChoice::Cuda;
  if (opts_.kv_auto) opts_.kv_bf16 = kv_bf16_by_default(m.config, sim || cuda);
  if (r.cuda_graphs && !cuda) throw Error("--cuda-graphs captures a CUDA device's work: give --gpu cuda:N");
  if (r.sim_throttle && (!sim || r.profile.empty()))
    throw Error("--sim-throttle paces the simulated GPU (--gpu sim) to a --profile's rates: give both");
  uint64_t gpu_budget = 0;
  const bool layer_flags = r.gpu_layers.value_or(0) > 0 || r.cpu_moe_layers > 0;
  if (layer_flags && r.profile.empty())
    notes_.push_back(r.placement.empty()
                         ? "note: -ngl / --n-cpu-moe shape a plan: without --profile nothing is on a GPU to move"
                         : "note: -ngl / --n-cpu-moe are not applied to " + r.placement +
                               ": the placement file says where each tensor is");
  if (!r.placement.empty()) {
    PlacementFile f = load_placement(r.placement, m.config, "--placement");
    for (const auto& [name, t] : f.tensors)
      if (!m.index.find(name))
        throw Error(input_name(r.placement, "--placement") + ": 'tensors' entry [\"" + name + "\", \"" + std::string(tier_name(t)) +
                    "\"] names no tensor of " + m.path.string() + ": a placement made for another model?");
    opts_.expert_placement = std::move(f.experts);
    opts_.engram_placement = std::move(f.tables);
    opts_.tensor_placement = std::move(f.tensors);
    gpu_budget = f.gpu_budget_bytes;
    int on_gpu = 0;
    for (const auto& [k, t] : opts_.expert_placement) on_gpu += t == Tier::Gpu;
    if (on_gpu > 0 && !sim && !cuda)
      notes_.push_back("note: the " + std::to_string(on_gpu) + " experts " + r.placement +
                       " puts on the GPU run from DRAM on the CPU (--gpu " + gpu_choice_name(gpu) + ")");
  } else if (!r.profile.empty()) {
    PlanOptions po;
    po.context = effective_context(m.config, opts_);
    po.gpu_layers = r.gpu_layers;
    po.cpu_moe_layers = r.cpu_moe_layers;
    if (!r.dram_budget.empty()) po.dram_budget_gb = parse_gb(r.dram_budget, "--dram-budget");
    if (!r.vram_budget.empty()) po.vram_budget_gb = parse_gb(r.vram_budget, "--vram-budget");
    if (!r.hotness.empty()) po.hotness = load_hotness(r.hotness, "--hotness");
    try {
      hw_ = find_profile(r.profile, r.profiles_dir);
    } catch (const std::runtime_error& e) {
      throw Error(e.what());
    }
    apply_tiles_min_batch(*hw_, r.profile, r.kernels);
    // The device's step workspace, as the load reserves it (load_causal_lm).
    if (sim || cuda) {
      const int64_t offload = r.offload_batch >= 0 ? r.offload_batch : hw_->gpu_offload_batch_threshold;
      plan_step_workspace(m.config, plan_input_from_model(m), opts_.max_step_tokens, offload > 0, po);
    }
    const ExpertPlan plan =
        plan_experts(m, *hw_, po, opts_.expert_cache_bytes, opts_.engram_cache_bytes, sim || cuda, opts_.kv_bf16);
    opts_.expert_placement = plan.tier;
    opts_.expert_cache_bytes = plan.cache_bytes;
    opts_.engram_placement = plan.engram_tier;
    opts_.engram_cache_bytes = plan.engram_cache_bytes;
    opts_.host_memory = plan.memory;
    opts_.tensor_placement = plan.tensor_tier;
    gpu_budget = plan.gpu_budget_bytes;
    if (sim || cuda) opts_.gpu_workspace_bytes = static_cast<int64_t>(plan.placement.gpu_workspace_bytes);
    predicted_ = plan.placement.tokens_per_s;
    notes_.push_back(plan.summary);
  }
  if (sim) {
    SimGpuOptions so;
    so.capacity_bytes = gpu_budget;
    if (r.sim_throttle && hw_ && !hw_->gpus.empty()) {
      so.mem_gbps = hw_->gpus.front().mem_bandwidth_gbps;
      so.pcie_gbps = hw_->pcie_h2d_gbps;
    }
    opts_.gpu = make_sim_gpu(so);
    notes_.push_back(r.profile.empty() && r.placement.empty()
                         ? "note: --gpu sim holds nothing without a plan: give --profile (or --placement) to put "
                           "experts on it"
                         : "note: --gpu sim computes the GPU's share with this CPU (one worker thread beside the "
                           "compute threads): it runs the schedule and the memory plan, not at a GPU's speed");
  }
  if (cuda) {
    std::string lowered;
    opts_.gpu = make_cuda_device(gpu.index, gpu_budget, &lowered, r.cuda_graphs);
    if (!lowered.empty()) notes_.push_back(lowered);
    if (r.profile.empty() && r.placement.empty())
      notes_.push_back("note: --gpu " + gpu_choice_name(gpu) +
                       " holds nothing without a plan: give --profile (or --placement) to put tensors on it");
  }
  if (opts_.gpu) {
    opts_.offload_batch = r.offload_batch >= 0 ? r.offload_batch : hw_ ? hw_->gpu_offload_batch_threshold : 0;
    if (opts_.offload_batch > 0)
      notes_.push_back("note: prefill offload: a routed expert held in DRAM or on NVMe that gets " +
                       std::to_string(opts_.offload_batch) + "+ tokens of a step is copied to " + opts_.gpu->name() +
                       " and computed there (" +
                       (r.offload_batch >= 0 ? std::string("--offload-batch") : "the profile's gpu_offload_batch_threshold") +
                       "; --offload-batch 0 turns it off)");
  } else if (r.offload_batch > 0) {
    notes_.push_back("note: --offload-batch has no GPU device to offload to (--gpu " + gpu_choice_name(gpu) + ")");
  }
  if (const std::string why = tiled_layout_declined(); opts_.repack && !why.empty()) {
    opts_.repack = false;
    notes_.push_back("note: --repack: nothing repacked: " + why);
  }
  // Compute threads: the request's, else the profile's.
  ArenaOptions a = r.arena;
  if (a.threads <= 0 && hw_) a.threads = hw_->threads;
  a.pin = a.pin || (hw_ && hw_->pin_threads);
  a.numa_split = a.numa_split || (hw_ && hw_->numa_split);
  arena_configured_ = a.threads > 0 || a.pin || a.numa_split;
  arena_ = arena_configured_ ? configure_compute_arena(a) : compute_arena_info();
}

std::unique_ptr<CausalLM> ComputeContext::load(const ModelFiles& m,
                                               std::function<void(size_t done, size_t total)> progress) const {
  ModelOptions o = opts_;
  o.load_progress = std::move(progress);
  return load_causal_lm(m, o);
}

}  // namespace strata
