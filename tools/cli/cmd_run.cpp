// strata run --model M --prompt TEXT [-n N] [--temp T] [--top-p P] [--top-k K] [--seed S] [--chat]
//            [model options: --no-act-quant --experts-per-token K --min-expert-weight W]
// Streams the generated text to stdout; timing to stderr.
#include <chrono>
#include <cstdio>
#include <string>

#include "runtime/common/error.h"
#include "runtime/generate/sampler.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/model_files.h"
#include "tools/cli/commands.h"

namespace strata::cli {

void register_run(CLI::App& app) {
  static std::string model, prompt;
  static int n_predict = 64;
  static SamplerParams sp;
  static bool chat = false;
  static ModelArgs mo;
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt (streamed to stdout)");
  cmd->add_option("--model", model, "HF model directory or .gguf file")->required();
  cmd->add_option("--prompt,-p", prompt, "Prompt text")->required();
  cmd->add_option("-n,--n-predict", n_predict, "Tokens to generate at most")->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", sp.temperature, "Sampling temperature (0: greedy)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", sp.top_p, "Nucleus sampling threshold in (0, 1]")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--top-k", sp.top_k, "Sample among the K most likely tokens (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", sp.seed, "Random seed of the sampler");
  cmd->add_flag("--chat", chat, "Wrap the prompt in the model's chat format as a user message");
  add_model_options(cmd, mo);
  cmd->callback([] {
    OpenOptions oo;
    oo.require_tokenizer = true;
    const ModelFiles m = open_model(model, oo);
    const Tokenizer& tok = *m.tokenizer;
    auto lm = load_model(m, mo);
    Sampler sampler(sp);

    require_utf8(prompt, "--prompt");
    const std::vector<int32_t> ids = prompt_ids(tok, prompt, chat);
    if (ids.empty()) throw Error("--prompt: the prompt encodes to no tokens");

    using clock = std::chrono::steady_clock;
    std::vector<float> logits;
    const auto t0 = clock::now();
    lm->forward(ids, logits, false);
    const auto t1 = clock::now();

    StreamDecoder out(tok);
    int generated = 0;
    for (; generated < n_predict; ++generated) {
      const int32_t next = sampler.next(logits);
      if (next == tok.eos_id()) break;
      std::fputs(out.push(next).c_str(), stdout);
      std::fflush(stdout);
      if (generated + 1 < n_predict) {
        const int32_t one[1] = {next};
        lm->forward(one, logits, false);
      }
    }
    std::fputs(out.flush().c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);  // the text ends before the timing lines on stderr
    const auto t2 = clock::now();
    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double decode_s = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr, "prefill: %zu tokens in %.3f s (%.1f tokens/s)\n", ids.size(), prefill_s,
                 static_cast<double>(ids.size()) / prefill_s);
    if (generated > 0)
      std::fprintf(stderr, "decode:  %d tokens in %.3f s (%.1f tokens/s, %.2f ms/token)\n", generated, decode_s,
                   generated / decode_s, 1e3 * decode_s / generated);
    print_routing(*lm, mo);
  });
}

}  // namespace strata::cli
