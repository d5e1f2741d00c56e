// strata logits --model M --tokens 1,2,3 --out FILE.npy [--prefill | --decode | --chunk N] [--mla MODE]
//               [model options: --no-act-quant --experts-per-token K --min-expert-weight W]
// Writes float32 logits [n_tokens, vocab] of every position as a NumPy .npy file.
#include <algorithm>
#include <span>
#include <string>

#include "runtime/common/error.h"
#include "runtime/format/npy.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/model_files.h"
#include "tools/cli/commands.h"

namespace strata::cli {

void register_logits(CLI::App& app) {
  static std::string model, tokens, out, mla = "auto";
  static bool decode = false, prefill = false;
  static int64_t chunk = 0;
  static ModelArgs mo;
  auto* cmd = app.add_subcommand("logits", "Write the logits of every position of a token sequence (.npy)");
  cmd->add_option("--model", model, "HF model directory or .gguf file")->required();
  cmd->add_option("--tokens", tokens, "Comma-separated token ids")->required();
  cmd->add_option("--out", out, "Output .npy file")->required();
  auto* p = cmd->add_flag("--prefill", prefill, "All tokens as one batch (default)");
  auto* dec = cmd->add_flag("--decode", decode, "One token at a time through the KV cache")->excludes(p);
  cmd->add_option("--chunk", chunk, "Batches of N tokens through the caches")
      ->check(finite_in(1, 1 << 24, "tokens"))
      ->excludes(p)
      ->excludes(dec);
  cmd->add_option("--mla", mla, "MLA evaluation: auto | absorbed | decompressed")
      ->check(CLI::IsMember({"auto", "absorbed", "decompressed"}));
  add_model_options(cmd, mo);
  cmd->callback([] {
    const std::vector<int32_t> ids = parse_ids(tokens, "--tokens");
    if (ids.empty()) throw Error("--tokens: no token ids");
    const ModelFiles m = open_model(model);
    auto lm = load_model(m, mo);
    ForwardOptions fo;
    fo.mla = mla == "absorbed" ? MlaMode::Absorbed : mla == "decompressed" ? MlaMode::Decompressed : MlaMode::Auto;
    const int64_t V = m.config.vocab_size;
    std::vector<float> all, step;
    const size_t batch = decode ? 1 : chunk > 0 ? static_cast<size_t>(chunk) : ids.size();
    for (size_t i = 0; i < ids.size(); i += batch) {
      const std::span<const int32_t> part(ids.data() + i, std::min(batch, ids.size() - i));
      lm->forward(part, step, true, fo);
      all.insert(all.end(), step.begin(), step.end());
    }
    print_routing(*lm, mo);
    write_npy_f32(out, {static_cast<int64_t>(ids.size()), V}, all.data());
  });
}

}  // namespace strata::cli
