// strata bench run -m M [-p 512] [-n 128] [-d 0] [-r 5] [--parallel 1,4] [--json] [model options]
// llama-bench's tests on one model: pp<P> (a prompt of P tokens in one step) and tg<N> (N
// tokens decoded one at a time, always N: no end-of-sequence), each repeated r times after a
// warm-up, mean ± sd tokens/s; with -d D each after a context of D tokens already in the cache
// (prefilled untimed: "tg32 @ d4096", llama-bench's -d, ik_llama.cpp's -gp D,N). -p, -n and -d
// take comma-separated lists as llama-bench's do (every depth with every pp and tg). Beyond them:
// tg<N> with several sequences decoding together (--parallel: continuous batching's gain), the
// bytes read per token by tier when experts go through the memory tier, and the decode bound of
// this machine's DRAM read bandwidth (measured in the same run) over the bytes one token must read.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/machine_limits.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"
#include "runtime/generate/vocab_mask.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/summary.h"
#include "tools/cli/commands.h"
#include "tools/cli/openmp_wait.h"

namespace strata::cli {
namespace {

struct Row {
  std::string test;
  int depth = 0;
  int sequences = 1;
  std::vector<double> rates;  // tokens/s per repetition
  // Routed-expert bytes per generated token by tier (tg rows, when experts go through the memory tier).
  double gpu = 0, fixed = 0, cached = 0, nvme = 0, hit = 0;
  bool tiered = false;
  double mean() const { return std::accumulate(rates.begin(), rates.end(), 0.0) / static_cast<double>(rates.size()); }
  double sd() const {
    if (rates.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double r : rates) s += (r - m) * (r - m);
    return std::sqrt(s / static_cast<double>(rates.size() - 1));
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A comma-separated list of counts in [lo, hi].
std::vector<int> parse_counts(const std::string& s, const char* flag, long lo, long hi) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long x = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || x < lo || x > hi)
      throw Error(std::string(flag) + ": '" + item + "' is not a count in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
    v.push_back(static_cast<int>(x));
  }
  if (v.empty()) throw Error(std::string(flag) + ": no count given");
  return v;
}

}  // namespace

void register_bench_run(CLI::App* bench) {
  static std::string model, parallel = "1", prompts = "512", gens = "128", depths = "0";
  static int reps = 5;
  static bool json = false;
  static ModelArgs mo;
  auto* b = bench->add_subcommand("run", "llama-bench style pp/tg tokens/s of a model, with bytes per token by tier");
  b->add_option("-m,--model", model, "HF model directory or .gguf file")->required();
  b->add_option("-p,--n-prompt", prompts, "Prompt tokens of the pp tests, comma-separated (0: none)");
  b->add_option("-n,--n-gen", gens, "Generated tokens of the tg tests, comma-separated (0: none)");
  b->add_option("-d,--n-depth", depths,
                "Tokens already in each sequence's cache when a test starts (prefilled, not timed), "
                "comma-separated: every test at every depth (0: none)");
  b->add_option("-r,--repetitions", reps, "Repetitions of each test")->check(CLI::Range(1, 1000));
  b->add_option("--parallel", parallel, "Sequences decoding together in tg tests, comma-separated (e.g. 1,4,8)");
  b->add_flag("--json", json, "Print the results as JSON");
  add_model_options(b, mo);
  b->callback([] {
    constexpr long kMaxTokens = 1 << 20;
    const std::vector<int> par = parse_counts(parallel, "--parallel", 1, 256),
                           p_list = parse_counts(prompts, "-p", 0, kMaxTokens),
                           n_list = parse_counts(gens, "-n", 0, kMaxTokens),
                           d_list = parse_counts(depths, "-d", 0, kMaxTokens);
    OpenOptions oo;
    const ModelFiles m = open_model(model, oo);
    const ModelSummary sum = summarize(m);
    const auto most = [](const std::vector<int>& v) { return int64_t{*std::max_element(v.begin(), v.end())}; };
    const int64_t need = most(d_list) + std::max(most(p_list), most(n_list));
    if (mo.context == 0) mo.context = need + 1;
    auto lm = load_model(m, mo);
    if (need > lm->context())
      throw Error("bench run: -d plus -p/-n make " + std::to_string(need) + " tokens, more than the context of " +
                  std::to_string(lm->context()) + " (--context, at most the model's max_position_embeddings)");
    // Token ids the tokenizer knows (padding rows excluded), drawn with a fixed seed.
    std::vector<int32_t> usable;
    if (m.tokenizer) {
      const VocabMask mask(*m.tokenizer, m.config.vocab_size);
      for (int32_t id = 0; id < m.config.vocab_size; ++id)
        if (mask.allowed(id)) usable.push_back(id);
    } else {
      for (int32_t id = 0; id < m.config.vocab_size; ++id) usable.push_back(id);
    }
    std::mt19937 rng(1234);
    auto draw = [&](int64_t n) {
      std::vector<int32_t> ids(static_cast<size_t>(n));
      for (int32_t& id : ids) id = usable[rng() % usable.size()];
      return ids;
    };

    std::vector<Row> rows;
    std::vector<float> logits;
    for (const int n_depth : d_list) {
      const std::string at = n_depth > 0 ? " @ d" + std::to_string(n_depth) : "";
      // A fresh sequence holding n_depth tokens (one untimed prefill, logits of the last only).
      auto start = [&](Sequence& seq) {
        seq.reset();
        if (n_depth == 0) return;
        const std::vector<int32_t> ids = draw(n_depth);
        const SequenceStep s{&seq, ids, &logits, false};
        lm->forward_batch({&s, 1});
      };
      for (const int n_prompt : p_list) {
        if (n_prompt == 0) continue;
        Row row;
        row.test = "pp" + std::to_string(n_prompt) + at;
        row.depth = n_depth;
        auto seq = lm->new_sequence();
        for (int rep = -1; rep < reps; ++rep) {  // rep -1: warm-up
          start(*seq);
          const std::vector<int32_t> ids = draw(n_prompt);
          const SequenceStep s{seq.get(), ids, &logits, false};
          const auto t0 = std::chrono::steady_clock::now();
          lm->forward_batch({&s, 1});
          if (rep >= 0) row.rates.push_back(n_prompt / seconds_since(t0));
        }
        rows.push_back(row);
      }
      for (const int n_gen : n_list) {
        if (n_gen == 0) continue;
        for (int np : par) {
          Row row;
          row.test = "tg" + std::to_string(n_gen) + at;
          row.depth = n_depth;
          row.sequences = np;
          // Expert bytes and cache uses of the timed decode steps only (not the depth's prefill).
          double gpu = 0, fixed = 0, cached = 0, nvme = 0, hits = 0, uses = 0;
          int64_t row_tokens = 0;
          std::vector<std::unique_ptr<Sequence>> seqs;
          for (int i = 0; i < np; ++i) seqs.push_back(lm->new_sequence());
          std::vector<std::vector<float>> out(static_cast<size_t>(np));
          std::vector<std::vector<int32_t>> next(static_cast<size_t>(np));
          for (int rep = -1; rep < reps; ++rep) {
            for (int i = 0; i < np; ++i) {
              start(*seqs[static_cast<size_t>(i)]);
              next[static_cast<size_t>(i)] = draw(1);
            }
            const ExpertStoreStats before = lm->experts().store_stats().value_or(ExpertStoreStats{});
            const uint64_t gpu_before = lm->experts().device_bytes_used();
            const auto t0 = std::chrono::steady_clock::now();
            for (int t = 0; t < n_gen; ++t) {
              std::vector<SequenceStep> steps;
              for (size_t i = 0; i < static_cast<size_t>(np); ++i)
                steps.push_back({seqs[i].get(), next[i], &out[i], false});
              lm->forward_batch(steps);
              for (int i = 0; i < np; ++i) {  // greedy: the argmax continues each sequence
                const auto& l = out[static_cast<size_t>(i)];
                next[static_cast<size_t>(i)] = {
                    static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin())};
              }
            }
            if (rep >= 0) {
              row.rates.push_back(static_cast<double>(n_gen) * np / seconds_since(t0));
              row_tokens += static_cast<int64_t>(n_gen) * np;
              if (const auto st = lm->experts().store_stats()) {
                row.tiered = true;
                gpu += static_cast<double>(lm->experts().device_bytes_used() - gpu_before);
                fixed += static_cast<double>(st->fixed_bytes_used - before.fixed_bytes_used);
                cached += static_cast<double>(st->cached_bytes_used - before.cached_bytes_used);
                nvme += static_cast<double>(st->bytes_read - before.bytes_read);
                hits += static_cast<double>(st->hits - before.hits);
                uses += static_cast<double>((st->hits + st->late + st->misses) -
                                            (before.hits + before.late + before.misses));
              }
            }
          }
          if (row.tiered && row_tokens > 0) {
            const double toks = static_cast<double>(row_tokens);
            row.gpu = gpu / toks;
            row.fixed = fixed / toks;
            row.cached = cached / toks;
            row.nvme = nvme / toks;
            row.hit = uses > 0 ? hits / uses : 0;
          }
          rows.push_back(row);
        }
      }
    }

    // The machine's limit, measured now: DRAM read bandwidth, and the decode rate it allows
    // when each token reads the active parameters' bytes once.
    const double bw = measure_read_bandwidth_gbps(size_t{1} << 28, 5);
    // Every tensor is read once per token, but the embedding and Engram tables (a few rows:
    // not counted), the multi-token-prediction modules (not run) and the routed experts (top-k
    // of them per layer).
    double active_bytes = 0;
    for (const auto& [cls, bytes] : sum.bytes_by_class) {
      if (cls == "embedding" || cls == "mtp" || cls == "engram") continue;
      const double share = cls != "routed_expert" ? 1.0
                                                  : static_cast<double>(m.config.num_experts_per_tok) /
                                                        static_cast<double>(std::max<int64_t>(1, m.config.n_routed_experts));
      active_bytes += static_cast<double>(bytes) * share;
    }
    const double bound = active_bytes > 0 ? bw * 1e9 / active_bytes : 0;
    const std::string name = std::filesystem::path(m.path).filename().string();
    const int threads = compute_arena_info().threads;
    if (json) {
      nlohmann::json j = {{"model", name},
                          {"arch", std::string(arch_name(m.config.arch))},
                          {"bytes", sum.tensor_bytes},
                          {"params", sum.total_params},
                          {"active_params", sum.active_params},
                          {"threads", threads},
                          {"openmp_wait_policy", openmp_wait_policy()},
                          {"dram_read_gbps", bw},
                          {"decode_bound_tokens_per_second", bound},
                          {"tests", nlohmann::json::array()}};
      for (const Row& r : rows) {
        nlohmann::json t = {{"test", r.test},         {"depth", r.depth}, {"sequences", r.sequences},
                            {"mean", r.mean()},       {"sd", r.sd()},     {"samples", r.rates}};
        if (r.tiered)
          t["expert_bytes_per_token"] = {{"gpu", r.gpu}, {"dram_fixed", r.fixed}, {"dram_cache", r.cached}, {"nvme", r.nvme},
                                         {"cache_hit", r.hit}};
        j["tests"].push_back(t);
      }
      std::cout << j.dump(2) << "\n";
      return;
    }
    const std::string backend = mo.run.opts.gpu ? "CPU+" + mo.run.opts.gpu->name() : "CPU";
    std::printf("| model | size | params | backend | threads | test | t/s |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    for (const Row& r : rows) {
      const std::string test = r.sequences > 1 ? r.test + " ×" + std::to_string(r.sequences) + " seq" : r.test;
      const double params = static_cast<double>(sum.total_params);
      std::printf("| %s | %s | %.2f %s | %s | %d | %s | %.2f ± %.2f |\n", name.c_str(),
                  human_bytes(sum.tensor_bytes).c_str(), params >= 1e9 ? params / 1e9 : params / 1e6,
                  params >= 1e9 ? "B" : "M", backend.c_str(), threads, test.c_str(), r.mean(), r.sd());
    }
    std::printf("\nDRAM read %.1f GB/s (measured now); a token reads %s of active weights: decode bound %.1f tokens/s "
                "for one sequence\n",
                bw, human_bytes(static_cast<uint64_t>(active_bytes)).c_str(), bound);
    std::printf("OpenMP wait policy (oneDNN's threads): %s\n", openmp_wait_policy());
    for (const Row& r : rows)
      if (r.tiered)
        std::printf("%s%s: routed-expert bytes per token %s%s DRAM-fixed, %s DRAM cache, %s read from NVMe; cache hit %.1f%%\n",
                    r.test.c_str(), r.sequences > 1 ? (" ×" + std::to_string(r.sequences) + " seq").c_str() : "",
                    mo.run.opts.gpu ? (human_bytes(static_cast<uint64_t>(r.gpu)) + " on " + mo.run.opts.gpu->name() + ", ").c_str() : "",
                    human_bytes(static_cast<uint64_t>(r.fixed)).c_str(), human_bytes(static_cast<uint64_t>(r.cached)).c_str(),
                    human_bytes(static_cast<uint64_t>(r.nvme)).c_str(), 100 * r.hit);
  });
}

}  // namespace strata::cli
