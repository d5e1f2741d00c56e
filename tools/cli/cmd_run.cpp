// strata run -m M (-p TEXT | -p - | -f FILE) [-n N] [--temp T] [--top-p P] [--top-k K] [--seed S]
//            [--chat] [--system TEXT] [--stop S]... [--ignore-eos] [--json] [model options]
// Streams the generated text to stdout; the stop reason and timing to stderr (or everything
// as one JSON object with --json).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/generate/generate.h"
#include "runtime/model/causal_lm.h"
#include "runtime/generate/vocab_mask.h"
#include "runtime/model/model_files.h"
#include "tools/cli/commands.h"

namespace strata::cli {

void register_run(CLI::App& app) {
  static std::string model, prompt, prompt_file, system;
  static GenerationParams gp;
  static bool chat = false, json_out = false;
  static ModelArgs mo;
  gp.max_tokens = 64;
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt (streamed to stdout)");
  cmd->add_option("-m,--model", model, "HF model directory or .gguf file")->required();
  auto* p = cmd->add_option("-p,--prompt", prompt, "Prompt text ('-': read it from standard input)");
  auto* f = cmd->add_option("-f,--file", prompt_file, "Read the prompt from this file");
  p->excludes(f);
  cmd->add_option("-n,--n-predict", gp.max_tokens, "Tokens to generate at most")->check(CLI::Range(0, 1 << 24));
  add_sampling_options(cmd, gp.sampling);
  cmd->add_option("--stop", gp.stop, "Stop before this text (repeatable)");
  cmd->add_flag("--ignore-eos", gp.ignore_eos, "Generate past the end-of-sequence token (always -n tokens)");
  cmd->add_flag("--chat", chat, "Wrap the prompt in the model's chat format as a user message");
  cmd->add_option("--system", system, "With --chat: a system message before the prompt");
  cmd->add_flag("--json", json_out, "Print one JSON object (text, tokens, stop reason, timings) instead of streaming");
  add_model_options(cmd, mo);
  cmd->callback([] {
    if (prompt.empty() && prompt_file.empty()) throw Error("run: give the prompt with -p TEXT, -p - (stdin) or -f FILE");
    std::string text = prompt;
    if (!prompt_file.empty()) {
      text = read_input_file(prompt_file, "prompt file", uint64_t{1} << 30, "-f");
      require_utf8(text, "-f " + prompt_file);
      if (text.empty()) throw Error("-f " + prompt_file + ": the prompt file is empty");
    } else if (prompt == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      require_utf8(text, "the prompt on standard input");
    } else {
      require_utf8(text, "--prompt");
    }
    require_utf8(system, "--system");
    for (const std::string& s : gp.stop) require_utf8(s, "--stop");
    if (gp.sampling.temperature == 0 && (gp.sampling.top_p < 1 || gp.sampling.top_k > 0))
      std::fprintf(stderr, "note: --top-p/--top-k have no effect without --temp (greedy decoding)\n");
    OpenOptions oo;
    oo.require_tokenizer = true;
    const ModelFiles m = open_model(model, oo);
    const Tokenizer& tok = *m.tokenizer;
    auto lm = load_model(m, mo);
    const std::vector<int32_t> ids = prompt_ids(tok, text, chat, system);
    if (ids.empty()) throw Error("run: the prompt encodes to no tokens");
    const VocabMask mask(tok, m.config.vocab_size);
    auto seq = lm->new_sequence();
    std::string all;
    const GenerateResult r = generate(*lm, *seq, tok, mask, ids, gp, [&all](const std::string& piece) {
      if (json_out) {
        all += piece;
      } else {
        std::fputs(piece.c_str(), stdout);
        std::fflush(stdout);
      }
      return true;
    });
    const std::string reason = r.eos ? "eos" : r.finish_reason == "stop" ? "stop string" : r.finish_reason;
    if (json_out) {
      nlohmann::json j = {{"text", all},
                          {"stop_reason", reason},
                          {"prompt_tokens", r.prompt_tokens},
                          {"generated_tokens", r.generated},
                          {"prefill_seconds", r.prefill_seconds},
                          {"decode_seconds", r.decode_seconds},
                          {"prefill_tokens_per_second", r.prefill_seconds > 0 ? r.prompt_tokens / r.prefill_seconds : 0},
                          {"decode_tokens_per_second", r.decode_seconds > 0 ? r.generated / r.decode_seconds : 0}};
      std::cout << j.dump() << "\n";
    } else {
      std::fputs("\n", stdout);
      std::fflush(stdout);  // the text ends before the timing lines on stderr
    }
    std::fprintf(stderr, "stop: %s after %lld tokens\n", reason.c_str(), static_cast<long long>(r.generated));
    std::fprintf(stderr, "prefill: %lld tokens in %.3f s (%.1f tokens/s)\n", static_cast<long long>(r.prompt_tokens),
                 r.prefill_seconds, static_cast<double>(r.prompt_tokens) / r.prefill_seconds);
    if (r.generated > 0)
      std::fprintf(stderr, "decode:  %lld tokens in %.3f s (%.1f tokens/s, %.2f ms/token)\n",
                   static_cast<long long>(r.generated), r.decode_seconds, r.generated / r.decode_seconds,
                   1e3 * r.decode_seconds / static_cast<double>(r.generated));
    if (mo.predicted_tokens_per_s > 0 && r.generated > 0)
      std::fprintf(stderr, "decode: predicted %.2f tokens/s by the plan, measured %.2f\n", mo.predicted_tokens_per_s,
                   r.generated / r.decode_seconds);
    print_routing(*lm, mo);
  });
}

}  // namespace strata::cli
