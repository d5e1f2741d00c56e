// Continuous batching: requests share forward steps. One worker thread owns the model; each
// step it admits queued requests into free sequence slots (a pool of Sequences, each reserved
// for the model's context), then runs every active request's next tokens in one
// CausalLM::forward_batch: the next prompt chunk of those still reading their prompt, one
// token of those generating. A routed expert several requests chose is read once per step.
// Requests finish on EOS, a stop string, max_tokens or the context's end, and leave their
// slot at once; a request whose client went away is cancelled at the next step.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/backend/schedule_stats.h"
#include "runtime/generate/sampler.h"
#include "runtime/generate/vocab_mask.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata {

struct GenerationParams {
  SamplerParams sampling;
  int64_t max_tokens = 256;
  std::vector<std::string> stop;  // stop strings
  bool ignore_eos = false;        // generate past EOS (benchmarks: always the asked length)
};

// What a request hears, on the engine's thread: one event per generated token (its text, which
// may be empty while a UTF-8 sequence or a possible stop string is held back), then a final one.
struct GenerationEvent {
  std::string text;  // new text (may be empty)
  bool done = false;
  std::string finish_reason;  // when done: "stop" (EOS or a stop string), "length", "cancelled" or "error"
  std::string error;          // when finish_reason is "error"
  int64_t prompt_tokens = 0, completion_tokens = 0;
};
// Returns false when the receiver is gone: the request is cancelled.
using GenerationSink = std::function<bool(const GenerationEvent&)>;

struct EngineOptions {
  int slots = 4;                // sequences generated at once
  int max_queue = 16;           // requests waiting for a busy slot; more are refused
  int64_t prefill_chunk = 256;  // prompt tokens of one request per step
};

struct EngineStats {
  int64_t requests = 0, rejected = 0, finished = 0, cancelled = 0, failed = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0, steps = 0;
  double prefill_seconds = 0, decode_seconds = 0;  // steps with prompt tokens / decode-only steps
  int64_t active = 0, queued = 0, slots = 0, max_batch = 0;
  ScheduleStats schedule;  // the model's CPU / device split of the MoE layers, after the last step
};

class GenerationEngine {
 public:
  // The model and tokenizer must outlive the engine; the engine is the model's only user.
  GenerationEngine(CausalLM& lm, const Tokenizer& tok, EngineOptions opts);
  ~GenerationEngine();  // shutdown(0)
  GenerationEngine(const GenerationEngine&) = delete;
  GenerationEngine& operator=(const GenerationEngine&) = delete;

  enum class Submit { Queued, QueueFull, TooLong, Empty, Closed };
  // Queues a request (prompt: token ids, BOS included). TooLong: the prompt does not fit the
  // context with at least one generated token.
  Submit submit(std::vector<int32_t> prompt, GenerationParams params, GenerationSink sink);
  // Stops admitting; requests in flight may finish for `grace`, then are cancelled; the worker ends.
  void shutdown(std::chrono::milliseconds grace);
  EngineStats stats() const;
  int64_t context() const { return lm_.context(); }

 private:
  struct Request;
  void run();
  void step(std::vector<std::unique_ptr<Request>>& active);
  void finish(Request& r, const std::string& reason, const std::string& error = {});

  CausalLM& lm_;
  const Tokenizer& tok_;
  EngineOptions opts_;
  VocabMask mask_;
  std::vector<std::unique_ptr<Sequence>> free_;  // slots not in use
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Request>> queue_;
  bool closing_ = false;
  std::chrono::steady_clock::time_point deadline_{};
  EngineStats stats_;
  std::thread worker_;
};

const char* submit_error(GenerationEngine::Submit s);

}  // namespace strata
