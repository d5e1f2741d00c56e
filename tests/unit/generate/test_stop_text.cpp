// Stop strings over streamed text and the vocabulary mask of padding rows.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/generate/stop_text.h"
#include "runtime/generate/vocab_mask.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata {
namespace {

std::string feed(StopText& s, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) out += s.push(p);
  return out + s.flush();
}

TEST(StopText, EndsBeforeTheFirstStopStringAcrossPieces) {
  StopText s({"END", "\n\n"});
  EXPECT_EQ(feed(s, {"hello E", "N", "D more"}), "hello ");
  EXPECT_TRUE(s.stopped());
  StopText t({"\n\n"});
  EXPECT_EQ(feed(t, {"a\n", "\nb"}), "a");
}

TEST(StopText, HoldsBackOnlyWhatCouldStartAStopString) {
  StopText s({"STOP"});
  EXPECT_EQ(s.push("abc ST"), "abc ");  // "ST" may begin STOP
  EXPECT_EQ(s.push("X"), "STX");        // no longer
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push("S"), "");
  EXPECT_EQ(s.flush(), "S");            // the end: what was held is text
}

TEST(StopText, NoStopStringsPassEverything) {
  StopText s({"", ""});
  EXPECT_EQ(s.push("a"), "a");
  EXPECT_EQ(feed(s, {"b", "c"}), "bc");
  EXPECT_FALSE(s.stopped());
}

TEST(VocabMask, RowsWithoutATokenAreNeverChosen) {
  const Tokenizer tok = Tokenizer::from_hf_json(make_synthetic_tokenizer_json(400), nullptr, "synthetic");
  const int64_t rows = static_cast<int64_t>(tok.vocab_size()) + 7;
  const VocabMask mask(tok, rows);
  EXPECT_EQ(mask.masked(), 7);
  std::vector<float> logits(static_cast<size_t>(rows), 0.0f);
  logits.back() = 100;  // a padding row with the largest logit
  mask.apply(logits);
  EXPECT_TRUE(std::isinf(logits.back()) && logits.back() < 0);
  EXPECT_EQ(logits[0], 0.0f);
  EXPECT_FALSE(mask.allowed(static_cast<int32_t>(rows - 1)));
  EXPECT_TRUE(mask.allowed(0));
}

}  // namespace
}  // namespace strata
