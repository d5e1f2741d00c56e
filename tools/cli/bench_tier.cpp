// strata bench tier --model M --cache-mb N [--prompt TEXT] [-n N] [--json] [model options]
// Decode with the routed experts streamed from disk through a DRAM cache of N MiB, next to
// the speed the bytes it actually moved allow at this machine's disk and DRAM read bandwidth,
// both measured in the same run: bound = max(disk bytes / disk GB/s, DRAM bytes / DRAM GB/s)
// per decoded token (the two overlap).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cpu-kernels/machine_limits.h"
#include "memory-tier/expert_store.h"
#include "memory-tier/range_reader.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"
#include "runtime/generate/sampler.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/plan_items.h"
#include "tools/cli/commands.h"
#include "tools/cli/disk_timing.h"

namespace strata::cli {
namespace {

// O_DIRECT reads of up to 2 GiB of the model's largest file with the store's concurrency
// (ExpertStoreOptions::io_threads readers), best of two.
double disk_read_gbps(const WeightIndex& index) {
  const IndexedFile* big = &index.files().front();
  for (const IndexedFile& f : index.files())
    if (f.size > big->size) big = &f;
  return time_sequential_read(big->path, 1 << 20, RangeReaderOptions{}.queue_depth, ExpertStoreOptions{}.io_threads,
                              uint64_t{2} << 30, 2)
      .gb_per_s;
}

}  // namespace

void register_bench_tier(CLI::App* bench) {
  static std::string model, prompt = "The memory hierarchy of a computer";
  static double cache_mb = 0;
  static int n_predict = 32;
  static bool json = false;
  static ModelArgs mo;
  auto* t = bench->add_subcommand("tier", "Decode with experts streamed from disk, next to the bound of the bytes moved");
  t->add_option("--model", model, "HF model directory or .gguf file")->required();
  t->add_option("--cache-mb", cache_mb, "DRAM cache for the routed experts, MiB")->required()->check(mib_size());
  t->add_option("--prompt,-p", prompt, "Prompt text");
  t->add_option("-n,--n-predict", n_predict, "Greedy tokens to decode")->check(finite_in(1, 1 << 20, "tokens"));
  t->add_flag("--json", json, "Print the result as JSON");
  add_model_options(t, mo);
  t->callback([] {
    OpenOptions oo;
    oo.require_tokenizer = true;
    const ModelFiles m = open_model(model, oo);
    const double dram_bw = measure_read_bandwidth_gbps();
    double disk_bw = disk_read_gbps(m.index);
    // Bytes of the tensors every token reads besides the routed experts (the planner's count).
    double dense_bytes = 0;
    for (const PlanItem& it : plan_input_from_model(m).items)
      if (it.expert < 0) dense_bytes += static_cast<double>(it.bytes) * it.reads_per_token;

    mo.run.opts.expert_cache_bytes = mib_to_bytes(cache_mb);
    auto lm = load_model(m, mo);
    const Tokenizer& tok = *m.tokenizer;
    const std::vector<int32_t> ids = prompt_ids(tok, prompt, false);
    std::vector<float> logits;
    lm->forward(ids, logits, false);
    const ExpertStoreStats s0 = *lm->experts().store_stats();
    Sampler greedy(SamplerParams{});
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n_predict; ++i) {
      const int32_t one[1] = {greedy.next(logits)};
      lm->forward(one, logits, false);
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ExpertStoreStats s1 = *lm->experts().store_stats();
    // A drive's rate drifts: the bound uses the best of a measurement before and after.
    disk_bw = std::max(disk_bw, disk_read_gbps(m.index));
    if (disk_bw <= 0)
      throw Error(m.index.path().string() + ": the disk could not be measured on this model (its largest file is "
                                            "smaller than one 1 MiB read): bench tier needs a model of some size");
    const double n = n_predict;
    const double disk = double(s1.bytes_read - s0.bytes_read) / n;
    const double dram = dense_bytes + double(s1.cached_bytes_used - s0.cached_bytes_used + s1.fixed_bytes_used -
                                             s0.fixed_bytes_used) / n;
    const double t_disk = disk / (disk_bw * 1e9), t_dram = dram / (dram_bw * 1e9);
    const double bound_s = std::max(t_disk, t_dram), tok_s = n / dt;
    const double uses = double((s1.hits + s1.late + s1.misses) - (s0.hits + s0.late + s0.misses));
    const double hit = uses > 0 ? double(s1.hits - s0.hits) / uses : 0;
    const double stall = (s1.stall_seconds - s0.stall_seconds) / n;
    if (json) {
      std::cout << nlohmann::json{{"model", m.index.path().string()},
                                  {"cache_bytes", mo.run.opts.expert_cache_bytes},
                                  {"disk_read_gb_per_s", disk_bw},
                                  {"dram_read_gb_per_s", dram_bw},
                                  {"decode_tokens", n_predict},
                                  {"tokens_per_s", tok_s},
                                  {"disk_bytes_per_token", disk},
                                  {"dram_bytes_per_token", dram},
                                  {"bound_tokens_per_s", bound_s > 0 ? 1 / bound_s : 0.0},
                                  {"bound_by", t_disk >= t_dram ? "disk" : "dram"},
                                  {"ratio", bound_s * tok_s},
                                  {"cache_hit_rate", hit},
                                  {"stall_s_per_token", stall}}
                       .dump(2)
                << "\n";
      return;
    }
    std::printf("disk read %.2f GB/s (O_DIRECT, best of runs before and after); DRAM read %.1f GB/s (measured now)\n",
                disk_bw, dram_bw);
    std::printf("decode: %d tokens, %.2f tokens/s (%.1f ms/token); cache hit %.1f%%, stalled %.1f ms/token\n",
                n_predict, tok_s, 1e3 / tok_s, 100 * hit, 1e3 * stall);
    std::printf("moved per token: %s from disk, %s from DRAM\n", human_bytes(static_cast<uint64_t>(disk)).c_str(),
                human_bytes(static_cast<uint64_t>(dram)).c_str());
    std::printf("bound of those bytes: %.2f tokens/s (%s); measured / bound = %.1f%%\n", 1 / bound_s,
                t_disk >= t_dram ? "disk" : "DRAM", 100 * bound_s * tok_s);
    print_routing(*lm, mo);
  });
}

}  // namespace strata::cli
