// Tokenizer behaviour on the synthetic vocabulary (no installed files needed): round trips,
// added tokens, streaming decode, chat layout, GGUF metadata, BPE and UTF-8 helpers, errors.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/regex_split.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/support/test_support.h"
#include "tests/unit/tokenizer/tokenizer_test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

const char* const kBos = "<｜begin▁of▁sentence｜>";
const char* const kEos = "<｜end▁of▁sentence｜>";

TEST(Tokenizer, SyntheticLayout) {
  const Tokenizer& tok = synthetic_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 512u);
  EXPECT_EQ(tok.bos_id(), 507);
  EXPECT_EQ(tok.eos_id(), 508);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.token_text(507), kBos);
  EXPECT_EQ(tok.added_token_id("<｜User｜>"), 509);
  EXPECT_EQ(tok.added_token_id("<｜Assistant｜>"), 510);
  EXPECT_EQ(tok.added_token_id("<｜▁pad▁｜>"), 511);
  EXPECT_TRUE(tok.is_special(507));
  EXPECT_FALSE(tok.is_special(509));
  EXPECT_FALSE(tok.is_special(100));
  EXPECT_EQ(tok.token_text(33), "!");  // byte tokens in byte order
  EXPECT_EQ(tok.token_text(32), "Ġ");  // space as its byte-level character
  // Deterministic: two builds are identical.
  EXPECT_EQ(make_synthetic_tokenizer_json(400), make_synthetic_tokenizer_json(400));
}

TEST(Tokenizer, SyntheticMergesCompressText) {
  const Tokenizer& tok = synthetic_tokenizer();
  const std::string text = "The model reads the tokens of the prompt.";
  const auto ids = tok.encode(text);
  EXPECT_LT(ids.size(), text.size() / 2);
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(Tokenizer, SyntheticRoundTripsCorpus) {
  const Tokenizer& tok = synthetic_tokenizer();
  for (const auto& c : load_corpus()) {
    const auto ids = tok.encode(c.bytes);
    for (int32_t id : ids) EXPECT_LT(static_cast<size_t>(id), tok.vocab_size());
    EXPECT_EQ(tok.decode(ids), utf8::sanitize(c.bytes)) << c.note;
  }
}

TEST(Tokenizer, AddedTokensSplitTextLongestFirst) {
  const Tokenizer& tok = synthetic_tokenizer();
  const auto ids = tok.encode(std::string("hi") + kBos + "<｜User｜>x" + kEos);
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids[ids.size() - 1], 508);
  EXPECT_EQ(ids[ids.size() - 3], 509);
  EXPECT_EQ(ids[ids.size() - 4], 507);
  // With parse_special=false no added token appears.
  for (int32_t id : tok.encode(std::string(kBos) + "<｜User｜>", false)) EXPECT_LT(id, 507);
  // A near miss is plain text.
  for (int32_t id : tok.encode("<｜User｜")) EXPECT_LT(id, 507);
}

TEST(Tokenizer, InvalidUtf8BecomesReplacementCharacter) {
  const Tokenizer& tok = synthetic_tokenizer();
  const std::string bad =
      "a\xff"
      "b\xe4\xb8";
  EXPECT_EQ(tok.encode(bad), tok.encode("a\xEF\xBF\xBD"
                                        "b\xEF\xBF\xBD"));
  EXPECT_EQ(tok.decode(tok.encode(bad)),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
}

TEST(Tokenizer, DecodeRejectsOutOfRangeIds) {
  const Tokenizer& tok = synthetic_tokenizer();
  const std::vector<int32_t> bad1{1, 512};
  STRATA_EXPECT_ERROR(tok.decode(bad1), "512", "synthetic");
  const std::vector<int32_t> bad2{-3};
  STRATA_EXPECT_ERROR(tok.decode(bad2), "-3");
  STRATA_EXPECT_ERROR(tok.token_text(99999), "99999");
  STRATA_EXPECT_ERROR(tok.token_bytes(-1), "-1");
}

TEST(Tokenizer, StreamDecoderHoldsBackPartialCharacters) {
  const Tokenizer& tok = synthetic_tokenizer();
  // Byte tokens split "é" (C3 A9) and "😀" (F0 9F 98 80) across pushes.
  StreamDecoder sd(tok);
  EXPECT_EQ(sd.push('x'), "x");
  EXPECT_EQ(sd.push(0xC3), "");
  EXPECT_EQ(sd.push(0xA9), "é");
  EXPECT_EQ(sd.push(0xF0), "");
  EXPECT_EQ(sd.push(0x9F), "");
  EXPECT_EQ(sd.push(0x98), "");
  EXPECT_EQ(sd.push(0x80), "😀");
  EXPECT_EQ(sd.flush(), "");
  // A dangling partial sequence is flushed as U+FFFD; an invalid byte is replaced at once.
  EXPECT_EQ(sd.push(0xE4), "");
  EXPECT_EQ(sd.push(0xB8), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(sd.push(0xFF), "\xEF\xBF\xBD");
  // A lead byte interrupting a partial sequence ends it with U+FFFD.
  EXPECT_EQ(sd.push(0xE4), "");
  EXPECT_EQ(sd.push('y'), "\xEF\xBF\xBDy");
}

TEST(Tokenizer, StreamDecoderMatchesWholeDecode) {
  const Tokenizer& tok = synthetic_tokenizer();
  std::mt19937 rng(7);
  for (const auto& c : load_corpus()) {
    const auto ids = tok.encode(c.bytes);
    StreamDecoder sd(tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string piece = sd.push(id);
      EXPECT_TRUE(utf8::is_valid(piece));
      streamed += piece;
    }
    streamed += sd.flush();
    EXPECT_EQ(streamed, tok.decode(ids)) << c.note;
  }
  // Random byte tokens: streaming equals the one-shot lossy decode.
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids(1 + rng() % 12);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % 256);
    StreamDecoder sd(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += sd.push(id);
    streamed += sd.flush();
    EXPECT_EQ(streamed, tok.decode(ids));
  }
}

TEST(Tokenizer, ChatPromptLayout) {
  const Tokenizer& tok = synthetic_tokenizer();
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."},
                                         {"user", "Hi"},
                                         {"assistant", "Hello!"},
                                         {"system", "Use English."},
                                         {"user", "2+2?"}};
  EXPECT_EQ(tok.chat_prompt(msgs, true), std::string(kBos) +
                                             "Be brief.\n\nUse English.<｜User｜>Hi<｜Assistant｜>Hello!" +
                                             kEos + "<｜User｜>2+2?<｜Assistant｜>");
  EXPECT_EQ(tok.chat_prompt({{"user", "x"}}, false), std::string(kBos) + "<｜User｜>x");
  const auto ids = tok.encode(tok.chat_prompt({{"user", "x"}}, true));
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], tok.bos_id());
  EXPECT_EQ(ids[1], 509);
  EXPECT_EQ(ids[3], 510);
  STRATA_EXPECT_ERROR(tok.chat_prompt({{"tool", "x"}}, true), "tool");
}

TEST(Tokenizer, GgufMetadataRoundTrip) {
  const Tokenizer& tok = synthetic_tokenizer();
  const json md = tok.to_gguf_metadata();
  EXPECT_EQ(md["tokenizer.ggml.model"], "gpt2");
  EXPECT_EQ(md["tokenizer.ggml.pre"], "deepseek-v3");
  EXPECT_EQ(md["tokenizer.ggml.tokens"].size(), 512u);
  EXPECT_EQ(md["tokenizer.ggml.token_type"][507], 3);
  EXPECT_EQ(md["tokenizer.ggml.token_type"][509], 4);
  EXPECT_EQ(md["tokenizer.ggml.token_type"][300], 1);
  EXPECT_EQ(md["tokenizer.ggml.bos_token_id"], 507);
  EXPECT_EQ(md["tokenizer.ggml.eos_token_id"], 508);
  EXPECT_EQ(md["tokenizer.ggml.add_bos_token"], true);
  const Tokenizer g = Tokenizer::from_gguf_metadata(md, "tiny.gguf");
  EXPECT_EQ(g.vocab_size(), tok.vocab_size());
  EXPECT_EQ(g.bos_id(), 507);
  EXPECT_TRUE(g.is_special(507));
  EXPECT_FALSE(g.is_special(509));
  for (const auto& c : load_corpus()) EXPECT_EQ(g.encode(c.bytes), tok.encode(c.bytes)) << c.note;
  EXPECT_EQ(g.to_gguf_metadata(), md);
}

TEST(Tokenizer, GgufUnusedIdsDecodeEmpty) {
  json md = synthetic_tokenizer().to_gguf_metadata();
  md["tokenizer.ggml.tokens"].push_back("[PAD512]");
  md["tokenizer.ggml.token_type"].push_back(5);
  const Tokenizer g = Tokenizer::from_gguf_metadata(md, "pad.gguf");
  EXPECT_EQ(g.vocab_size(), 513u);
  const std::vector<int32_t> ids{512};
  EXPECT_EQ(g.decode(ids), "");
  for (int32_t id : g.encode("[PAD512]")) EXPECT_NE(id, 512);
}

TEST(TokenizerErrors, MissingTokenizerJsonNamesPath) {
  ScratchDir dir("tok_missing");
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_dir(dir.path()), (dir.path() / "tokenizer.json").string(),
                      "not found");
}

TEST(TokenizerErrors, BadJsonNamesFileAndOffset) {
  ScratchDir dir("tok_badjson");
  write_text(dir / "tokenizer.json", "{\"model\": {\"vocab\": [1, 2,, ]}}");
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_dir(dir.path()), "tokenizer.json", "invalid JSON", "offset 27");
  // A bad tokenizer_config.json is named too.
  write_text(dir / "tokenizer.json", make_synthetic_tokenizer_json(300).dump());
  write_text(dir / "tokenizer_config.json", "{\"add_bos_token\": tru}");
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_dir(dir.path()), "tokenizer_config.json", "invalid JSON");
}

// Sizes and depths the file does not justify: an id far past the tokens it defines (would size
// the tables by it), pre-tokenizers nested past any real use (would recurse off the stack).
TEST(TokenizerErrors, IdsAndNestingAreBounded) {
  ScratchDir dir("tok_bounds");
  nlohmann::json j = make_synthetic_tokenizer_json(300);
  j["model"]["vocab"]["hello"] = 2147483647;
  write_text(dir / "tokenizer.json", j.dump());
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_dir(dir.path()), "tokenizer.json", "token id 2147483647", "far past");
  nlohmann::json deep = make_synthetic_tokenizer_json(300);
  nlohmann::json pt = deep["pre_tokenizer"];
  for (int i = 0; i < 40; ++i) pt = nlohmann::json{{"type", "Sequence"}, {"pretokenizers", {pt}}};
  deep["pre_tokenizer"] = pt;
  write_text(dir / "tokenizer.json", deep.dump());
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_dir(dir.path()), "tokenizer.json", "nested");
  // Deeper than any JSON strata reads: refused while parsing (50,000 levels as text).
  std::string text = make_synthetic_tokenizer_json(300).dump();
  std::string nest;
  for (int i = 0; i < 50000; ++i) nest += "{\"type\":\"Sequence\",\"pretokenizers\":[";
  nest += "null";
  for (int i = 0; i < 50000; ++i) nest += "]}";
  text.insert(1, "\"deep\":" + nest + ",");
  write_text(dir / "tokenizer.json", text);
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_dir(dir.path()), "tokenizer.json", "JSON nested deeper than 64 levels");
}

TEST(TokenizerErrors, HfDirLoadsSyntheticFiles) {
  ScratchDir dir("tok_dir");
  write_text(dir / "tokenizer.json", make_synthetic_tokenizer_json(320).dump());
  write_text(dir / "tokenizer_config.json", make_synthetic_tokenizer_config_json().dump());
  const Tokenizer t = Tokenizer::from_hf_dir(dir.path());
  EXPECT_EQ(t.vocab_size(), 320u);
  EXPECT_EQ(t.bos_id(), 315);
  EXPECT_EQ(t.decode(t.encode("round trip 往返")), "round trip 往返");
}

TEST(TokenizerErrors, MissingVocab) {
  json tj = make_synthetic_tokenizer_json(300);
  tj["model"].erase("vocab");
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj, nullptr, "x/tokenizer.json"), "x/tokenizer.json",
                      "model.vocab");
  tj.erase("model");
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj, nullptr, "x/tokenizer.json"), "model");
}

TEST(TokenizerErrors, MergeWithUnknownToken) {
  json tj = make_synthetic_tokenizer_json(300);
  tj["model"]["merges"].push_back("Ġth zzzqqq");
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj, nullptr, "m.json"), "m.json", "zzzqqq", "unknown token");
  json tj2 = make_synthetic_tokenizer_json(300);
  tj2["model"]["merges"].push_back("nospace");
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj2, nullptr, "m.json"), "nospace");
}

TEST(TokenizerErrors, MissingByteTokenAndUnsupportedParts) {
  json tj = make_synthetic_tokenizer_json(300);
  tj["model"]["vocab"].erase("Ġ");
  tj["model"]["merges"] = json::array();
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj, nullptr, "b.json"), "byte token");
  json tj2 = make_synthetic_tokenizer_json(300);
  tj2["normalizer"] = {{"type", "NFC"}};
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj2, nullptr, "b.json"), "normalizer");
  json tj3 = make_synthetic_tokenizer_json(300);
  tj3["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj3, nullptr, "b.json"), "Removed");
  json tj4 = make_synthetic_tokenizer_json(300);
  tj4["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj4, nullptr, "b.json"), "b.json", "(unclosed");
  json tj5 = make_synthetic_tokenizer_json(300);
  tj5["model"]["type"] = "Unigram";
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(tj5, nullptr, "b.json"), "Unigram");
  const json cfg = {{"bos_token", "<nope>"}};
  STRATA_EXPECT_ERROR(Tokenizer::from_hf_json(make_synthetic_tokenizer_json(300), &cfg, "b.json"), "<nope>");
}

TEST(TokenizerErrors, GgufMetadataErrors) {
  const json md = synthetic_tokenizer().to_gguf_metadata();
  json bad = md;
  bad["tokenizer.ggml.pre"] = "mystery-pre";
  STRATA_EXPECT_ERROR(Tokenizer::from_gguf_metadata(bad, "m.gguf"), "m.gguf", "mystery-pre");
  bad = md;
  bad["tokenizer.ggml.model"] = "llama";
  STRATA_EXPECT_ERROR(Tokenizer::from_gguf_metadata(bad, "m.gguf"), "llama");
  bad = md;
  bad.erase("tokenizer.ggml.tokens");
  STRATA_EXPECT_ERROR(Tokenizer::from_gguf_metadata(bad, "m.gguf"), "tokenizer.ggml.tokens");
  bad = md;
  bad["tokenizer.ggml.token_type"].erase(0);
  STRATA_EXPECT_ERROR(Tokenizer::from_gguf_metadata(bad, "m.gguf"), "tokenizer.ggml.token_type");
  bad = md;
  bad["tokenizer.ggml.merges"].push_back("Ġ qqqq");
  STRATA_EXPECT_ERROR(Tokenizer::from_gguf_metadata(bad, "m.gguf"), "qqqq", "unknown token");
  bad = md;
  bad["tokenizer.ggml.bos_token_id"] = 100000;
  STRATA_EXPECT_ERROR(Tokenizer::from_gguf_metadata(bad, "m.gguf"), "m.gguf", "tokenizer.ggml.bos_token_id",
                      "token id 100000 is past the vocabulary",
                      std::to_string(md["tokenizer.ggml.tokens"].size()));
}

TEST(TokenizerErrors, AByteTokenIdIsNeverAnAddedToken) {
  // The encoder falls back to the byte tokens: one typed as a control token would turn every
  // 'a' into that token.
  const json md = synthetic_tokenizer().to_gguf_metadata();
  json bad = md;
  const auto& toks = md["tokenizer.ggml.tokens"];
  const size_t a = static_cast<size_t>(std::find(toks.begin(), toks.end(), "a") - toks.begin());
  ASSERT_LT(a, toks.size());
  bad["tokenizer.ggml.token_type"][a] = 3;
  STRATA_EXPECT_ERROR(Tokenizer::from_gguf_metadata(bad, "m.gguf"), "m.gguf",
                      "the byte token 'a' (byte 97) has id " + std::to_string(a));
}

TEST(TokenizerErrors, SyntheticSizeLimits) {
  STRATA_EXPECT_ERROR(make_synthetic_tokenizer_json(299), "299");
  STRATA_EXPECT_ERROR(make_synthetic_tokenizer_json(1 << 20), "at most");
}

TEST(TokenizerErrors, NoGgufPreNameForForeignRegexes) {
  json tj = make_synthetic_tokenizer_json(300);
  tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{N}+";
  const Tokenizer t = Tokenizer::from_hf_json(tj, nullptr, "f.json");
  STRATA_EXPECT_ERROR(t.to_gguf_metadata(), "pre-tokenizer name");
}

// ---------------------------------------------------------------------------------------
// BPE and UTF-8 helpers

TEST(Bpe, HeapMergeEqualsReference) {
  // Random small merge tables over 6 symbols; results are fresh ids.
  std::mt19937 rng(3);
  for (int table = 0; table < 50; ++table) {
    std::vector<BpeMerges::Merge> merges;
    int32_t next_id = 6;
    for (int m = 0; m < 25; ++m) {
      const int32_t hi = next_id;
      merges.push_back({static_cast<int32_t>(rng() % hi), static_cast<int32_t>(rng() % hi), next_id++});
    }
    const BpeMerges bpe(merges);
    for (int s = 0; s < 40; ++s) {
      std::vector<int32_t> ids(rng() % 20);
      for (auto& id : ids) id = static_cast<int32_t>(rng() % 6);
      auto fast = ids, ref = ids;
      bpe.apply(fast);
      bpe.apply_reference(ref);
      EXPECT_EQ(fast, ref);
    }
  }
}

TEST(Bpe, LowestRankFirstLeftmostOnTies) {
  // 0 0 -> 3 (rank 0); 3 0 -> 4 (rank 1)
  const BpeMerges bpe({{0, 0, 3}, {3, 0, 4}});
  std::vector<int32_t> ids{0, 0, 0};
  bpe.apply(ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{4}));
  std::vector<int32_t> ids2{0, 0, 0, 0};
  bpe.apply(ids2);
  EXPECT_EQ(ids2, (std::vector<int32_t>{3, 3}));
  std::vector<int32_t> none{1, 2};
  bpe.apply(none);
  EXPECT_EQ(none, (std::vector<int32_t>{1, 2}));
}

TEST(Utf8, SanitizeFollowsWhatwg) {
  EXPECT_EQ(utf8::sanitize("ok é 😀"), "ok é 😀");
  EXPECT_EQ(utf8::sanitize("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong: two bad bytes
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::sanitize("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate: three bad bytes
  EXPECT_EQ(utf8::sanitize("\xF0\x9F\x98"
                           "a"),
            "\xEF\xBF\xBD"
            "a");  // one maximal subpart
  EXPECT_EQ(utf8::sanitize("\xE4\xB8"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8::sanitize("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
  EXPECT_TRUE(utf8::is_valid("ok é 😀"));
  EXPECT_FALSE(utf8::is_valid("\xFF"));
}

TEST(Utf8, IncompleteTail) {
  EXPECT_EQ(utf8::incomplete_tail("ab"), 0u);
  EXPECT_EQ(utf8::incomplete_tail("a\xE4"), 1u);
  EXPECT_EQ(utf8::incomplete_tail("a\xE4\xB8"), 2u);
  EXPECT_EQ(utf8::incomplete_tail("\xE4\xB8\xAD"), 0u);
  EXPECT_EQ(utf8::incomplete_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8::incomplete_tail("\xE0\x80"), 0u);  // E0 80 can never complete
  EXPECT_EQ(utf8::incomplete_tail("\x80\x80"), 0u);
}

TEST(Utf8, ByteLevelTableIsABijection) {
  const auto& t = utf8::byte_to_codepoint();
  EXPECT_EQ(t[' '], 0x120u);
  EXPECT_EQ(t['\n'], 0x10Au);
  EXPECT_EQ(t['A'], static_cast<uint32_t>('A'));
  for (int b = 0; b < 256; ++b) EXPECT_EQ(utf8::codepoint_to_byte(t[b]), b);
  EXPECT_EQ(utf8::codepoint_to_byte(0x4E00), -1);
}

}  // namespace
}  // namespace strata::test

namespace strata::test {
namespace {

TEST(Tokenizer, LongRunsRoundTripAndSplitAlike) {
  const Tokenizer& tok = synthetic_tokenizer();
  const std::string text = std::string(200000, ' ') + "x" + std::string(100000, '7') +
                           std::string(50000, '\n') + std::string(100000, 'a') + "\t \r\n" +
                           std::string(30000, '!');
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  for (const std::string& re : *gguf_pre_regexes("deepseek-v3")) {
    SplitRegex split(re, "long");
    std::vector<std::string_view> a, b;
    split.split(text, a, true);
    split.split(text, b, false);
    EXPECT_EQ(a, b);
  }
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  const Tokenizer& tok = synthetic_tokenizer();
  const auto corpus = load_corpus();
  std::vector<std::vector<int32_t>> expected;
  for (const auto& c : corpus) expected.push_back(tok.encode(c.bytes));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (size_t i = 0; i < corpus.size(); ++i)
          mismatches[t] += tok.encode(corpus[i].bytes) != expected[i];
    });
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace strata::test
