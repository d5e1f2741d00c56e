// strata perplexity -m M -f TEXT [-c 512] [--chunks N] [-b 512]
//                   [--kl-divergence-base FILE | --kl-divergence FILE] [model options]
// Perplexity over a text, chunked and scored as llama-perplexity does (perplexity.h), so the
// two can be compared on one file and one text; with a base file from a reference run (the
// full-precision model, say), the KL divergence of this model's next-token distributions.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/generate/perplexity.h"
#include "runtime/model/model_files.h"
#include "tools/cli/commands.h"

namespace strata::cli {
namespace {

// The text to tokenize. With --chunks, the max(2, chunks) · n_ctx tokens scored (llama-perplexity
// needs two chunks of text at least) come from the first bytes of the file: no token is longer
// than the tokenizer's longest, so twice that many bytes hold them with the rest of the file
// far past them, and a file of gigabytes is not tokenized for one chunk. The cut is moved back
// to a character's start (the bytes read stay valid UTF-8); the pieces near it may tokenize
// otherwise than in the whole file, but those tokens lie past the ones scored.
std::string scored_text(const std::string& path, const Tokenizer& tok, int64_t n_ctx, int64_t chunks) {
  if (chunks <= 0) return read_input_file(path, "text file", uint64_t{1} << 30, "-f");
  size_t longest = 1;
  for (size_t id = 0; id < tok.vocab_size(); ++id)
    longest = std::max(longest, tok.token_bytes(static_cast<int32_t>(id)).size());
  const uint64_t tokens = static_cast<uint64_t>(std::max<int64_t>(2, chunks) * n_ctx);
  const uint64_t bytes = 2 * tokens * longest + 4096;
  std::string text = read_input_prefix(path, "text file", bytes, "-f");
  if (text.size() == bytes) {  // cut: drop the character it splits
    size_t lead = text.size();
    while (lead > 0 && text.size() - lead < 3 && (static_cast<unsigned char>(text[lead - 1]) & 0xC0) == 0x80) --lead;
    if (lead > 0) {
      const auto b = static_cast<unsigned char>(text[lead - 1]);
      const size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
      if (text.size() - (lead - 1) < len) text.resize(lead - 1);
    }
  }
  return text;
}

}  // namespace

void register_perplexity(CLI::App& app) {
  static std::string model, text_file, save_base, kl_base;
  static int64_t chunks = 0, batch = 512;
  static ModelArgs mo;
  auto* cmd = app.add_subcommand("perplexity", "Perplexity over a text (llama-perplexity's chunking and scoring), "
                                               "and KL divergence against a base run");
  cmd->add_option("-m,--model", model, "HF model directory or .gguf file")->required();
  cmd->add_option("-f,--file", text_file, "The text (UTF-8); with --kl-divergence, the base file's tokens are used");
  cmd->add_option("--chunks", chunks, "Evaluate at most N chunks (default: every whole chunk of the text)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("-b,--batch-size", batch, "Tokens per forward step within a chunk (default 512)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  auto* save = cmd->add_option("--kl-divergence-base", save_base,
                               "Write every scored position's log-probabilities here (the base of a later "
                               "--kl-divergence run)");
  cmd->add_option("--kl-divergence", kl_base, "Compare with the base run written by --kl-divergence-base")->excludes(save);
  add_model_options(cmd, mo);
  cmd->callback([] {
    if (text_file.empty() && kl_base.empty()) throw Error("perplexity: give the text with -f FILE");
    if (!save_base.empty()) check_output_path(save_base, "--kl-divergence-base");
    std::unique_ptr<LogprobReader> base;
    if (!kl_base.empty()) base = std::make_unique<LogprobReader>(kl_base);
    OpenOptions oo;
    oo.require_tokenizer = !text_file.empty();
    const ModelFiles m = open_model(model, oo);
    PerplexityOptions po;
    po.n_ctx = base ? base->header().n_ctx : mo.context > 0 ? mo.context : 512;
    if (base && mo.context > 0 && mo.context != po.n_ctx)
      throw Error("-c " + std::to_string(mo.context) + ": the base file " + kl_base + " was written with -c " +
                  std::to_string(po.n_ctx));
    po.max_chunks = chunks;
    po.batch = batch;
    PerplexityChunks ch;
    if (!text_file.empty()) {
      const Tokenizer& tok = *m.tokenizer;
      const std::string text = scored_text(text_file, tok, po.n_ctx, chunks);
      require_utf8(text, "-f " + text_file);
      std::vector<int32_t> ids;
      const int32_t bos = tok.add_bos() ? tok.bos_id() : -1;
      if (bos >= 0) ids.push_back(bos);
      for (int32_t id : tok.encode(text)) ids.push_back(id);
      ch = perplexity_chunks(ids, bos, po);
    } else {
      // The base run's own tokens (as llama-perplexity's KL mode): no text needed.
      ch.n_ctx = po.n_ctx;
      ch.n_chunks = base->header().n_chunks;
      if (chunks > 0 && chunks < ch.n_chunks) ch.n_chunks = chunks;
      ch.tokens.assign(base->tokens().begin(), base->tokens().begin() + ch.n_chunks * ch.n_ctx);
    }
    mo.context = ch.n_ctx;  // the sequence's reservation: one chunk
    auto lm = load_model(m, mo);
    std::unique_ptr<LogprobWriter> writer;
    if (!save_base.empty())
      writer = std::make_unique<LogprobWriter>(
          save_base, "--kl-divergence-base",
          LogprobHeader{static_cast<uint32_t>(m.config.vocab_size), static_cast<uint32_t>(ch.n_ctx),
                        static_cast<uint32_t>(ch.n_chunks)},
          ch.tokens);
    std::fprintf(stderr, "perplexity: %lld chunks of %lld tokens, %lld scored per chunk, batches of %lld\n",
                 static_cast<long long>(ch.n_chunks), static_cast<long long>(ch.n_ctx),
                 static_cast<long long>(ch.n_ctx - 1 - ch.n_ctx / 2), static_cast<long long>(std::min(batch, ch.n_ctx)));
    const auto t0 = std::chrono::steady_clock::now();
    const PerplexityStats st = perplexity(*lm, ch, po, writer.get(), base.get(), [](int64_t i, double ppl) {
      std::printf("%s[%lld]%.4f", i ? "," : "", static_cast<long long>(i + 1), ppl);
      std::fflush(stdout);
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", st.ppl, st.ppl_err);
    if (st.kl) {
      const KlStats& k = *st.kl;
      std::printf("Mean PPL(Q)          : %.6f\n", st.ppl);
      std::printf("Mean PPL(base)       : %.6f\n", k.base_ppl);
      std::printf("ln(PPL(Q)/PPL(base)) : %.6f\n", k.ln_ppl_ratio);
      std::printf("Mean KLD             : %.6f +/- %.6f\n", k.kld_mean, k.kld_err);
      std::printf("Maximum KLD          : %.6f\n", k.kld_max);
      std::printf("99.9%% KLD            : %.6f\n", k.kld_p999);
      std::printf("99.0%% KLD            : %.6f\n", k.kld_p99);
      std::printf("90.0%% KLD            : %.6f\n", k.kld_p90);
      std::printf("Median KLD           : %.6f\n", k.kld_median);
      std::printf("Same top token       : %.3f %%\n", 100 * k.same_top);
      std::printf("RMS delta p          : %.3f %%\n", 100 * k.rms_dp);
    }
    if (writer) writer->commit();
    std::fprintf(stderr, "perplexity: %lld positions scored in %.2f s (%.1f tokens/s evaluated)\n",
                 static_cast<long long>(st.scored), secs, static_cast<double>(st.chunks * ch.n_ctx) / secs);
    print_routing(*lm, mo);
  });
}

}  // namespace strata::cli
