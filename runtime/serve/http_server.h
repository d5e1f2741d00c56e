// `strata serve`: the OpenAI-compatible HTTP API over a GenerationEngine (cpp-httplib).
//   POST /v1/chat/completions, POST /v1/completions   (stream: server-sent events)
//   GET  /v1/models, GET /health, GET /metrics         (Prometheus text format)
// With an API key, /v1/* and /metrics need "Authorization: Bearer KEY" (401 otherwise);
// /health stays open for load balancers. A full queue answers 429, a body past the limit 413,
// a request while shutting down 503. A streaming client that goes away cancels its request.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/generate/engine.h"
#include "runtime/serve/openai_api.h"

namespace httplib {
class Server;
}

namespace strata {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port (see port())
  std::string api_key;          // empty: no authentication
  std::string model_name;       // the id /v1/models lists and responses carry
  size_t max_body_bytes = 1 << 20;
  ApiLimits limits;
  int http_threads = 64;        // connections served at once (streams hold one each)
  std::shared_ptr<Device> gpu;  // the device running the plan's GPU tier, for /metrics (null: none)
};

class ApiServer {
 public:
  // The engine, model and tokenizer must outlive the server.
  ApiServer(GenerationEngine& engine, const CausalLM& lm, const Tokenizer& tok, ServerOptions opts);
  ~ApiServer();
  // Binds the address; throws strata::Error naming it when that fails. Returns the port.
  int bind();
  // Serves until stop(); returns then.
  void serve();
  // Refuses new requests (503), lets the engine finish those in flight for `grace`, then
  // stops the listener. Safe from any thread.
  void stop(std::chrono::milliseconds grace);
  int port() const { return port_; }

 private:
  void routes();
  std::string metrics() const;

  GenerationEngine& engine_;
  const CausalLM& lm_;
  const Tokenizer& tok_;
  ServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<bool> closing_{false};
  std::atomic<int64_t> next_id_{0};
  std::shared_ptr<std::atomic<int>> in_flight_ = std::make_shared<std::atomic<int>>(0);  // responses not yet written
  int port_ = 0;
  int64_t started_ = 0;
};

}  // namespace strata
