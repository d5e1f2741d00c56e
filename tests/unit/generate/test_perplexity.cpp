// Perplexity and KL divergence (runtime/generate/perplexity.h, logprob_file.h) on generated
// tiny models: llama-perplexity's chunking, the score checked against the model's own logits,
// a base file read back, and the errors a wrong or damaged base file gets.
#include <gtest/gtest.h>

#include <limits>

#include <cmath>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/generate/perplexity.h"
#include "runtime/model/model_files.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PerplexityChunks, CutAsLlamaPerplexityDoes) {
  std::vector<int32_t> ids(1000);
  for (int i = 0; i < 1000; ++i) ids[static_cast<size_t>(i)] = i;
  PerplexityOptions o;
  o.n_ctx = 100;
  const PerplexityChunks ch = perplexity_chunks(ids, 7, o);
  EXPECT_EQ(ch.n_chunks, 10);
  ASSERT_EQ(ch.tokens.size(), 1000u);
  EXPECT_EQ(ch.tokens[0], 7) << "each chunk starts with BOS";
  EXPECT_EQ(ch.tokens[100], 7);
  EXPECT_EQ(ch.tokens[101], 101);
  EXPECT_EQ(ch.tokens[999], 999);
  o.max_chunks = 3;
  EXPECT_EQ(perplexity_chunks(ids, 7, o).n_chunks, 3);
  EXPECT_EQ(perplexity_chunks(ids, -1, o).tokens[100], 100) << "no BOS: nothing substituted";
  o.n_ctx = 501;
  EXPECT_NE(error_of([&] { perplexity_chunks(ids, 7, o); }).find("needs at least 1002"), std::string::npos);
  o.n_ctx = 3;
  EXPECT_NE(error_of([&] { perplexity_chunks(ids, 7, o); }).find("at least 4"), std::string::npos);
}

class Perplexity : public ::testing::Test {
 protected:
  static std::unique_ptr<ModelFiles> make(const std::filesystem::path& dir, uint64_t seed, int vocab = 512) {
    TinyOptions o;
    o.seed = seed;
    o.config_overrides = {{"vocab_size", vocab}};
    return std::make_unique<ModelFiles>(open_model(make_tiny_model(o, dir).path, {}));
  }
  // A pseudo-text's token ids (the model's vocabulary), BOS first.
  static std::vector<int32_t> text(int n, int vocab = 512) {
    std::vector<int32_t> ids{1};
    for (int i = 1; i < n; ++i) ids.push_back((i * 37 + i / 5) % vocab);
    return ids;
  }
  test::ScratchDir dir_{"perplexity"};
};

// exp(mean NLL) over positions n_ctx/2 .. n_ctx−2 of each chunk, recomputed here in double from
// the logits of the whole chunk; the result does not depend on the forward batch size beyond
// the products' rounding.
TEST_F(Perplexity, IsTheExpOfTheMeanNllOfTheScoredPositions) {
  const auto m = make(dir_.path() / "a", 3);
  ModelOptions mo;
  mo.context = 16;
  auto lm = load_causal_lm(*m, mo);
  PerplexityOptions o;
  o.n_ctx = 16;
  const PerplexityChunks ch = perplexity_chunks(text(60), 1, o);
  ASSERT_EQ(ch.n_chunks, 3);
  int64_t calls = 0;
  const PerplexityStats st = perplexity(*lm, ch, o, nullptr, nullptr, [&](int64_t i, double ppl) {
    EXPECT_EQ(i, calls++);
    EXPECT_GT(ppl, 1);
  });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(st.scored, 3 * (16 - 1 - 8));
  const int64_t V = m->config.vocab_size;
  double nll = 0;
  int64_t n = 0;
  std::vector<float> logits;
  for (int64_t c = 0; c < 3; ++c) {
    lm->reset();
    lm->forward(std::span<const int32_t>(ch.tokens.data() + c * 16, 16), logits, true);
    for (int64_t p = 8; p < 15; ++p) {
      const float* row = logits.data() + p * V;
      double mx = row[0], sum = 0;
      for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(row[v]));
      for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
      nll += mx + std::log(sum) - row[ch.tokens[static_cast<size_t>(c * 16 + p + 1)]];
      ++n;
    }
  }
  EXPECT_NEAR(st.ppl, std::exp(nll / double(n)), 1e-5 * st.ppl);
  EXPECT_GT(st.ppl_err, 0);
  o.batch = 5;  // chunks in steps of 5, 5, 5, 1 through the cache
  EXPECT_NEAR(perplexity(*lm, ch, o).ppl, st.ppl, 1e-4 * st.ppl);
}

TEST_F(Perplexity, KlDivergenceAgainstABaseFile) {
  const auto a = make(dir_.path() / "a", 3), b = make(dir_.path() / "b", 4);
  ModelOptions mo;
  mo.context = 16;
  auto la = load_causal_lm(*a, mo), lb = load_causal_lm(*b, mo);
  PerplexityOptions o;
  o.n_ctx = 16;
  const PerplexityChunks ch = perplexity_chunks(text(50), 1, o);
  const auto file = dir_.path() / "base.kl";
  const LogprobHeader h{static_cast<uint32_t>(a->config.vocab_size), 16, static_cast<uint32_t>(ch.n_chunks)};
  PerplexityStats base_st;
  {
    LogprobWriter w(file, "--kl-divergence-base", h, ch.tokens);
    base_st = perplexity(*la, ch, o, &w);
    w.commit();
  }
  EXPECT_EQ(std::filesystem::file_size(file),
            24 + 4 * ch.tokens.size() + 2 * size_t(h.n_vocab) * size_t(ch.n_chunks * h.scored_per_chunk()));
  {
    LogprobReader r(file);
    EXPECT_EQ(r.tokens(), ch.tokens);
    const PerplexityStats self = perplexity(*la, ch, o, nullptr, &r);
    ASSERT_TRUE(self.kl);
    std::printf("  against itself: KLD %.2e (the base's f16 rounding), same top %.1f%%\n", self.kl->kld_mean,
                100 * self.kl->same_top);
    EXPECT_LT(std::fabs(self.kl->kld_mean), 1e-4);
    EXPECT_NEAR(self.kl->base_ppl, base_st.ppl, 1e-3 * base_st.ppl);
    EXPECT_GT(self.kl->same_top, 0.9);
    EXPECT_LT(self.kl->rms_dp, 1e-3);
  }
  {
    LogprobReader r(file);
    const PerplexityStats other = perplexity(*lb, ch, o, nullptr, &r);
    ASSERT_TRUE(other.kl);
    std::printf("  another model: KLD %.3f, same top %.1f%%\n", other.kl->kld_mean, 100 * other.kl->same_top);
    EXPECT_GT(other.kl->kld_mean, 1e-2);
    EXPECT_LE(other.kl->kld_median, other.kl->kld_p90);
    EXPECT_LE(other.kl->kld_p99, other.kl->kld_max);
    EXPECT_NEAR(other.kl->ln_ppl_ratio, std::log(other.ppl / base_st.ppl), 1e-3);
  }
  // Another text, context or vocabulary is named, not compared.
  {
    LogprobReader r(file);
    PerplexityChunks shifted = ch;
    shifted.tokens[3] ^= 1;
    EXPECT_NE(error_of([&] { perplexity(*la, shifted, o, nullptr, &r); }).find("its tokens are not this run's"),
              std::string::npos);
  }
  {
    const auto c = make(dir_.path() / "c", 3, 640);
    auto lc = load_causal_lm(*c, mo);
    LogprobReader r(file);
    EXPECT_NE(error_of([&] { perplexity(*lc, ch, o, nullptr, &r); }).find("vocabulary of 512 rows; the model has 640"),
              std::string::npos);
  }
}

TEST_F(Perplexity, DamagedBaseFilesAreNamedWithTheOffset) {
  const auto file = dir_.path() / "base.kl";
  const std::vector<int32_t> toks(8, 2);
  {
    LogprobWriter w(file, "--kl-divergence-base", {32, 4, 2}, toks);
    const std::vector<float> row(32, -3.4657f);
    w.row(row.data());
    EXPECT_NE(error_of([&] { w.commit(); }).find("1 of 2 log-probability rows"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(file)) << "an unfinished base file is not left behind";
  {
    LogprobWriter w(file, "--kl-divergence-base", {32, 4, 2}, toks);
    const std::vector<float> row(32, -3.4657f);
    w.row(row.data());
    w.row(row.data());
    w.commit();
  }
  LogprobReader ok(file);
  std::vector<float> back(32);
  ok.row(back.data());
  EXPECT_NEAR(back[5], -3.4657f, 2e-3f);
  const std::vector<uint8_t> raw = test::read_bytes(file);
  const std::string bytes(raw.begin(), raw.end());
  auto write = [&](const std::string& b) { test::write_bytes(file, std::vector<uint8_t>(b.begin(), b.end())); };
  write(bytes.substr(0, bytes.size() - 3));
  std::string e = error_of([&] { LogprobReader r(file); });
  EXPECT_NE(e.find(file.string()), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  write("NOTAKLFILE" + bytes.substr(10));
  EXPECT_NE(error_of([&] { LogprobReader r(file); }).find("not a KL-divergence base file"), std::string::npos);
  std::string bad = bytes;
  bad[24] = '\x40';  // token 0 becomes 64 of a vocabulary of 32
  write(bad);
  EXPECT_NE(error_of([&] { LogprobReader r(file); }).find("at offset 24 is outside the vocabulary of 32"),
            std::string::npos);
  bad = bytes;
  bad[16] = 1;  // n_ctx 1
  write(bad);
  EXPECT_NE(error_of([&] { LogprobReader r(file); }).find("n_ctx 1 at offset 16"), std::string::npos);
  write(bytes.substr(0, 10));
  EXPECT_NE(error_of([&] { LogprobReader r(file); }).find("shorter than the 24-byte header"), std::string::npos);
  // A NaN (or -inf) log-probability: the header and tokens are 24 + 8·4 bytes, then row 0.
  for (const char* f16 : {"\x00\x7e", "\x00\xfc"}) {
    bad = bytes;
    bad.replace(24 + 32 + 2 * 3, 2, std::string(f16, 2));
    write(bad);
    LogprobReader r(file);
    const std::string e2 = error_of([&] { r.row(back.data()); });
    EXPECT_NE(e2.find("at offset 62 is not a finite number"), std::string::npos) << e2;
  }
  // A probability that underflowed to 0 (log -inf) is written clamped, and read back.
  {
    LogprobWriter w(file, "--kl-divergence-base", {32, 4, 2}, toks);
    std::vector<float> row(32, -3.4657f);
    row[7] = -std::numeric_limits<float>::infinity();
    w.row(row.data());
    w.row(row.data());
    w.commit();
  }
  LogprobReader clamped(file);
  clamped.row(back.data());
  EXPECT_EQ(back[7], -65504.0f);
}

}  // namespace
}  // namespace strata
