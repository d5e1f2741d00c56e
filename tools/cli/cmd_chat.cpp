// strata chat -m M [--system TEXT] [-n N] [--temp T] [--top-p P] [--top-k K] [--seed S] [model options]
// An interactive conversation in the model's chat format: each line typed is a user turn, the
// answer streams back. The conversation stays in the sequence's KV cache (each turn runs only
// its new tokens). /reset forgets it, /exit (or end of input) leaves; Ctrl-C stops the answer
// being written (at the prompt: leaves). Works on a terminal and on piped standard input.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>

#include "runtime/common/error.h"
#include "runtime/generate/generate.h"
#include "runtime/model/model_files.h"
#include "tools/cli/commands.h"

namespace strata::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

}  // namespace

void register_chat(CLI::App& app) {
  static std::string model, system;
  static GenerationParams gp;
  static ModelArgs mo;
  gp.max_tokens = 1024;
  gp.sampling.temperature = 0;
  auto* cmd = app.add_subcommand("chat", "Interactive multi-turn chat in the model's chat format");
  cmd->add_option("-m,--model", model, "HF model directory or .gguf file")->required();
  cmd->add_option("--system", system, "A system message before the conversation");
  cmd->add_option("-n,--n-predict", gp.max_tokens, "Tokens of one answer at most")->check(CLI::Range(1, 1 << 24));
  add_sampling_options(cmd, gp.sampling);
  cmd->add_flag("--ignore-eos", gp.ignore_eos, "Answers go on past the end-of-sequence token (until -n, Ctrl-C or the context)");
  add_model_options(cmd, mo);
  cmd->callback([] {
    require_utf8(system, "--system");
    OpenOptions oo;
    oo.require_tokenizer = true;
    const ModelFiles m = open_model(model, oo);
    const Tokenizer& tok = *m.tokenizer;
    auto lm = load_model(m, mo);
    const VocabMask mask(tok, m.config.vocab_size);
    auto seq = lm->new_sequence();
    const bool tty = ::isatty(0) && ::isatty(1);
    // Ctrl-C interrupts a blocking read too (no SA_RESTART): at the prompt it leaves.
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    if (tty) std::fprintf(stderr, "chat: type a message; /reset forgets the conversation, /exit leaves, Ctrl-C stops an answer\n");

    // The first turn: BOS, the system message and the user's, in the chat format.
    auto opening = [&](const std::string& text) { return prompt_ids(tok, text, true, system); };
    std::vector<int32_t> carry;  // tokens that close the last answer, run before the next turn
    bool fresh = true;
    std::string line;
    for (;;) {
      if (tty) std::fputs("> ", stdout), std::fflush(stdout);
      g_interrupted = false;
      if (!std::getline(std::cin, line)) break;  // end of input, or Ctrl-C at the prompt
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        seq->reset();
        carry.clear();
        fresh = true;
        if (tty) std::fprintf(stderr, "chat: conversation reset\n");
        continue;
      }
      if (line.empty()) continue;
      require_utf8(line, "the message");
      std::vector<int32_t> ids = fresh ? opening(line) : carry;
      if (!fresh)
        for (int32_t id : tok.encode("<｜User｜>" + line + "<｜Assistant｜>")) ids.push_back(id);
      if (seq->n_past() + static_cast<int64_t>(ids.size()) + 1 > seq->capacity()) {
        std::fprintf(stderr, "chat: the conversation filled the context of %lld tokens: starting over (-c for more)\n",
                     static_cast<long long>(seq->capacity()));
        seq->reset();
        ids = opening(line);
        if (static_cast<int64_t>(ids.size()) + 1 > seq->capacity()) throw Error("chat: the message does not fit the context");
      }
      fresh = false;
      const GenerateResult r = generate(*lm, *seq, tok, mask, ids, gp, [](const std::string& piece) {
        std::fputs(piece.c_str(), stdout);
        std::fflush(stdout);
        return !g_interrupted.load();
      });
      std::fputs("\n", stdout);
      std::fflush(stdout);
      if (r.finish_reason == "interrupted") std::fprintf(stderr, "chat: answer stopped\n");
      if (r.finish_reason == "length") std::fprintf(stderr, "chat: answer cut at %lld tokens (-n)\n", static_cast<long long>(r.generated));
      if (mo.verbose)
        std::fprintf(stderr, "chat: %lld + %lld tokens, %.1f tokens/s\n", static_cast<long long>(r.prompt_tokens),
                     static_cast<long long>(r.generated), r.decode_seconds > 0 ? r.generated / r.decode_seconds : 0.0);
      // Close the answer in the cache as the chat format writes it: its last token, then EOS.
      carry.clear();
      if (r.pending >= 0 && !r.eos) carry.push_back(r.pending);
      if (tok.eos_id() >= 0) carry.push_back(tok.eos_id());
      if (r.finish_reason == "context") {
        seq->reset();
        carry.clear();
        fresh = true;
        std::fprintf(stderr, "chat: the context is full: conversation reset\n");
      }
    }
    if (tty) std::fputs("\n", stdout);
  });
}

}  // namespace strata::cli
