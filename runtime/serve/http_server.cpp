#include "runtime/serve/http_server.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <sstream>
#include <thread>

#include "runtime/backend/device.h"
#include "runtime/common/error.h"
#include "runtime/common/json_file.h"
#include "runtime/model/expert_source.h"

namespace strata {
namespace {

using json = nlohmann::json;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// JSON text of a reply: bytes that are not UTF-8 (a request's own bad bytes, quoted back in an
// error) become U+FFFD instead of failing the reply.
std::string text_of(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(text_of(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& type,
                const std::string& param = {}) {
  send_json(res, status, error_body(message, type, param));
}

// Events of one request, from the engine's thread to the HTTP thread serving it.
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<GenerationEvent> events;
  std::atomic<bool> gone{false};  // the client left: the engine cancels at its next token

  bool push(const GenerationEvent& e) {
    if (gone) return false;
    {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
    }
    cv.notify_one();
    return true;
  }
  GenerationEvent pop() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !events.empty(); });
    GenerationEvent e = std::move(events.front());
    events.pop_front();
    return e;
  }
};

std::string sse(const json& j) { return "data: " + text_of(j) + "\n\n"; }

}  // namespace

ApiServer::ApiServer(GenerationEngine& engine, const CausalLM& lm, const Tokenizer& tok, ServerOptions opts)
    : engine_(engine), lm_(lm), tok_(tok), opts_(std::move(opts)), http_(std::make_unique<httplib::Server>()) {
  opts_.limits.context = engine_.context();
  started_ = unix_now();
  const int threads = opts_.http_threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(opts_.max_body_bytes);
  routes();
}

ApiServer::~ApiServer() = default;

int ApiServer::bind() {
  const int port = opts_.port == 0 ? http_->bind_to_any_port(opts_.host) : (http_->bind_to_port(opts_.host, opts_.port) ? opts_.port : -1);
  if (port < 0)
    throw Error("serve: cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) +
                " (address in use, not an address of this machine, or a privileged port)");
  port_ = port;
  return port;
}

void ApiServer::serve() { http_->listen_after_bind(); }

void ApiServer::stop(std::chrono::milliseconds grace) {
  closing_ = true;
  engine_.shutdown(grace);
  // Every request now has its last event; let the connections write them before the
  // listener closes them (bounded: a client that stopped reading does not hold the exit).
  for (int i = 0; i < 500 && in_flight_->load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http_->stop();
}

void ApiServer::routes() {
  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    if (opts_.api_key.empty()) return true;
    if (req.get_header_value("Authorization") == "Bearer " + opts_.api_key) return true;
    send_error(res, 401, "missing or wrong API key (Authorization: Bearer KEY)", "authentication_error");
    return false;
  };

  http_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (closing_) return send_json(res, 503, {{"status", "shutting down"}});
    send_json(res, 200, {{"status", "ok"}});
  });

  http_->Get("/v1/models", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    send_json(res, 200,
              {{"object", "list"},
               {"data", json::array({{{"id", opts_.model_name},
                                      {"object", "model"},
                                      {"created", started_},
                                      {"owned_by", "strata"},
                                      {"context_length", engine_.context()}}})}});
  });

  http_->Get("/metrics", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    res.set_content(metrics(), "text/plain; version=0.0.4");
  });

  auto completions = [this, authorized](bool chat) {
    return [this, authorized, chat](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      if (closing_) return send_error(res, 503, "the server is shutting down", "server_error");
      ApiRequest r;
      try {
        const json body = parse_json_bounded(req.body, "request body");
        r = parse_api_request(body, chat, tok_, opts_.limits);
      } catch (const ApiError& e) {
        return send_error(res, e.status, e.what(), "invalid_request_error", e.param);
      } catch (const std::exception& e) {
        return send_error(res, 400, e.what(), "invalid_request_error");
      }
      auto ch = std::make_shared<Channel>();
      const auto status = engine_.submit(r.prompt, r.params, [ch](const GenerationEvent& e) { return ch->push(e); });
      if (status != GenerationEngine::Submit::Queued) {
        const int code = status == GenerationEngine::Submit::QueueFull ? 429
                         : status == GenerationEngine::Submit::Closed  ? 503
                                                                       : 400;
        return send_error(res, code, submit_error(status), code == 400 ? "invalid_request_error" : "server_error");
      }
      // Counted until its response is written (or the client is gone).
      ++*in_flight_;
      struct Done {
        explicit Done(std::shared_ptr<std::atomic<int>> c) : n(std::move(c)) {}
        Done(const Done&) = delete;
        Done& operator=(const Done&) = delete;
        ~Done() { --*n; }
        std::shared_ptr<std::atomic<int>> n;
      };
      const std::string id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(started_) + "-" +
                             std::to_string(next_id_++);
      const int64_t created = unix_now();
      const std::string model = opts_.model_name;
      if (!r.stream) {
        const Done done(in_flight_);
        std::string text;
        for (;;) {
          GenerationEvent e = ch->pop();
          text += e.text;
          if (!e.done) continue;
          if (e.finish_reason == "error" || e.finish_reason == "cancelled")
            return send_error(res, e.finish_reason == "error" ? 500 : 503, e.error.empty() ? "cancelled" : e.error,
                              "server_error");
          return send_json(res, 200,
                           completion_body(chat, id, created, model, text, e.finish_reason, e.prompt_tokens,
                                           e.completion_tokens));
        }
      }
      const bool usage = r.include_usage;
      auto first = std::make_shared<bool>(true);
      auto done = std::make_shared<Done>(in_flight_);  // released with the provider
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [ch, chat, id, created, model, usage, first, done](size_t, httplib::DataSink& sink) {
            GenerationEvent e = ch->pop();
            auto write = [&](const std::string& s) {
              if (sink.write(s.data(), s.size())) return true;
              ch->gone = true;  // the client left
              return false;
            };
            if (!e.text.empty() || (*first && chat)) {
              if (!write(sse(stream_chunk(chat, id, created, model, e.text, "", *first)))) return false;
              *first = false;
            }
            if (!e.done) return true;
            if (e.finish_reason == "error" || e.finish_reason == "cancelled") {
              if (!write(sse(error_body(e.error.empty() ? "cancelled" : e.error, "server_error")))) return false;
            } else {
              if (!write(sse(stream_chunk(chat, id, created, model, "", e.finish_reason, false)))) return false;
              if (usage && !write(sse(usage_chunk(chat, id, created, model, e.prompt_tokens, e.completion_tokens))))
                return false;
            }
            if (!write("data: [DONE]\n\n")) return false;
            sink.done();
            return true;
          },
          [ch](bool) { ch->gone = true; });
    };
  };
  http_->Post("/v1/chat/completions", completions(true));
  http_->Post("/v1/completions", completions(false));
  // Paths without the /v1 prefix, as llama.cpp's server also accepts them.
  http_->Post("/chat/completions", completions(true));
  http_->Post("/completions", completions(false));

  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, what, "server_error");
  });
  // Two Content-Length headers make the body's end ambiguous (a request-smuggling pattern).
  http_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value_count("Content-Length") <= 1) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, 400, "the request has " + std::to_string(req.get_header_value_count("Content-Length")) +
                             " Content-Length headers", "invalid_request_error");
    return httplib::Server::HandlerResponse::Handled;
  });
  http_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string length = req.get_header_value("Content-Length");
    const bool bad_length = !length.empty() && length.find_first_not_of("0123456789") != std::string::npos;
    const std::string msg = res.status == 404 ? "no such endpoint"
                            : bad_length      ? "Content-Length '" + length + "' is not a byte count"
                            : res.status == 413
                                ? "the request body is larger than the server accepts (--max-body)"
                                : res.status == 400 ? "malformed HTTP request (its request line or headers)"
                                                    : "request failed";
    send_error(res, bad_length ? 400 : res.status, msg, "invalid_request_error");
  });
}

std::string ApiServer::metrics() const {
  const EngineStats s = engine_.stats();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help, double v) {
    o << "# HELP strata_" << name << " " << help << "\n# TYPE strata_" << name << " " << type << "\nstrata_" << name
      << " " << v << "\n";
  };
  metric("requests_total", "counter", "Requests accepted", static_cast<double>(s.requests));
  metric("requests_rejected_total", "counter", "Requests refused with 429 (queue full)", static_cast<double>(s.rejected));
  metric("requests_cancelled_total", "counter", "Requests cancelled (client gone or shutdown)",
         static_cast<double>(s.cancelled));
  metric("prompt_tokens_total", "counter", "Prompt tokens processed", static_cast<double>(s.prompt_tokens));
  metric("generated_tokens_total", "counter", "Tokens generated", static_cast<double>(s.generated_tokens));
  metric("prefill_seconds_total", "counter", "Time in steps that read prompt tokens", s.prefill_seconds);
  metric("decode_seconds_total", "counter", "Time in decode-only steps", s.decode_seconds);
  metric("prefill_tokens_per_second", "gauge", "Prompt tokens per second of prefill steps",
         s.prefill_seconds > 0 ? static_cast<double>(s.prompt_tokens) / s.prefill_seconds : 0);
  metric("decode_tokens_per_second", "gauge", "Generated tokens per second of decode-only steps (all sequences)",
         s.decode_seconds > 0 ? static_cast<double>(s.generated_tokens) / s.decode_seconds : 0);
  metric("steps_total", "counter", "Forward steps run", static_cast<double>(s.steps));
  metric("queue_depth", "gauge", "Requests waiting for a slot", static_cast<double>(s.queued));
  metric("active_sequences", "gauge", "Requests holding a slot", static_cast<double>(s.active));
  metric("slots", "gauge", "Sequence slots", static_cast<double>(s.slots));
  metric("max_batch", "gauge", "Most sequences in one step so far", static_cast<double>(s.max_batch));
  if (const auto st = lm_.experts().store_stats()) {
    o << "# HELP strata_expert_bytes_total Routed-expert bytes used, by tier\n# TYPE strata_expert_bytes_total counter\n";
    o << "strata_expert_bytes_total{tier=\"dram_fixed\"} " << st->fixed_bytes_used << "\n";
    o << "strata_expert_bytes_total{tier=\"dram_cache\"} " << st->cached_bytes_used << "\n";
    o << "strata_expert_bytes_total{tier=\"nvme\"} " << st->bytes_read << "\n";
    const double uses = static_cast<double>(st->hits + st->late + st->misses);
    metric("expert_cache_hit_ratio", "gauge", "Expert cache uses served from DRAM without waiting",
           uses > 0 ? static_cast<double>(st->hits) / uses : 0);
  }
  // Busy time per compute device: the CPU runs every step (its share is the steps' share of wall
  // time); a GPU device (--gpu sim here; no CUDA forward pass in this build) its queue's work.
  const double up = static_cast<double>(std::max<int64_t>(1, unix_now() - started_));
  const double cpu_s = s.prefill_seconds + s.decode_seconds, gpu_s = opts_.gpu ? opts_.gpu->busy_seconds() : 0;
  metric("cpu_busy_ratio", "gauge", "Share of wall time spent in forward steps (CPU)", std::min(1.0, cpu_s / up));
  metric("gpu_busy_ratio", "gauge", "Share of wall time the GPU device computed (0 without one)",
         std::min(1.0, gpu_s / up));
  o << "# HELP strata_device_busy_seconds_total Seconds each compute device spent computing (the CPU: the forward steps)\n"
       "# TYPE strata_device_busy_seconds_total counter\n"
    << "strata_device_busy_seconds_total{device=\"cpu\"} " << cpu_s << "\n";
  if (opts_.gpu) {
    o << "strata_device_busy_seconds_total{device=\"" << opts_.gpu->name() << "\"} " << gpu_s << "\n";
    o << "# HELP strata_device_bytes_total Bytes copied to and from the GPU device\n"
         "# TYPE strata_device_bytes_total counter\n"
      << "strata_device_bytes_total{device=\"" << opts_.gpu->name() << "\",direction=\"in\"} "
      << opts_.gpu->bytes_to_device() << "\n"
      << "strata_device_bytes_total{device=\"" << opts_.gpu->name() << "\",direction=\"out\"} "
      << opts_.gpu->bytes_to_host() << "\n";
  }
  // The MoE layers with device work: how long the CPU's and the device's shares ran, and at once.
  const ScheduleStats& sc = s.schedule;
  metric("moe_cpu_seconds_total", "counter", "CPU time of the MoE layer passes with device work", sc.host_s);
  metric("moe_device_seconds_total", "counter", "Device time of those passes", sc.device_s);
  metric("moe_overlap_ratio", "gauge", "Share of those passes' wall time when the CPU and the device were both busy",
         sc.span_s > 0 ? sc.both_s / sc.span_s : 0);
  return o.str();
}

}  // namespace strata
