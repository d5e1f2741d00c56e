// Several sequences in one forward step (CausalLM::forward_batch): each sequence's logits must
// be what it gets alone, on every architecture (V3, V3.2, V4, with Engram), with prompts of
// different lengths, decode steps of mixed sequences and a sequence joining mid-way; the
// caches are per sequence and reserved once (no growth past capacity, a clear error there).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "cpu-kernels/qdot.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

const std::vector<std::vector<int32_t>> kPrompts = {
    {1, 17, 200, 33, 4, 91, 300, 7}, {5, 250, 12}, {9, 8, 7, 6, 5, 4}};
constexpr int kDecode = 4;

struct Case {
  Arch arch;
  bool engram;
};

ModelFiles tiny(const test::ScratchDir& dir, const Case& c) {
  TinyOptions o;
  o.arch = c.arch;
  o.engram = c.engram;
  o.seed = 5;
  return open_model(make_tiny_model(o, dir / (std::string(arch_name(c.arch)) + (c.engram ? "-engram" : ""))).path);
}

// Greedy continuation of each prompt, alone: logits of the prompt's last position and of each
// decode step, and the tokens chosen.
struct SoloRun {
  std::vector<std::vector<float>> logits;
  std::vector<int32_t> tokens;
};

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

SoloRun solo(CausalLM& lm, const std::vector<int32_t>& prompt) {
  SoloRun r;
  auto seq = lm.new_sequence();
  std::vector<float> logits;
  std::vector<int32_t> next = prompt;
  for (int i = 0; i <= kDecode; ++i) {
    const SequenceStep s{seq.get(), next, &logits, false};
    lm.forward_batch({&s, 1});
    r.logits.push_back(logits);
    next = {argmax(logits)};
    r.tokens.push_back(next[0]);
  }
  return r;
}

TEST(SequenceBatch, EachSequenceGetsItsSoloLogits) {
  // Exact dots: the kernels of one and of several rows then sum alike (prefill vs decode
  // bounds elsewhere cover the rounded paths).
  const ScopedIntDot exact(false);
  test::ScratchDir dir("seqbatch");
  for (const Case& c : {Case{Arch::DeepseekV3, false}, Case{Arch::DeepseekV32, false}, Case{Arch::DeepseekV4, false},
                        Case{Arch::DeepseekV3, true}, Case{Arch::DeepseekV4, true}}) {
    SCOPED_TRACE(std::string(arch_name(c.arch)) + (c.engram ? " + engram" : ""));
    const ModelFiles m = tiny(dir, c);
    ModelOptions mo;
    mo.act_quant = false;  // V4's quantize-dequantize steps can move a rounding tie
    auto lm = load_causal_lm(m, mo);
    std::vector<SoloRun> want;
    for (const auto& p : kPrompts) want.push_back(solo(*lm, p));

    // Sequences 0 and 1 prefill together; sequence 2 joins at the second step with its whole
    // prompt while the others decode; then all decode together. Again with steps cut into
    // pieces of 4 tokens (max_step_tokens), so that a piece ends inside a prompt and holds the
    // end of one sequence's prompt and the start of the next.
    for (const int64_t cap : {kDefaultStepTokens, int64_t{4}}) {
    SCOPED_TRACE("max_step_tokens " + std::to_string(cap));
    ModelOptions co = mo;
    co.max_step_tokens = cap;
    const std::unique_ptr<CausalLM> blm = load_causal_lm(m, co);
    std::vector<std::unique_ptr<Sequence>> seqs;
    for (size_t i = 0; i < kPrompts.size(); ++i) seqs.push_back(blm->new_sequence());
    std::vector<std::vector<float>> logits(kPrompts.size());
    std::vector<std::vector<int32_t>> next = kPrompts;
    std::vector<int> step_of(kPrompts.size(), 0);
    for (int round = 0; round <= kDecode + 1; ++round) {
      std::vector<SequenceStep> steps;
      std::vector<size_t> who;
      for (size_t i = 0; i < kPrompts.size(); ++i) {
        if (i == 2 && round == 0) continue;
        if (step_of[i] > kDecode) continue;
        steps.push_back({seqs[i].get(), next[i], &logits[i], false});
        who.push_back(i);
      }
      blm->forward_batch(steps);
      for (size_t i : who) {
        const int s = step_of[i]++;
        EXPECT_LT(test::max_rel(logits[i], want[i].logits[static_cast<size_t>(s)]), 1e-5)
            << "sequence " << i << " step " << s;
        // Follow the solo run's tokens so that every step compares the same inputs.
        next[i] = {want[i].tokens[static_cast<size_t>(s)]};
      }
    }
    for (size_t i = 0; i < kPrompts.size(); ++i)
      EXPECT_EQ(seqs[i]->n_past(), static_cast<int64_t>(kPrompts[i].size()) + kDecode) << i;

    // Every position's logits of a prompt cut into pieces: the rows of each piece in order.
    std::vector<float> whole, cut;
    auto a = lm->new_sequence(), b = blm->new_sequence();
    const SequenceStep sa{a.get(), kPrompts[0], &whole, true}, sb{b.get(), kPrompts[0], &cut, true};
    lm->forward_batch({&sa, 1});
    blm->forward_batch({&sb, 1});
    ASSERT_EQ(cut.size(), whole.size());
    EXPECT_EQ(cut.size(), kPrompts[0].size() * static_cast<size_t>(m.config.vocab_size));
    EXPECT_LT(test::max_rel(cut, whole), 1e-5);
    EXPECT_EQ(b->n_past(), static_cast<int64_t>(kPrompts[0].size()));
    }
  }
}

TEST(SequenceBatch, CapacityIsReservedAndEnforced) {
  test::ScratchDir dir("seqbatch");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV4}) {
    const ModelFiles m = tiny(dir, {arch, false});
    ModelOptions mo;
    mo.context = 10;
    auto lm = load_causal_lm(m, mo);
    EXPECT_EQ(lm->context(), 10);
    auto seq = lm->new_sequence();
    EXPECT_EQ(seq->capacity(), 10);
    std::vector<float> logits;
    const std::vector<int32_t> eight = {1, 2, 3, 4, 5, 6, 7, 8}, three = {1, 2, 3};
    const SequenceStep a{seq.get(), eight, &logits, false};
    lm->forward_batch({&a, 1});
    const SequenceStep b{seq.get(), three, &logits, false};
    STRATA_EXPECT_ERROR(lm->forward_batch({&b, 1}), "11 tokens", "context of 10", "--ctx-size");
    EXPECT_EQ(seq->n_past(), 8);  // the refused step changed nothing
    seq->reset();
    EXPECT_EQ(seq->n_past(), 0);
    // A context past the model's max_position_embeddings is capped there.
    mo.context = m.config.max_position_embeddings * 4;
    EXPECT_EQ(load_causal_lm(m, mo)->context(), m.config.max_position_embeddings);
  }
}

TEST(SequenceBatch, RefusesForeignAndRepeatedSequences) {
  test::ScratchDir dir("seqbatch");
  const ModelFiles m = tiny(dir, {Arch::DeepseekV3, false});
  auto a = load_causal_lm(m), b = load_causal_lm(m);
  auto sa = a->new_sequence(), sb = b->new_sequence();
  std::vector<float> l1, l2;
  const std::vector<int32_t> toks = {1, 2};
  const SequenceStep foreign{sb.get(), toks, &l1, false};
  STRATA_EXPECT_ERROR(a->forward_batch({&foreign, 1}), "another model");
  const SequenceStep twice[2] = {{sa.get(), toks, &l1, false}, {sa.get(), toks, &l2, false}};
  STRATA_EXPECT_ERROR(a->forward_batch(twice), "twice");
}

}  // namespace
}  // namespace strata
