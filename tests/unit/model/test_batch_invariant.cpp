// Batch-invariant mode (cpu-kernels/linear.h): a sequence's logits are the same bits alone and
// batched with another sequence, on the default (rounded) paths, with a prompt long enough that
// the batch would otherwise go through the oneDNN GEMM; and without the mode they are not
// (the test can fail).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/qdot.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

class ScopedBatchInvariant {
 public:
  explicit ScopedBatchInvariant(bool on) : saved_(batch_invariant()) { set_batch_invariant(on); }
  ~ScopedBatchInvariant() { set_batch_invariant(saved_); }

 private:
  bool saved_;
};

std::vector<int32_t> prompt(int n, int seed) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(static_cast<int32_t>((i * 37 + seed * 11) % 250 + 2));
  return p;
}

// Logits of A's and B's prompts and two decode steps, run alone (per sequence) or together.
std::vector<std::vector<float>> run(CausalLM& lm, bool together) {
  const std::vector<int32_t> pa = prompt(20, 1), pb = prompt(3, 2);
  auto a = lm.new_sequence(), b = lm.new_sequence();
  std::vector<float> la, lb;
  std::vector<std::vector<float>> out;
  std::vector<int32_t> na = pa, nb = pb;
  for (int step = 0; step < 3; ++step) {
    const SequenceStep sa{a.get(), na, &la, false}, sb{b.get(), nb, &lb, false};
    if (together) {
      const SequenceStep both[2] = {sa, sb};
      lm.forward_batch(both);
    } else {
      lm.forward_batch({&sa, 1});
      lm.forward_batch({&sb, 1});
    }
    out.push_back(la);
    out.push_back(lb);
    na = {static_cast<int32_t>(30 + step)};
    nb = {static_cast<int32_t>(40 + step)};
  }
  return out;
}

bool same_bits(const std::vector<std::vector<float>>& x, const std::vector<std::vector<float>>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].size() != y[i].size() || std::memcmp(x[i].data(), y[i].data(), x[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}

TEST(BatchInvariant, ASequenceGetsTheSameBitsAloneAndBatched) {
  test::ScratchDir dir("invariant");
  // Integer-dot weights reach the GEMM at 16 tokens here, as other weights do: where the CPU
  // keeps them on the integer dot longer (qdot.h), the default paths of the Q4_K case would not
  // differ, and the check below that they do (so that this test can fail) would not hold.
  const ScopedIntDotGemmMinBatch gemm_for_all(gemm_min_batch());
  struct Case {
    const char* name;
    Arch arch;
    const char* format;
    const char* dtype;
  };
  const Case cases[] = {{"v3 bf16", Arch::DeepseekV3, "hf", "bf16"},
                        {"v3 q4_k", Arch::DeepseekV3, "gguf", "q4_k"},
                        {"v3.2 fp8", Arch::DeepseekV32, "hf", "fp8"},
                        {"v4 fp4", Arch::DeepseekV4, "hf", "fp4"}};
  int i = 0;
  for (const Case& c : cases) {
    TinyOptions o;
    o.arch = c.arch;
    o.format = c.format;
    o.dtype = c.dtype;
    // Products of 64K+ elements, so a batch of 16+ tokens would go through oneDNN.
    o.config_overrides = {{"hidden_size", 256}, {"intermediate_size", 512}, {"moe_intermediate_size", 256}};
    const std::string name = "m" + std::to_string(i++) + (o.format == "gguf" ? ".gguf" : "");
    const ModelFiles m = open_model(make_tiny_model(o, dir.path() / name).path);
    auto lm = load_causal_lm(m);
    {
      const ScopedBatchInvariant on(true);
      EXPECT_TRUE(same_bits(run(*lm, false), run(*lm, true))) << c.name << ": batched logits differ from solo ones";
    }
    const ScopedBatchInvariant off(false);
    const bool same = same_bits(run(*lm, false), run(*lm, true));
    std::printf("  %-8s batch-invariant: bit-identical; default paths: %s\n", c.name,
                same ? "bit-identical too" : "differ (B's 3 tokens join A's 20 in the GEMM)");
    if (c.arch == Arch::DeepseekV3 && std::string(c.dtype) == "q4_k") {
      EXPECT_FALSE(same) << "the default paths were expected to differ here (the GEMM against the integer dot)";
    }
  }
}

}  // namespace
}  // namespace strata
