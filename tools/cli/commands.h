// Each `strata` subcommand registers itself on the app; main() dispatches.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/backend/device.h"
#include "runtime/context/compute_context.h"
#include "runtime/generate/generate.h"
#include "runtime/generate/sampler.h"
#include "runtime/model/causal_lm.h"

namespace strata::cli {

void register_inspect(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_make_tiny(CLI::App& app);
void register_run(CLI::App& app);
void register_serve(CLI::App& app);
void register_chat(CLI::App& app);
void register_logits(CLI::App& app);
void register_perplexity(CLI::App& app);
void register_profile(CLI::App& app);
void register_plan(CLI::App& app);
void register_tune(CLI::App& app);
void register_bench(CLI::App& app);
void register_bench_tier(CLI::App* bench);
void register_bench_moe(CLI::App* bench);
void register_bench_run(CLI::App* bench);
void register_bench_gpu(CLI::App* bench);

// profiles/ of the source tree, or $STRATA_PROFILES.
std::filesystem::path profiles_dir();

// What every command that runs a model shares: model options and the placement of its
// experts (--profile, --dram-budget, --vram-budget, --hotness, --context, --placement,
// --expert-cache-mb, --expert-io-pread).
struct ModelArgs {
  // What the flags ask for (placement, budgets, --gpu, threads); after load_model, run.opts holds
  // the model options as the context decided them (placement, caches, GPU).
  RunRequest run;
  int64_t context = 0;       // -c: tokens per sequence (0: the model's, at most kDefaultContext)
  int64_t ubatch = kDefaultStepTokens;  // -ub: tokens per forward pass (0: no limit)
  bool verbose = false;      // -v: how the model runs, not only what it does
  double predicted_tokens_per_s = 0;    // set by load_model from the plan (--profile), for predicted vs measured
};
void add_model_options(CLI::App* cmd, ModelArgs& a);
// llama.cpp's -ngl / --n-cpu-moe / --cpu-moe as the planner's limits (planner.h: PlanOptions),
// for plan and for the commands that run a model.
void add_gpu_layer_flags(CLI::App* cmd, std::optional<int>& gpu_layers, int& cpu_moe_layers);
// Places the experts as the arguments say (printing the plan), loads the model, prints its
// load notes on stderr.
std::unique_ptr<CausalLM> load_model(const ModelFiles& m, ModelArgs& a);
// "device sim-gpu0: holds routed experts 1.2 GiB, shared experts 80 MiB of 22 GiB; ...".
void print_device_holdings(const Device& dev, const std::map<std::string, Tier>& tensors, const ModelFiles& m);
// "engram tables: layer 1 nvme (paged through a 64.00 KiB DRAM cache); layer 3 dram (memory-mapped)".
std::string describe_engram_tables(const Engram& eg, const std::map<int, Tier>& placement);
// At the end of a run, on stderr: expert traffic per tier, cache hit rate, stall time,
// prediction accuracy, and the share of routed slots skipped by --min-expert-weight.
void print_routing(const CausalLM& lm, const ModelArgs& a);

// --temp, --top-p, --top-k, --seed (run, chat).
void add_sampling_options(CLI::App* cmd, SamplerParams& sp);

// A number that must be finite and within [lo, hi] (NaN and infinities are refused; CLI11's
// own range checks let NaN through), with a message saying what was expected.
CLI::Validator finite_in(double lo, double hi, const std::string& what);
// MiB flags turned into bytes: finite, at least 4 KiB (one aligned read; less would round to
// nothing and silently turn a cache off), at most 1 PiB.
CLI::Validator mib_size();
uint64_t mib_to_bytes(double mb);

// "1,2,3" -> ids; throws strata::Error naming the flag and the first item that is not a token id.
std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag);

// Text a user typed or gave as a file must be valid UTF-8: the tokenizer would replace each
// ill-formed byte with U+FFFD without a word. Throws strata::Error naming the flag and the
// byte offset of the first ill-formed sequence.
void require_utf8(const std::string& text, const std::string& flag);

}  // namespace strata::cli
