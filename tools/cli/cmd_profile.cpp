// strata profile --model M --prompts FILE --out hotness.json [--svg heat.svg] [-n N] [--chat]
//                [model options]
// Runs every prompt (prefill, then N greedy tokens) and records how often each routed expert
// of each layer is activated (the hotness file `strata plan --hotness` reads) and, for Engram
// models, how the table rows are hit.
#include <cstdio>
#include <fstream>
#include <string>

#include "memory-tier/hotness.h"
#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/generate/sampler.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/engram.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/model_files.h"
#include "tools/cli/commands.h"

namespace strata::cli {
namespace {

std::vector<std::string> read_prompts(const std::string& path) {
  std::istringstream f(read_input_file(path, "prompts file", uint64_t{256} << 20, "--prompts"));
  std::vector<std::string> prompts;
  for (std::string line; std::getline(f, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) prompts.push_back(line);
  if (prompts.empty()) throw Error(path + ": no prompts (one per line; blank lines are skipped)");
  require_utf8(f.str(), "--prompts " + path);
  return prompts;
}

void write_text(const std::string& path, const std::string& text, const char* flag) {
  write_output_file(path, text, flag);
}

}  // namespace

void register_profile(CLI::App& app) {
  static std::string model, prompts_path, out, svg;
  static int n_predict = 16;
  static bool chat = false;
  static ModelArgs mo;
  auto* cmd = app.add_subcommand("profile", "Run prompts and record how often each routed expert is used");
  cmd->add_option("--model", model, "HF model directory or .gguf file")->required();
  cmd->add_option("--prompts", prompts_path, "Text file, one prompt per line")->required();
  cmd->add_option("--out", out, "Hotness JSON to write (for strata plan --hotness)")->required();
  cmd->add_option("--svg", svg, "Also draw a heat map: layers by experts");
  cmd->add_option("-n,--n-predict", n_predict, "Greedy tokens generated after each prompt")
      ->check(finite_in(0, 1 << 20, "tokens"));
  cmd->add_flag("--chat", chat, "Wrap each prompt in the model's chat format");
  add_model_options(cmd, mo);
  cmd->callback([] {
    const std::vector<std::string> prompts = read_prompts(prompts_path);
    OpenOptions oo;
    oo.require_tokenizer = true;
    const ModelFiles m = open_model(model, oo);
    const Tokenizer& tok = *m.tokenizer;
    auto lm = load_model(m, mo);
    Sampler greedy(SamplerParams{});
    int64_t tokens = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      lm->reset();
      const std::vector<int32_t> ids = prompt_ids(tok, prompts[i], chat);
      std::vector<float> logits;
      lm->forward(ids, logits, false);
      tokens += static_cast<int64_t>(ids.size());
      for (int g = 0; g < n_predict; ++g) {
        const int32_t next = greedy.next(logits);
        if (tok.is_eos(next)) break;
        const int32_t one[1] = {next};
        lm->forward(one, logits, false);
        ++tokens;
      }
      std::fprintf(stderr, "\rprofile: prompt %zu/%zu, %lld tokens", i + 1, prompts.size(),
                   static_cast<long long>(tokens));
    }
    std::fputs("\n", stderr);

    Hotness h;
    h.model = m.index.path().filename().string();
    h.tokens = tokens;
    h.counts = lm->experts().counts();
    h.layer_tokens = lm->experts().tokens();
    for (size_t l = 0; l < h.counts.size(); ++l)
      if (h.layer_tokens[l] == 0) h.counts[l].clear();  // not a MoE layer
    nlohmann::json j = hotness_json(h);
    // Engram row hits: per Engram layer, row reads and how they fall over equal ranges of its
    // table (Engram::kRowBins bins).
    if (const Engram* eg = lm->engram()) {
      j["engram"] = nlohmann::json::array();
      for (int layer : eg->layer_ids()) {
        const auto hist = eg->row_histogram(layer);
        j["engram"].push_back({{"layer", layer},
                               {"table_rows", eg->table(layer).rows()},
                               {"row_reads", eg->row_reads(layer)},
                               {"row_histogram", std::vector<int64_t>(hist.begin(), hist.end())}});
      }
    }
    check_output_paths({{out, "--out"}, {svg, "--svg"}});
    write_text(out, j.dump(1) + "\n", "--out");
    if (!svg.empty()) write_text(svg, hotness_svg(h), "--svg");
    std::printf("%lld tokens over %zu prompts; half of all expert activations fall on %.1f%% of the "
                "(layer, expert) pairs, 90%% on %.1f%%\nwrote %s%s%s\n",
                static_cast<long long>(tokens), prompts.size(), 100 * h.concentration(0.5),
                100 * h.concentration(0.9), out.c_str(), svg.empty() ? "" : " and ", svg.c_str());
    print_routing(*lm, mo);
  });
}

}  // namespace strata::cli
