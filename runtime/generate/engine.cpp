#include "runtime/generate/engine.h"

#include <algorithm>

#include "runtime/common/error.h"
#include "runtime/generate/token_stream.h"

namespace strata {

struct GenerationEngine::Request {
  std::vector<int32_t> prompt;
  GenerationParams params;
  GenerationSink sink;
  std::unique_ptr<Sequence> seq;
  TokenStream stream;
  size_t fed = 0;               // prompt tokens run so far
  std::vector<int32_t> next;    // tokens of the coming step
  std::vector<float> logits;
  int64_t generated = 0;
  bool done = false;

  Request(std::vector<int32_t> p, GenerationParams gp, GenerationSink s, const Tokenizer& tok, const VocabMask& mask)
      : prompt(std::move(p)), params(std::move(gp)), sink(std::move(s)), stream(tok, mask, params) {}
};

const char* submit_error(GenerationEngine::Submit s) {
  switch (s) {
    case GenerationEngine::Submit::Queued: return "queued";
    case GenerationEngine::Submit::QueueFull: return "the server is busy: every slot is in use and the queue is full";
    case GenerationEngine::Submit::TooLong: return "the prompt does not fit the context";
    case GenerationEngine::Submit::Empty: return "the prompt is empty";
    case GenerationEngine::Submit::Closed: return "the server is shutting down";
  }
  return "?";
}

GenerationEngine::GenerationEngine(CausalLM& lm, const Tokenizer& tok, EngineOptions opts)
    : lm_(lm), tok_(tok), opts_(opts), mask_(tok, lm.config().vocab_size) {
  if (opts_.slots < 1) throw Error("the engine needs at least one slot");
  opts_.prefill_chunk = std::max<int64_t>(1, opts_.prefill_chunk);
  for (int i = 0; i < opts_.slots; ++i) free_.push_back(lm_.new_sequence());
  stats_.slots = opts_.slots;
  worker_ = std::thread([this] { run(); });
}

GenerationEngine::~GenerationEngine() { shutdown(std::chrono::milliseconds(0)); }

GenerationEngine::Submit GenerationEngine::submit(std::vector<int32_t> prompt, GenerationParams params,
                                                  GenerationSink sink) {
  if (prompt.empty()) return Submit::Empty;
  if (static_cast<int64_t>(prompt.size()) >= lm_.context()) return Submit::TooLong;
  auto r = std::make_unique<Request>(std::move(prompt), std::move(params), std::move(sink), tok_, mask_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return Submit::Closed;
    // Free slots take requests at once; beyond them max_queue may wait.
    if (queue_.size() >= static_cast<size_t>(opts_.max_queue) + free_.size()) {
      ++stats_.rejected;
      return Submit::QueueFull;
    }
    ++stats_.requests;
    queue_.push_back(std::move(r));
    stats_.queued = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_all();
  return Submit::Queued;
}

void GenerationEngine::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closing_) {
      closing_ = true;
      deadline_ = std::chrono::steady_clock::now() + grace;
    } else {
      deadline_ = std::min(deadline_, std::chrono::steady_clock::now() + grace);
    }
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

EngineStats GenerationEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void GenerationEngine::finish(Request& r, const std::string& reason, const std::string& error) {
  GenerationEvent e;
  if (reason != "error" && reason != "cancelled") e.text = r.stream.flush();
  e.done = true;
  e.finish_reason = reason;
  e.error = error;
  e.prompt_tokens = static_cast<int64_t>(r.prompt.size());
  e.completion_tokens = r.generated;
  r.sink(e);
  r.done = true;
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.finished;
  stats_.cancelled += reason == "cancelled";
  stats_.failed += reason == "error";
}

void GenerationEngine::run() {
  std::vector<std::unique_ptr<Request>> active;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return closing_ || !active.empty() || (!queue_.empty() && !free_.empty()); });
      const bool past_deadline = closing_ && std::chrono::steady_clock::now() >= deadline_;
      if (closing_ && (past_deadline || active.empty())) {
        // Whatever is left is told so.
        std::vector<std::unique_ptr<Request>> left(std::make_move_iterator(queue_.begin()),
                                                   std::make_move_iterator(queue_.end()));
        queue_.clear();
        lock.unlock();
        for (auto& r : active) finish(*r, "cancelled", "the server is shutting down");
        for (auto& r : left) finish(*r, "cancelled", "the server is shutting down");
        return;
      }
      while (!closing_ && !queue_.empty() && !free_.empty()) {
        std::unique_ptr<Request> r = std::move(queue_.front());
        queue_.pop_front();
        r->seq = std::move(free_.back());
        free_.pop_back();
        r->seq->reset();
        active.push_back(std::move(r));
      }
      stats_.queued = static_cast<int64_t>(queue_.size());
      stats_.active = static_cast<int64_t>(active.size());
    }
    step(active);
    // Finished requests give their slot back.
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& r : active)
      if (r->done) free_.push_back(std::move(r->seq));
    active.erase(std::remove_if(active.begin(), active.end(), [](const auto& r) { return r->done; }), active.end());
    stats_.active = static_cast<int64_t>(active.size());
  }
}

void GenerationEngine::step(std::vector<std::unique_ptr<Request>>& active) {
  std::vector<SequenceStep> steps;
  int64_t prompt_tokens = 0;
  for (auto& r : active) {
    if (r->fed < r->prompt.size()) {
      const size_t n = std::min<size_t>(r->prompt.size() - r->fed, static_cast<size_t>(opts_.prefill_chunk));
      r->next.assign(r->prompt.begin() + static_cast<std::ptrdiff_t>(r->fed),
                     r->prompt.begin() + static_cast<std::ptrdiff_t>(r->fed + n));
      prompt_tokens += static_cast<int64_t>(n);
    }
    steps.push_back({r->seq.get(), r->next, &r->logits, false});
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    lm_.forward_batch(steps);
  } catch (const std::exception& e) {
    for (auto& r : active) finish(*r, "error", e.what());
    return;
  }
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  {
    // Counted before any request hears of this step.
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.steps;
    stats_.prompt_tokens += prompt_tokens;
    (prompt_tokens > 0 ? stats_.prefill_seconds : stats_.decode_seconds) += dt;
    stats_.max_batch = std::max<int64_t>(stats_.max_batch, static_cast<int64_t>(steps.size()));
    stats_.schedule = lm_.schedule_stats();  // read on the model's own thread
    // A request samples a token unless part of its prompt is still unread after this step.
    for (auto& r : active) stats_.generated_tokens += r->fed + r->next.size() >= r->prompt.size();
  }
  for (auto& r : active) {
    if (r->fed < r->prompt.size()) {
      r->fed += r->next.size();
      if (r->fed < r->prompt.size()) continue;  // more prompt to read before the first token
    }
    TokenStream::Token tok;
    try {
      tok = r->stream.next(r->logits);
    } catch (const std::exception& e) {
      finish(*r, "error", e.what());
      continue;
    }
    ++r->generated;
    if (tok.eos) {
      finish(*r, "stop");
      continue;
    }
    GenerationEvent e;
    e.text = std::move(tok.text);
    e.prompt_tokens = static_cast<int64_t>(r->prompt.size());
    e.completion_tokens = r->generated;
    // Every token reaches the sink (text or not): that is where a departed client is noticed.
    if (!r->sink(e)) {
      finish(*r, "cancelled");
      continue;
    }
    if (tok.stopped) {
      finish(*r, "stop");
      continue;
    }
    if (r->generated >= r->params.max_tokens || r->seq->n_past() + 1 > r->seq->capacity()) {
      finish(*r, "length");
      continue;
    }
    r->next.assign(1, tok.id);
  }
}

}  // namespace strata
