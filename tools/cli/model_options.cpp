// Flags shared by the commands that run a model, and what they print about its experts.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <string>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_dequant.h"
#include "runtime/backend/gpu_choice.h"
#include "runtime/context/compute_context.h"
#include "runtime/backend/schedule_stats.h"
#include "runtime/common/activity.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/expert_source.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

namespace strata::cli {

void add_gpu_layer_flags(CLI::App* cmd, std::optional<int>& gpu_layers, int& cpu_moe_layers) {
  cmd->add_option("--n-gpu-layers", gpu_layers,
                  "llama.cpp's -ngl, for the planner (--profile): only the last N layers' tensors may go on the GPU "
                  "(and the head when N exceeds the layers); 0: nothing, the KV cache in DRAM. Default: the planner "
                  "fills the GPU (attention, dense and shared tensors first, then the hottest experts)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--n-cpu-moe", cpu_moe_layers,
                  "llama.cpp's --n-cpu-moe, for the planner (--profile): the routed experts of the first N layers stay "
                  "off the GPU (in DRAM, else on NVMe)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_flag_callback("--cpu-moe", [&cpu_moe_layers] { cpu_moe_layers = 1 << 20; },
                         "llama.cpp's --cpu-moe, for the planner (--profile): no routed expert on the GPU");
}

void add_model_options(CLI::App* cmd, ModelArgs& a) {
  ModelOptions& o = a.run.opts;
  cmd->add_flag("!--no-act-quant", o.act_quant,
                "Skip DeepSeek-V4's activation quantize-dequantize steps (FP8 KV, FP4 indexer): an experiment, "
                "not the published math");
  cmd->add_flag_callback(
      "--exact-dot",
      [&a] {
        a.run.kernels.int_dot = false;
        a.run.kernels.gemm_bf16 = false;
      },
      "Exact products (slower): small batches widen integer and FP4 weights to f32 instead of multiplying "
      "them with int8-quantized activations, and prefill batches multiply in f32 where oneDNN would use BF16");
  cmd->add_flag_callback("--batch-invariant", [&a] { a.run.kernels.batch_invariant = true; },
                         "Every product takes the path one token alone takes (no GEMM for prefill batches), so a "
                         "sequence's logits and greedy text are the same alone and batched with others (slower prefill)");
  cmd->add_flag("--check-finite", o.check_finite_layers,
                "Check the activations after every layer for NaN / infinity and name the first layer that "
                "produced one (the final hidden state is always checked)");
  cmd->add_option("-t,--threads", a.run.arena.threads,
                  "Compute threads (default: the --profile's cpu.threads, else every hardware thread)")
      ->check(finite_in(1, 65536, "threads"));
  cmd->add_flag("--pin-threads", a.run.arena.pin,
                "Bind each compute thread to its own core (hwloc; default: the --profile's cpu.pin_threads)");
  cmd->add_flag("--numa-split", a.run.arena.numa_split,
                "One compute arena per NUMA node: each routed expert is computed by one node's cores and its "
                "DRAM copy bound to that node (default: the --profile's cpu.numa_split; one node: nothing to split)");
  cmd->add_option("--experts-per-token", o.experts_per_token,
                  "Routed experts per token (default: num_experts_per_tok of the config)")
      ->check(finite_in(1, 1024, "experts per token"));
  cmd->add_option("--min-expert-weight", o.min_expert_weight,
                  "Skip a routed expert whose share of the token's routed weight is below this (0: off)")
      ->check(finite_in(0.0, 0.999, "a share of the routed weight"));
  cmd->add_option_function<double>(
         "--expert-cache-mb", [&o](double mb) { o.expert_cache_bytes = mib_to_bytes(mb); },
         "Read routed experts through a DRAM cache of this many MiB, filled with io_uring + O_DIRECT "
         "(default: read in place from the memory map; with --profile: sized by the plan)")
      ->check(mib_size());
  cmd->add_flag("--expert-io-pread", o.expert_io_pread, "The expert cache reads with a pread pool, not io_uring");
  cmd->add_flag(
      "--repack", o.repack,
      "Repack the K-quant (Q2_K to Q6_K) matrices the CPU computes at load into its 16-row tiles (as "
      "llama.cpp's -rtr), one stream per 16 rows, the fastest CPU products from one token on: those read "
      "in place copied out of the memory map into DRAM of their own size, those a placement fixes in DRAM "
      "rewritten where they lie; experts read through the cache (--expert-cache-mb) and the GPU's stay "
      "as stored. Only where the CPU has AVX-512 VNNI, and not with --exact-dot or --batch-invariant "
      "(their products would read the rows back): elsewhere nothing is repacked (a note says why)");
  o.kv_auto = true;
  cmd->add_option_function<std::string>(
         "--cache-type-k",
         [&o](const std::string& t) {
           o.kv_auto = t == "auto";
           o.kv_bf16 = t == "bf16";
         },
         "The KV cache's key rows (llama.cpp's -ctk; MLA's latent cache, V4's window and compressed "
         "rows): bf16, half the memory per token and half the bytes a decode step reads from the cache, "
         "each row rounded once as it is written (on the CPU or the GPU); f32; or auto (default): bf16 "
         "where no GPU computes (--gpu none), else f32")
      ->check(CLI::IsMember({"auto", "f32", "bf16"}));
  cmd->add_option_function<double>(
         "--engram-cache-mb", [&o](double mb) { o.engram_cache_bytes = mib_to_bytes(mb); },
         "Page Engram tables through a DRAM cache of this many MiB, rows prefetched per step "
         "(default: read from the memory map; with --profile or --placement: only the tables placed on NVMe, "
         "sized by the plan unless given)")
      ->check(mib_size());
  auto* prof = cmd->add_option("--profile", a.run.profile,
                               "Place the experts as `strata plan` does on this hardware profile (name or .json): "
                               "DRAM-tier experts read into DRAM at load, NVMe-tier ones through the cache; "
                               "NVMe-tier Engram tables paged through the Engram cache");
  auto* plc = cmd->add_option("--placement", a.run.placement, "Place the experts as this `strata plan --json` output says");
  prof->excludes(plc);
  cmd->add_option("--dram-budget", a.run.dram_budget, "With --profile: DRAM budget (e.g. 2G, 512M; default: the profile's)")
      ->needs(prof);
  cmd->add_option("--vram-budget", a.run.vram_budget, "With --profile: GPU memory budget (e.g. 0, 24G)")->needs(prof);
  cmd->add_option("--hotness", a.run.hotness, "With --profile: expert hotness from `strata profile`")->needs(prof);
  cmd->add_option("-c,--ctx-size,--context", a.context,
                  "Tokens one sequence may hold: its KV cache is reserved for this many at load, and --profile "
                  "plans for it (default: the model's max_position_embeddings, at most 4096)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--ubatch,--ubatch-size", a.ubatch,
                  "Most tokens one forward pass computes at once: a longer prompt runs in pieces of this many, and "
                  "the plan sets aside the GPU workspace for this many at the full context (0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  add_gpu_layer_flags(cmd, a.run.gpu_layers, a.run.cpu_moe_layers);
  cmd->add_option("--gpu", a.run.gpu,
                  "The device that runs the plan's GPU tier: auto (none, until the CUDA backend has run on a "
                  "device), none (the GPU tier re-planned onto DRAM and NVMe), sim (a simulated GPU: its own memory "
                  "budget and queue, computed by the CPU; same logits as none), cuda:N (CUDA device N)")
      ->default_str("auto");
  cmd->add_option("--offload-batch", a.run.offload_batch,
                  "With a GPU device: a routed expert held in DRAM (or streamed from NVMe) that gets at least this "
                  "many tokens of a step is copied to the device and computed there (default: the profile's "
                  "gpu_offload_batch_threshold, 32 on the GPU profiles; 0: never)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd->add_flag("--sim-throttle", a.run.sim_throttle,
                "With --gpu sim and --profile: pace the simulated GPU's copies and products to the profile's PCIe "
                "and GPU memory rates");
  cmd->add_flag("--cuda-graphs", a.run.cuda_graphs,
                "With --gpu cuda:N: each layer's attention of a decode step (up to 8 tokens) is captured and "
                "launched as one CUDA graph, updated in place each step (its kernels run back to back)");
  cmd->add_flag("-v,--verbose", a.verbose,
                "Print how the model runs: compute threads, product kernels per weight type, tier details");
}

namespace {

// The compute arenas as the context configured them (from --threads / --pin-threads /
// --numa-split, or the profile's), when asked (-v) or when the request was adjusted.
void print_threads(const ComputeContext& ctx, bool verbose) {
  if (!ctx.arena_configured()) return;
  const ArenaInfo& info = ctx.arena();
  std::string nodes;
  if (info.nodes > 1) {
    nodes = ", routed experts spread over " + std::to_string(info.nodes) + " NUMA nodes (";
    for (int k = 0; k < info.nodes; ++k)
      nodes += (k ? " " : "") + std::to_string(compute_node_os_index(k));
    nodes += "), each computed and held by its node";
  }
  if (!verbose && info.note.empty()) return;
  std::fprintf(stderr, "compute: %d threads%s%s%s%s\n", info.threads, info.pinned ? ", each pinned to one hardware thread" : "",
               nodes.c_str(), info.note.empty() ? "" : "; ", info.note.c_str());
}

// Which product kernels the model's matrices will use at decode, in a line for the user.
std::string describe_products(const ModelFiles& m) {
  std::set<std::string> int_types, fused_types;
  for (const TensorEntry& t : m.index.tensors()) {
    if (t.shape.size() != 2) continue;
    if (qdot_supported(t.type)) {
      int_types.insert(std::string(weight_type_name(t.type)));
    } else if (has_fused_row_dot(t.type, !t.scale.empty())) {
      fused_types.insert(std::string(weight_type_name(t.type)));
    }
  }
  auto join = [](const std::set<std::string>& s) {
    std::string out;
    for (const std::string& x : s) out += (out.empty() ? "" : ", ") + x;
    return out;
  };
  std::string d;
  if (!int_types.empty())
    d = join(int_types) + (int_dot_enabled() ? " by integer dot with int8 activations (--exact-dot: widened to f32)"
                                             : " widened to f32 (--exact-dot)");
  if (!fused_types.empty())
    d += std::string(d.empty() ? "" : "; ") + join(fused_types) + " by fused dot (one or two tokens)";
  return d;
}

}  // namespace

std::unique_ptr<CausalLM> load_model(const ModelFiles& m, ModelArgs& a) {
  RunRequest r = a.run;
  r.opts.context = a.context;
  r.opts.max_step_tokens = a.ubatch;
  r.profiles_dir = profiles_dir();
  const ComputeContext ctx(m, r);
  a.run.opts = ctx.model_options();
  a.predicted_tokens_per_s = ctx.predicted_tokens_per_s();
  for (const std::string& n : ctx.notes()) std::fprintf(stderr, "%s\n", n.c_str());
  print_threads(ctx, a.verbose);
  if (a.verbose) std::fprintf(stderr, "kernel choices: %s\n", kernel_choices().describe().c_str());
  if (a.verbose)
    std::fprintf(stderr, "%s: %s rows%s\n",
                 m.config.is_v4() ? "KV cache (window and compressed keys)" : "MLA latent cache",
                 a.run.opts.kv_bf16 ? "bf16" : "f32", a.run.opts.kv_auto ? " (--cache-type-k auto)" : "");
  if (const std::string d = describe_products(m); !d.empty() && a.verbose)
    std::fprintf(stderr, "products at decode: %s\n", d.c_str());
  if (batch_invariant())
    std::fprintf(stderr, "batch-invariant: every product takes the path of one token (no GEMM for prefill)\n");
  else if (gemm_min_batch() != INT64_MAX && a.verbose)
    std::fprintf(stderr, "products in batches of %lld+ tokens%s: oneDNN %s GEMM%s\n",
                 static_cast<long long>(gemm_min_batch()),
                 int_dot_enabled() && int_dot_gemm_min_batch() != gemm_min_batch()
                     ? (" (" + std::to_string(int_dot_gemm_min_batch()) + "+ for integer-dot weights" +
                        (int_dot_gemm_min_batch(WeightType::Q4_K) == INT64_MAX ? ", never for the K-quants and Q8_0" : "") + ")")
                           .c_str()
                     : "",
                 gemm_type_name(),
                 !gemm_bf16_enabled()     ? " (--exact-dot)"
                 : gemm_bf16_available() ? " (--exact-dot: f32)"
                                         : " (no BF16 instructions or oneDNN BF16 matmul on this CPU)");
  std::unique_ptr<CausalLM> lm;
  {
    const Activity doing("loading the model (its weights' views, the DRAM-tier experts, the caches)");
    lm = ctx.load(m, terminal_progress("loading experts into DRAM"));
  }
  for (const std::string& n : lm->load_notes()) std::fprintf(stderr, "note: %s\n", n.c_str());
  if ((lm->experts().store_stats() || a.run.opts.repack) && a.verbose) std::fprintf(stderr, "experts: %s\n", lm->experts().describe().c_str());
  if (a.run.opts.gpu) print_device_holdings(*a.run.opts.gpu, a.run.opts.tensor_placement, m);
  if (const Engram* eg = lm->engram();
      eg && a.verbose && (a.run.opts.engram_cache_bytes > 0 || !a.run.opts.engram_placement.empty()))
    std::fprintf(stderr, "%s\n", describe_engram_tables(*eg, a.run.opts.engram_placement).c_str());
  const ModelConfig& c = m.config;
  const std::filesystem::path mp(m.path);
  const std::string name = (mp.has_filename() ? mp.filename() : mp.parent_path().filename()).string();  // "m/" too
  const int64_t per_token = a.run.opts.experts_per_token > 0 ? a.run.opts.experts_per_token : c.num_experts_per_tok;
  std::fprintf(stderr, "strata: %s, %s, %lld layers, %lld routed experts (%lld per token), context %lld tokens, %d CPU threads%s\n",
               name.c_str(), std::string(arch_name(c.arch)).c_str(),
               static_cast<long long>(c.num_hidden_layers),
               static_cast<long long>(c.n_routed_experts), static_cast<long long>(per_token),
               static_cast<long long>(lm->context()), compute_arena_info().threads, a.verbose ? "" : " (-v: details)");
  return lm;
}

void print_device_holdings(const Device& dev, const std::map<std::string, Tier>& tensors, const ModelFiles& m) {
  std::string held;
  const std::map<std::string, uint64_t> by_class = dev.used_by_class();
  for (const auto& [cls, bytes] : by_class) held += (held.empty() ? "" : ", ") + cls + " " + human_bytes(bytes);
  // What the plan put on the GPU that does not run there yet: said, not hidden.
  uint64_t planned = 0, placed = 0;
  for (const auto& [name, t] : tensors)
    if (t == Tier::Gpu)
      if (const TensorEntry* e = m.index.find(name)) planned += e->nbytes;
  for (const char* cls : {"attention", "shared experts", "dense layers", "head"})
    if (const auto it = by_class.find(cls); it != by_class.end()) placed += it->second;
  std::fprintf(stderr, "device %s: holds %s of %s%s\n", dev.name().c_str(), held.empty() ? "nothing" : held.c_str(),
               human_bytes(dev.capacity()).c_str(),
               planned > placed ? ("; " + human_bytes(planned - placed) +
                                   " of the plan's other GPU-tier tensors (norms, routers, mHC) run "
                                   "on the CPU")
                                      .c_str()
                                : "");
}

std::string describe_engram_tables(const Engram& eg, const std::map<int, Tier>& placement) {
  std::string d = "engram tables:";
  for (int layer : eg.layer_ids()) {
    const auto it = placement.find(layer);
    const std::string tier = it != placement.end() ? std::string(tier_name(it->second)) : "unplanned";
    const auto* t = dynamic_cast<const StoredEngramTable*>(&eg.table(layer));
    d += " layer " + std::to_string(layer) + " " + tier +
         (t                              ? " (paged through a " + human_bytes(t->cache_bytes()) + " DRAM cache)"
          : tier == "nvme" || tier == "unplanned" ? " (memory-mapped: block scales outside its rows, cannot be paged)"
                                                  : " (memory-mapped)") +
         ";";
  }
  d.pop_back();
  return d;
}

void add_sampling_options(CLI::App* cmd, SamplerParams& sp) {
  cmd->add_option("--temp", sp.temperature, "Sampling temperature (default 0: greedy; top-p/top-k apply when > 0)")
      ->check(finite_in(0, 100, "a temperature"));
  cmd->add_option("--top-p", sp.top_p, "With --temp: nucleus threshold in (0, 1]")
      ->check(finite_in(1e-6, 1, "a probability in (0, 1]"));
  cmd->add_option("--top-k", sp.top_k, "With --temp: sample among the K most likely tokens (0: all)")
      ->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--seed", sp.seed, "Random seed of the sampler")->check(finite_in(0, 1.8446744073709552e19, "a seed from 0 to 2^64 - 1"));
}

void print_routing(const CausalLM& lm, const ModelArgs& a) {
  const ExpertSource& src = lm.experts();
  if (const auto st = src.store_stats()) {
    const uint64_t acquired = st->hits + st->late + st->misses;
    const int64_t tokens = std::max<int64_t>(1, *std::max_element(src.tokens().begin(), src.tokens().end()));
    const auto per_token = [&](uint64_t b) { return human_bytes(b / static_cast<uint64_t>(tokens)); };
    const std::string gpu = src.device() ? per_token(src.device_bytes_used()) + " from " + src.device()->name() + "'s experts, " : "";
    std::fprintf(stderr, "expert traffic per token: %s%s from DRAM-fixed experts, %s from cached ones, %s read from disk\n",
                 gpu.c_str(), per_token(st->fixed_bytes_used).c_str(), per_token(st->cached_bytes_used).c_str(),
                 per_token(st->bytes_read).c_str());
    if (acquired > 0)
      std::fprintf(stderr,
                   "expert cache: %llu uses: %llu hits, %llu prefetched in flight, %llu misses (%.1f%% hit); "
                   "%llu prefetches, %llu evictions, %s read, %.3f s stalled, peak %s\n",
                   static_cast<unsigned long long>(acquired), static_cast<unsigned long long>(st->hits),
                   static_cast<unsigned long long>(st->late), static_cast<unsigned long long>(st->misses),
                   100.0 * static_cast<double>(st->hits) / static_cast<double>(acquired),
                   static_cast<unsigned long long>(st->prefetched), static_cast<unsigned long long>(st->evictions),
                   human_bytes(st->bytes_read).c_str(), st->stall_seconds, human_bytes(st->peak_bytes).c_str());
  }
  if (src.store_stats() && a.verbose) {  // where the buffers went: a detail (-v)
    const HostMemoryStats h = host_memory_stats();
    std::string why;
    const bool pinning = host_pinning_available(&why);
    std::fprintf(stderr, "host memory: NUMA policy %s; %s mapped, %s placed on NUMA nodes, %s left to the kernel; "
                 "%s page-locked for the GPU%s\n",
                 describe_numa(a.run.opts.host_memory).c_str(), human_bytes(h.mapped_bytes).c_str(),
                 human_bytes(h.numa_placed_bytes).c_str(), human_bytes(h.numa_skipped_bytes).c_str(),
                 human_bytes(h.pinned_bytes).c_str(), pinning ? "" : (" (" + why + ")").c_str());
  }
  if (const Engram* eg = lm.engram()) {
    ExpertStoreStats e;
    bool stored = false;
    for (int layer : eg->layer_ids())
      if (const auto* t = dynamic_cast<const StoredEngramTable*>(&eg->table(layer))) {
        const ExpertStoreStats s = t->stats();
        e.hits += s.hits, e.late += s.late, e.misses += s.misses, e.bytes_read += s.bytes_read;
        e.stall_seconds += s.stall_seconds;
        stored = true;
      }
    if (stored) {
      const uint64_t uses = e.hits + e.late + e.misses;
      std::fprintf(stderr, "engram cache: %llu row reads: %llu hits, %llu prefetched in flight, %llu misses; %s read, "
                   "%.3f s stalled\n",
                   static_cast<unsigned long long>(uses), static_cast<unsigned long long>(e.hits),
                   static_cast<unsigned long long>(e.late), static_cast<unsigned long long>(e.misses),
                   human_bytes(e.bytes_read).c_str(), e.stall_seconds);
    }
  }
  if (const auto& p = src.prediction_stats(); p.guessed > 0)
    std::fprintf(stderr, "next-layer prediction: precision %.1f%%, recall %.1f%% (%lld of %lld guessed experts used)\n",
                 100.0 * static_cast<double>(p.correct) / static_cast<double>(p.guessed),
                 100.0 * static_cast<double>(p.correct) / static_cast<double>(std::max<int64_t>(p.used, 1)),
                 static_cast<long long>(p.correct), static_cast<long long>(p.guessed));
  if (const Device* dev = a.run.opts.gpu.get()) {
    if (const auto o = src.offload_stats(); o.experts > 0)
      std::fprintf(stderr,
                   "prefill offload: %lld expert passes (%s of weights) copied to %s and computed there, each "
                   "copied while the one before computed%s\n",
                   static_cast<long long>(o.experts), human_bytes(o.bytes).c_str(), dev->name().c_str(),
                   dev->copy_lane_seconds() > 0
                       ? (" (copy lane busy " + std::to_string(static_cast<int>(1e3 * dev->copy_lane_seconds())) + " ms)")
                             .c_str()
                       : "");
    const ScheduleStats s = lm.schedule_stats();
    std::fprintf(stderr,
                 "devices: %s busy %.1f ms in all (%s in, %s out, peak %s held); in the %lld MoE layer passes with "
                 "device work, CPU %.1f ms and %s %.1f ms, both busy %.1f ms of their %.1f ms (overlap %.0f%%)\n",
                 dev->name().c_str(), 1e3 * dev->busy_seconds(), human_bytes(dev->bytes_to_device()).c_str(),
                 human_bytes(dev->bytes_to_host()).c_str(), human_bytes(dev->peak()).c_str(),
                 static_cast<long long>(s.passes), 1e3 * s.host_s, dev->name().c_str(), 1e3 * s.device_s, 1e3 * s.both_s,
                 1e3 * s.span_s, s.span_s > 0 ? 100.0 * s.both_s / s.span_s : 0.0);
    if (dev->graph_launches() > 0)
      std::fprintf(stderr,
                   "cuda graphs on %s: %llu launched, %llu instantiated (the others updated in place)\n",
                   dev->name().c_str(), static_cast<unsigned long long>(dev->graph_launches()),
                   static_cast<unsigned long long>(dev->graph_instantiations()));
    if (const uint64_t ws = dev->workspace_reserved(); ws > 0)
      std::fprintf(stderr, "step workspace on %s: %s reserved, at most %s in use%s\n", dev->name().c_str(),
                   human_bytes(ws).c_str(), human_bytes(dev->workspace_peak()).c_str(),
                   dev->workspace_overflows() > 0
                       ? (" (" + std::to_string(dev->workspace_overflows()) +
                          " requests past it allocated beside it: --ubatch and --ctx-size differ from the plan's?)")
                             .c_str()
                       : "");
  }
  const ModelOptions& o = a.run.opts;
  if (o.min_expert_weight <= 0) return;
  const RoutingStats s = lm.routing_stats();
  std::fprintf(stderr, "experts: %lld of %lld routed slots skipped (%.1f%%) below weight share %.3f\n",
               static_cast<long long>(s.skipped), static_cast<long long>(s.routed),
               s.routed > 0 ? 100.0 * static_cast<double>(s.skipped) / static_cast<double>(s.routed) : 0.0,
               static_cast<double>(o.min_expert_weight));
}

}  // namespace strata::cli
