// Continuous batching (runtime/generate/engine.h) on a generated tiny model: requests that
// share steps give the tokens they give alone (greedy), finish for the right reason, leave
// their slot when done or cancelled, and are refused with a reason when they cannot run.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/generate/engine.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

struct Outcome {
  std::string text, reason, error;
  int64_t prompt_tokens = 0, completion_tokens = 0, events = 0;
};

// Submits and returns a future of the outcome; `cancel_after` events the sink says the client left.
std::future<Outcome> start(GenerationEngine& e, std::vector<int32_t> prompt, GenerationParams p,
                           int64_t cancel_after = -1, GenerationEngine::Submit* status = nullptr) {
  auto done = std::make_shared<std::promise<Outcome>>();
  auto acc = std::make_shared<Outcome>();
  auto fut = done->get_future();
  const auto s = e.submit(std::move(prompt), std::move(p), [done, acc, cancel_after](const GenerationEvent& ev) {
    acc->text += ev.text;
    ++acc->events;
    if (ev.done) {
      acc->reason = ev.finish_reason;
      acc->error = ev.error;
      acc->prompt_tokens = ev.prompt_tokens;
      acc->completion_tokens = ev.completion_tokens;
      done->set_value(*acc);
      return true;
    }
    return cancel_after < 0 || acc->events < cancel_after;
  });
  if (status) *status = s;
  if (s != GenerationEngine::Submit::Queued) done->set_value(Outcome{"", "refused", submit_error(s)});
  return fut;
}

class Engine : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyOptions o;
    o.seed = 11;
    m_ = std::make_unique<ModelFiles>(open_model(make_tiny_model(o, dir_ / "m").path, {}));
    lm_ = load_causal_lm(*m_);
  }
  std::vector<int32_t> prompt(const std::string& text) const {
    std::vector<int32_t> ids;
    if (m_->tokenizer->add_bos() && m_->tokenizer->bos_id() >= 0) ids.push_back(m_->tokenizer->bos_id());
    for (int32_t id : m_->tokenizer->encode(text)) ids.push_back(id);
    return ids;
  }
  test::ScratchDir dir_{"engine"};
  std::unique_ptr<ModelFiles> m_;
  std::unique_ptr<CausalLM> lm_;
};

const std::vector<std::string> kPrompts = {"The quick brown fox", "Hello", "1 2 3 4 5 6 7 8 9 10 11 12",
                                           "def f(x):", "Paris is", "zzz", "a b", "MoE experts"};

TEST_F(Engine, BatchedGreedyOutputsEqualSoloOutputs) {
  GenerationParams p;
  p.max_tokens = 12;
  p.ignore_eos = true;
  std::vector<Outcome> solo;
  {
    EngineOptions eo;
    eo.slots = 1;
    GenerationEngine e(*lm_, *m_->tokenizer, eo);
    for (const auto& t : kPrompts) solo.push_back(start(e, prompt(t), p).get());
  }
  EngineOptions eo;
  eo.slots = 8;
  eo.prefill_chunk = 4;  // prompts read over several steps, beside others' decoding
  GenerationEngine e(*lm_, *m_->tokenizer, eo);
  std::vector<std::future<Outcome>> futs;
  for (const auto& t : kPrompts) futs.push_back(start(e, prompt(t), p));
  for (size_t i = 0; i < futs.size(); ++i) {
    const Outcome o = futs[i].get();
    EXPECT_EQ(o.reason, "length") << i;
    EXPECT_EQ(o.completion_tokens, 12) << i;
    EXPECT_EQ(o.prompt_tokens, static_cast<int64_t>(prompt(kPrompts[i]).size()));
    EXPECT_EQ(o.text, solo[i].text) << "request " << i;
  }
  const EngineStats st = e.stats();
  EXPECT_GT(st.max_batch, 1);  // requests really shared steps
  EXPECT_EQ(st.generated_tokens, 12 * static_cast<int64_t>(kPrompts.size()));
}

TEST_F(Engine, StopStringsEndTheTextBeforeThem) {
  GenerationParams p;
  p.max_tokens = 16;
  p.ignore_eos = true;
  EngineOptions eo;
  GenerationEngine e(*lm_, *m_->tokenizer, eo);
  const Outcome free_run = start(e, prompt("Hello"), p).get();
  ASSERT_GE(free_run.text.size(), 4u);
  p.stop = {free_run.text.substr(2, 2)};  // a string the free run produces
  const Outcome o = start(e, prompt("Hello"), p).get();
  EXPECT_EQ(o.reason, "stop");
  EXPECT_EQ(o.text, free_run.text.substr(0, free_run.text.find(p.stop[0])));
}

TEST_F(Engine, CancelledRequestsFreeTheirSlot) {
  GenerationParams p;
  p.max_tokens = 50;
  p.ignore_eos = true;
  EngineOptions eo;
  eo.slots = 1;
  GenerationEngine e(*lm_, *m_->tokenizer, eo);
  auto gone = start(e, prompt("Hello"), p, 3);  // the client leaves after 3 events
  p.max_tokens = 4;
  auto next = start(e, prompt("Paris is"), p);
  const Outcome a = gone.get();
  EXPECT_EQ(a.reason, "cancelled");
  EXPECT_LT(a.completion_tokens, 50);
  const Outcome b = next.get();
  EXPECT_EQ(b.reason, "length");
  EXPECT_EQ(b.completion_tokens, 4);
  EXPECT_EQ(e.stats().cancelled, 1);
}

TEST_F(Engine, RefusesWhatCannotRun) {
  EngineOptions eo;
  eo.slots = 1;
  eo.max_queue = 1;
  GenerationEngine e(*lm_, *m_->tokenizer, eo);
  GenerationParams p;
  p.max_tokens = 100000;  // runs until the context ends or the engine stops
  p.ignore_eos = true;
  GenerationEngine::Submit s1, s2, s3, s4, s5;
  auto a = start(e, prompt("Hello"), p, -1, &s1);
  // Wait until the first request holds the slot, so the queue is what the next ones meet.
  while (e.stats().active == 0 && e.stats().finished == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto b = start(e, prompt("Hello"), p, -1, &s2);
  auto c = start(e, prompt("Hello"), p, -1, &s3);
  EXPECT_EQ(s1, GenerationEngine::Submit::Queued);
  EXPECT_EQ(s2, GenerationEngine::Submit::Queued);
  EXPECT_EQ(s3, GenerationEngine::Submit::QueueFull);
  EXPECT_EQ(c.get().reason, "refused");
  start(e, {}, p, -1, &s4).get();
  EXPECT_EQ(s4, GenerationEngine::Submit::Empty);
  start(e, std::vector<int32_t>(static_cast<size_t>(e.context()), 1), p, -1, &s5).get();
  EXPECT_EQ(s5, GenerationEngine::Submit::TooLong);
  EXPECT_EQ(e.stats().rejected, 1);
  e.shutdown(std::chrono::milliseconds(0));
  EXPECT_EQ(a.get().reason, "cancelled");
  EXPECT_EQ(b.get().reason, "cancelled");
}

TEST_F(Engine, ShutdownTellsTheRequestsLeft) {
  EngineOptions eo;
  eo.slots = 1;
  auto e = std::make_unique<GenerationEngine>(*lm_, *m_->tokenizer, eo);
  GenerationParams p;
  p.max_tokens = 100000;
  p.ignore_eos = true;
  auto a = start(*e, prompt("Hello"), p);
  auto b = start(*e, prompt("Hello"), p);
  e->shutdown(std::chrono::milliseconds(20));
  const Outcome oa = a.get(), ob = b.get();
  EXPECT_EQ(oa.reason, "cancelled");
  EXPECT_EQ(ob.reason, "cancelled");
  EXPECT_NE(ob.error.find("shutting down"), std::string::npos);
  GenerationEngine::Submit s;
  start(*e, prompt("Hello"), p, -1, &s).get();
  EXPECT_EQ(s, GenerationEngine::Submit::Closed);
}

}  // namespace
}  // namespace strata
