// strata plan (--model M | --config config.json --weight-type T) --profile P
//             [--hotness H.json] [--context N] [--ubatch N] [--vram-budget GB] [--dram-budget GB] [--expert-cache-mb MB]
//             [--json] [--svg FILE]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "memory-tier/hotness.h"
#include "memory-tier/planner.h"
#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/common/units.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/device_workspace.h"
#include "runtime/model/expert_placement.h"
#include "runtime/model/plan_items.h"
#include "runtime/backend/cuda_device.h"
#include "tools/cli/commands.h"

namespace strata::cli {

void register_plan(CLI::App& app) {
  static std::string model, config, weight_type, profile, hotness, svg;
  static bool json = false;
  static PlanOptions po;
  static std::string vram, dram;
  static double expert_cache_mb = 0, engram_cache_mb = 0;
  auto* cmd = app.add_subcommand("plan", "Place a model on a box (GPU / DRAM / NVMe) and predict its decode speed");
  auto* m = cmd->add_option("--model", model, "HF model directory or .gguf file");
  auto* c = cmd->add_option("--config", config, "config.json alone (what-if sizing, no weights needed)");
  m->excludes(c);
  cmd->add_option("--weight-type", weight_type, "With --config: fp8 fp4 bf16 f16 f32 or a GGUF block type (q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs iq3_s iq3_xxs iq2_s iq2_xs iq2_xxs iq1_m iq1_s)")->needs(c);
  cmd->add_option("--profile", profile, "Hardware profile: a name in profiles/ or a .json path")->required();
  cmd->add_option("--hotness", hotness, "JSON {\"experts\": [[layer, expert, probability], ...]}");
  static CLI::Option* context_opt = nullptr;
  context_opt = cmd->add_option("--context", po.context,
                                "Tokens of KV cache to reserve (default: as run, the model's max_position_embeddings, at "
                                "most 4096)")
                    ->check(finite_in(1, 1 << 24, "tokens"));
  cmd->add_option("--vram-budget", vram, "GPU memory budget (e.g. 0, 24G; a bare number is GB; default: the profile's)");
  cmd->add_option("--dram-budget", dram, "DRAM budget (e.g. 2G, 512M; a bare number is GB; default: the profile's)");
  cmd->add_option_function<double>(
      "--expert-cache-mb", [](double mb) { expert_cache_mb = mb; },
      "DRAM cache for NVMe-tier experts, MiB, taken out of the DRAM budget as strata run --profile reserves it "
      "(default: the larger of 5% of the budget and two layers' routed experts, as run); the cost model assumes it "
      "holds the hottest of them")
      ->check(mib_size());
  cmd->add_option_function<double>(
         "--engram-cache-mb", [](double mb) { engram_cache_mb = mb; },
         "DRAM cache for NVMe-tier Engram tables, MiB, reserved as strata run --profile does (default: as run)")
      ->check(mib_size());
  static int64_t ubatch = kDefaultStepTokens;
  cmd->add_option("--ubatch,--ubatch-size", ubatch,
                  "Tokens one forward pass computes at once, as run (the GPU's step workspace is set aside for this "
                  "many at the full context; 0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  add_gpu_layer_flags(cmd, po.gpu_layers, po.cpu_moe_layers);
  static std::string cache_type = "auto";
  cmd->add_option(
         "--cache-type-k", cache_type,
         "The KV cache's key rows, as run sizes them (llama.cpp's -ctk): f32, bf16 (half the bytes per "
         "token, wherever attention runs) or auto (default): bf16 on a profile without a GPU (run's --gpu "
         "none), else f32")
      ->check(CLI::IsMember({"auto", "f32", "bf16"}));
  cmd->add_flag("--json", json, "Print the placement as JSON");
  cmd->add_option("--svg", svg, "Write a map of the placement (layers x experts) as SVG");
  cmd->callback([] {
    if (model.empty() && config.empty()) throw Error("plan: give --model DIR or --config config.json --weight-type T");
    if (!config.empty() && weight_type.empty()) throw Error("plan: --config needs --weight-type");
    const HardwareProfile hw = find_profile(profile, profiles_dir());
    if (!vram.empty()) po.vram_budget_gb = parse_gb(vram, "--vram-budget");
    if (!dram.empty()) po.dram_budget_gb = parse_gb(dram, "--dram-budget");
    if (!hotness.empty()) po.hotness = load_hotness(hotness, "--hotness");
    PlanInput in;
    ModelConfig cfg;
    if (!model.empty()) {
      OpenOptions oo;
      const ModelFiles mf = open_model(model, oo);
      in = plan_input_from_model(mf);
      cfg = mf.config;
    } else {
      if (std::filesystem::path(config).extension() == ".gguf" || std::filesystem::is_directory(config))
        throw Error("--config " + config + ": expects a config.json (a model's folder or .gguf file goes with --model)");
      cfg = load_hf_config(config);
      in = plan_input_from_config(cfg, weight_type, std::filesystem::path(config).filename().string());
    }
    // auto: as run --gpu cuda:N with this profile (its GPU computes) or, without a GPU, --gpu none.
    const bool bf16 = cache_type == "bf16" || (cache_type == "auto" && kv_bf16_by_default(cfg, hw.has_gpu()));
    if (bf16) kv_layout(cfg, in, true);
    // The context run reserves for the same flags: the one given (or the default), at most the
    // model's own (effective_context).
    if (!context_opt->count()) po.context = kDefaultContext;
    if (in.max_context > 0) po.context = std::max<int64_t>(1, std::min(po.context, in.max_context));
    // The GPU's step workspace as run reserves it (with the profile's prefill offload).
    plan_step_workspace(cfg, in, ubatch, hw.gpu_offload_batch_threshold > 0, po);
    // The same reservations `strata run --profile` makes: the expert cache (and Engram cache)
    // out of the DRAM budget first, at the same default sizes.
    const uint64_t cache = expert_cache_mb > 0 ? mib_to_bytes(expert_cache_mb) : 0;
    const uint64_t engram_cache = engram_cache_mb > 0 ? mib_to_bytes(engram_cache_mb) : 0;
    const CachedPlacement cp = plan_with_caches(in, hw, po, cache, engram_cache);
    const Placement& p = cp.placement;
    if (json) std::cout << placement_json(in, p).dump(2) << "\n";
    else {
      std::cout << placement_text(in, hw, p);
      std::printf("caches     expert cache %s, Engram cache %s (reserved out of the DRAM budget, as strata run does)\n",
                  cp.cache_bytes ? human_bytes(cp.cache_bytes).c_str() : "none (nothing on NVMe)",
                  cp.engram_cache_bytes ? human_bytes(cp.engram_cache_bytes).c_str() : "none");
      if (hw.has_gpu()) {
        // Where the GPU tier runs: on a CUDA device when named (--gpu cuda:N), else re-planned.
        PlanOptions cpu = po;
        cpu.vram_budget_gb = 0;
        PlanInput in_cpu = in;  // run --gpu none: auto keeps V3 / R1 / V3.2's cache in bf16
        if (cache_type == "auto" && kv_bf16_by_default(cfg, false)) kv_layout(cfg, in_cpu, true);
        const std::string how = cuda_backend_built()
                                    ? "strata run --gpu cuda:N runs the GPU tier on that device; with --gpu none (the "
                                      "default) it re-plans the GPU tier onto DRAM and NVMe"
                                    : "this build has no GPU backend: strata run here re-plans the GPU tier onto DRAM "
                                      "and NVMe";
        try {
          const CachedPlacement here = plan_with_caches(in_cpu, hw, cpu, cache, engram_cache);
          std::printf("note: %s and predicts %.2f tokens/s (bound by %s)\n", how.c_str(), here.placement.tokens_per_s,
                      here.placement.bound.c_str());
        } catch (const std::exception& e) {
          std::printf("note: %s, and without the GPU the model does not fit: %s\n", how.c_str(), e.what());
        }
      }
    }
    if (!svg.empty()) write_output_file(svg, placement_svg(in, p), "--svg");
  });
}

}  // namespace strata::cli
