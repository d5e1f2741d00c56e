// strata serve --model M [--host H] [--port P] [--api-key K] [--parallel N] [--queue Q]
//              [--max-tokens T] [--alias NAME] [model options]
// The OpenAI-compatible HTTP server (runtime/serve/http_server.h) with continuous batching.
// SIGINT / SIGTERM: new requests get 503, those in flight finish (for --shutdown-grace
// seconds, then are told), and the server exits 0.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "runtime/common/error.h"
#include "runtime/generate/engine.h"
#include "runtime/model/model_files.h"
#include "runtime/serve/http_server.h"
#include "tools/cli/commands.h"

namespace strata::cli {

void register_serve(CLI::App& app) {
  static std::string model;
  static ServerOptions so;
  static EngineOptions eo;
  static double grace_s = 30;
  static ModelArgs mo;
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  cmd->add_option("-m,--model", model, "HF model directory or .gguf file")->required();
  cmd->add_option("--host", so.host, "Address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", so.port, "Port (0: any free port, printed at start)")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", so.api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/* and /metrics (default: $STRATA_API_KEY, else none)");
  cmd->add_option("--alias", so.model_name, "Model id that /v1/models lists (default: the model's folder or file name)");
  cmd->add_option("--parallel", eo.slots, "Requests generated at once (sequence slots, each with its own KV cache; -np as llama.cpp)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--queue", eo.max_queue, "Requests that may wait for a slot; more get 429")->check(CLI::Range(0, 100000));
  cmd->add_option("--prefill-chunk", eo.prefill_chunk, "Prompt tokens of one request per step (long prompts are read in "
                                                       "chunks beside the others' decoding)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-tokens", so.limits.max_tokens, "Most tokens a request may generate (and its default)")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option_function<double>(
         "--max-body-kb", [](double kb) { so.max_body_bytes = static_cast<size_t>(kb * 1024); },
         "Largest request body accepted (KiB; default 1024); larger ones get 413")
      ->check(finite_in(1, 1 << 20, "KiB"));
  cmd->add_option("--shutdown-grace", grace_s, "Seconds requests in flight may take to finish after SIGINT/SIGTERM")
      ->check(finite_in(0, 3600, "seconds"));
  add_model_options(cmd, mo);
  cmd->callback([] {
    // The signals are taken by one thread (sigwait), blocked everywhere else: every thread
    // started from here inherits the mask.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    OpenOptions oo;
    oo.require_tokenizer = true;
    const ModelFiles m = open_model(model, oo);
    auto lm = load_model(m, mo);
    if (so.api_key.empty())
      if (const char* k = std::getenv("STRATA_API_KEY")) so.api_key = k;
    if (so.model_name.empty()) {
      std::filesystem::path p(model);
      so.model_name = (p.has_filename() ? p : p.parent_path()).filename().string();
    }
    so.gpu = mo.run.opts.gpu;
    GenerationEngine engine(*lm, *m.tokenizer, eo);
    ApiServer server(engine, *lm, *m.tokenizer, so);
    const int port = server.bind();
    std::fprintf(stderr, "strata serve: %s on http://%s:%d/v1 (%d slots of %lld tokens, queue %d%s)\n",
                 so.model_name.c_str(), so.host.c_str(), port, eo.slots, static_cast<long long>(lm->context()),
                 eo.max_queue, so.api_key.empty() ? "" : ", API key required");
    std::fflush(stderr);
    std::atomic<bool> signalled{false};
    std::thread waiter([&] {
      int sig = 0;
      sigwait(&sigs, &sig);
      if (!signalled.exchange(true) && sig == SIGUSR1) return;  // the listener ended by itself
      std::fprintf(stderr, "strata serve: %s: finishing requests in flight (up to %.0f s), then exiting\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", grace_s);
      server.stop(std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000)));
    });
    server.serve();
    if (!signalled.load()) pthread_kill(waiter.native_handle(), SIGUSR1);
    waiter.join();
    const EngineStats st = engine.stats();
    std::fprintf(stderr, "strata serve: %lld requests, %lld prompt tokens, %lld generated tokens\n",
                 static_cast<long long>(st.requests), static_cast<long long>(st.prompt_tokens),
                 static_cast<long long>(st.generated_tokens));
  });
}

}  // namespace strata::cli
