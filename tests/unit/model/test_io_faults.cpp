// Read errors while a model generates with its experts streamed through the cache: an EIO
// mid-generation fails that step with the file and offset named (never a signal, never an
// expert partly read), and once the disk answers again the same sequence, reset, gives the
// clean run's logits; short reads are completed and change nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

const std::vector<int32_t> kPrompt = {1, 17, 200, 33, 4, 91, 300, 7};

// The prompt's last logits, then 6 greedy decode steps' logits, on a fresh sequence.
std::vector<float> generate(CausalLM& lm, Sequence& seq) {
  seq.reset();
  std::vector<float> all, logits;
  std::vector<int32_t> next = kPrompt;
  for (int i = 0; i < 7; ++i) {
    const SequenceStep s{&seq, next, &logits, false};
    lm.forward_batch({&s, 1});
    all.insert(all.end(), logits.begin(), logits.end());
    next = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
  }
  return all;
}

class IoFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<test::ScratchDir>("io-faults");
    TinyOptions t;
    m_ = std::make_unique<ModelFiles>(open_model(make_tiny_model(t, *dir_ / "v3").path));
    opts_.expert_cache_bytes = 64 << 10;  // a few experts: most uses are reads
    opts_.expert_io_pread = true;         // the same hook sees io_uring's completions; pread is everywhere
    auto clean = load_causal_lm(*m_, opts_);
    auto seq = clean->new_sequence();
    want_ = generate(*clean, *seq);
  }
  std::unique_ptr<test::ScratchDir> dir_;
  std::unique_ptr<ModelFiles> m_;
  ModelOptions opts_;
  std::vector<float> want_;
};

TEST_F(IoFaults, EioMidGenerationNamesTheFileThenServiceContinues) {
  std::atomic<int> reads{0};
  std::atomic<bool> broken{false};
  ModelOptions o = opts_;
  o.expert_io_fault = [&](uint32_t, uint64_t, uint32_t, int res) {
    ++reads;
    return broken ? -EIO : res;
  };
  auto lm = load_causal_lm(*m_, o);
  auto seq = lm->new_sequence();
  std::vector<float> logits;
  std::vector<int32_t> next = kPrompt;
  const SequenceStep first{seq.get(), next, &logits, false};
  lm->forward_batch({&first, 1});
  ASSERT_GT(reads.load(), 0) << "the experts were not read through the cache";
  broken = true;  // the disk fails mid-generation
  bool failed = false;
  for (int i = 0; i < 6 && !failed; ++i) {
    next = {static_cast<int32_t>(10 + i)};
    const SequenceStep s{seq.get(), next, &logits, false};
    try {
      lm->forward_batch({&s, 1});
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
      EXPECT_NE(msg.find("offset"), std::string::npos) << msg;
      failed = true;
    }
  }
  EXPECT_TRUE(failed) << "no step read from the failing disk";
  broken = false;  // the disk answers again: the same model and sequence serve on
  const std::vector<float> got = generate(*lm, *seq);
  ASSERT_EQ(got.size(), want_.size());
  EXPECT_EQ(std::memcmp(got.data(), want_.data(), got.size() * sizeof(float)), 0);
}

TEST_F(IoFaults, ShortReadsAreCompletedAndChangeNothing) {
  std::atomic<int> shortened{0};
  ModelOptions o = opts_;
  o.expert_io_fault = [&](uint32_t, uint64_t, uint32_t, int res) {
    if (res <= 4096) return res;
    ++shortened;
    return res / 2 + 17;  // short and unaligned
  };
  auto lm = load_causal_lm(*m_, o);
  auto seq = lm->new_sequence();
  const std::vector<float> got = generate(*lm, *seq);
  EXPECT_GT(shortened.load(), 0);
  ASSERT_EQ(got.size(), want_.size());
  EXPECT_EQ(std::memcmp(got.data(), want_.data(), got.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace strata
