// Engram: the tokenizer compression on hand-derived cases, the n-gram hash against a
// hand-computed case and an independent implementation, the forward math against a direct
// double-precision reference, prefill == token-by-token, reset, and errors naming the
// checkpoint tensors. Models are make-tiny --engram checkpoints whose hash tensors are
// rewritten with chosen values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>

#include "runtime/format/safetensors_writer.h"
#include "runtime/model/engram.h"
#include "runtime/model/engram_token_map.h"
#include "runtime/model/model_files.h"
#include "runtime/model/weights.h"
#include "runtime/tiny/tiny_model.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

// ---------------------------------------------------------------------------------------------
// Tokenizer compression

// Byte-level (GPT-2) form of UTF-8 bytes, as a vocabulary stores them.
std::string byte_level(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) utf8::append(out, utf8::byte_to_codepoint()[b]);
  return out;
}

struct Added {
  int id;
  std::string content;
  bool special;
};

// Bytes at ids 0..255, `extra` (UTF-8 texts) from 256 on, then added tokens.
Tokenizer hand_tokenizer(const std::vector<std::string>& extra, const std::vector<Added>& added) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level(std::string(1, static_cast<char>(b)))] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[byte_level(extra[i])] = 256 + static_cast<int>(i);
  nlohmann::json add = nlohmann::json::array();
  for (const Added& a : added) add.push_back({{"id", a.id}, {"content", a.content}, {"special", a.special}});
  const nlohmann::json tj = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens", add}};
  return Tokenizer::from_hf_json(tj, nullptr, "hand tokenizer");
}

TEST(EngramTokenMap, NormalizesLikeTheReferenceSequence) {
  struct Case {
    const char* in;
    const char* want;
  };
  const Case cases[] = {
      {"Café", "cafe"},                              // precomposed accent: NFD then dropped
      {"Cafe\u0301", "cafe"},                        // decomposed accent
      {"  Hello\t\n  World \r\n", "hello world"},    // runs collapsed, ends stripped
      {"\uFB01", "fi"},                              // NFKC ligature
      {"\uFF28\uFF45\uFF4C\uFF4C\uFF4F", "hello"},   // fullwidth forms
      {"\u2460", "1"},                               // circled digit
      {"\u00B2", "2"},                               // superscript
      {"\u01C4", "dz"},                              // DŽ: compatibility split, caron dropped
      {"\u0130", "i"},                               // İ: NFD I + dot above, dot dropped
      {"\u03A3\u0391\u03A3", "\u03C3\u03B1\u03C3"},  // context-free lowercase: no final ς
      {"Stra\u00DFe", "stra\u00DFe"},                // ß is already lowercase
      {"\u0915\u093E", "\u0915"},                    // Devanagari vowel sign AA (Mc) is a mark too
      {" ", " "},                                    // a lone space stays
      {"\t\r\n ", " "},                              // a whitespace run is one space, kept
      {"\u00A0", " "},                               // NBSP -> NFKC space -> kept
      {"\u3000", " "},                               // ideographic space likewise
      {"\u2028x\u0085", "x"},                        // other White_Space is stripped at the ends
      {"\v", ""},                                    // VT is White_Space, not collapsed: stripped
      {"x\uE000y", "x y"},                           // the reference's sentinel becomes a space
      {"", ""},
  };
  for (const Case& c : cases) EXPECT_EQ(engram_normalize(c.in), c.want) << "input '" << c.in << "'";
  STRATA_EXPECT_ERROR(engram_normalize("\xC3"), "UTF-8");
}

TEST(EngramTokenMap, HandMadeTokenizer) {
  // Byte ids 0..255 first (derived by hand from the rules): bytes 0-8 -> 0-8; \t \n \r and
  // space share " " = 9; \v -> key "\v" = 10 and \f = 11 (stripped to "", so the text
  // itself); 14-31 -> 12-29; '!'..'@' -> 30-61; 'A'..'Z' and 'a'..'z' -> 62-87; '['..'`' ->
  // 88-93; '{'..DEL -> 94-98; bytes 128-255 alone decode to U+FFFD and key by their raw
  // token strings: 99-226.
  const std::vector<std::string> extra = {
      "Caf\u00E9",                       // 256 -> "cafe": 227
      "CAFE",                            // 257 -> 227
      " caf\u00E9",                      // 258 -> 227
      "\uFB01",                          // 259 -> "fi": 228
      "fi",                              // 260 -> 228
      "\u2460",                          // 261 -> "1" = byte '1' = 46
      "\uFF28\uFF45\uFF4C\uFF4C\uFF4F",  // 262 -> "hello": 229
      "Hello\t\n  World",                // 263 -> "hello world": 230
      "  ",                              // 264 -> " " = 9
      "\u00A0",                          // 265 -> 9
      "\u03A3\u0391\u03A3",              // 266 -> "σασ": 231
      "\u03C3\u03B1\u03C3",              // 267 -> 231
      "\u0130",                          // 268 -> "i" = byte 'i' = 70
      "e\u0301",                         // 269 -> "e" = byte 'e' = 66
      "\u0915\u093E",                    // 270 -> "क": 232
      "\u0915",                          // 271 -> 232
      "\xE4\xB8",                        // 272: partial UTF-8 -> U+FFFD -> raw key: 233
      "\uFFFD",                          // 273: a real U+FFFD -> raw key: 234
      "x\uE000y",                        // 274 -> "x y": 235
      "x y",                             // 275 -> 235
  };
  // 276 unused ("" -> key ""): 236; 277 special BOS -> "<|begin▁of▁sentence|>": 237;
  // 278 the same text in capitals and ASCII bars (a plain added token): 237.
  const Tokenizer tok = hand_tokenizer(extra, {{277, "<\uFF5Cbegin\u2581of\u2581sentence\uFF5C>", true},
                                               {278, "<|BEGIN\u2581OF\u2581SENTENCE|>", false}});
  const std::vector<int32_t> map = engram_token_map(tok);
  ASSERT_EQ(map.size(), 279u);
  std::map<int, int> want = {
      {0, 0},     {8, 8},     {9, 9},     {10, 9},    {11, 10},   {12, 11},   {13, 9},    {14, 12},
      {31, 29},   {32, 9},    {33, 30},   {49, 46},   {64, 61},   {65, 62},   {90, 87},   {91, 88},
      {96, 93},   {97, 62},   {101, 66},  {105, 70},  {122, 87},  {123, 94},  {127, 98},  {128, 99},
      {255, 226}, {256, 227}, {257, 227}, {258, 227}, {259, 228}, {260, 228}, {261, 46},  {262, 229},
      {263, 230}, {264, 9},   {265, 9},   {266, 231}, {267, 231}, {268, 70},  {269, 66},  {270, 232},
      {271, 232}, {272, 233}, {273, 234}, {274, 235}, {275, 235}, {276, 236}, {277, 237}, {278, 237}};
  for (const auto& [id, nid] : want) EXPECT_EQ(map[static_cast<size_t>(id)], nid) << "token id " << id;
  EXPECT_EQ(*std::max_element(map.begin(), map.end()), 237);
  // Every compressed id is used, and first met in id order.
  int next = 0;
  for (int32_t v : map) {
    ASSERT_LE(v, next);
    if (v == next) ++next;
  }
}

// ---------------------------------------------------------------------------------------------
// Tiny models

// The tiny Engram config: layer 1, orders 2..3, two heads each of 8 dims, vocab sizes 509/521.
constexpr int kLayer = 1;
const std::vector<int64_t> kHeadSizes = {509, 521, 523, 541};  // primes from 509, from 521 (unused)
const std::vector<int64_t> kOffsets = {0, 509, 1030, 1553};
// Large odd multipliers: the products wrap around 64 bits, as NumPy's int64 does.
const std::vector<int64_t> kMultipliers = {9223372036854775807, 6148914691236517205, 3};

std::vector<uint8_t> ints_bytes(const std::vector<int64_t>& v, WeightType t) {
  std::vector<uint8_t> out;
  for (int64_t x : v) {
    uint8_t b[8];
    if (t == WeightType::I32) {
      const int32_t y = static_cast<int32_t>(x);
      std::memcpy(b, &y, 4);
      out.insert(out.end(), b, b + 4);
    } else if (t == WeightType::I64) {
      std::memcpy(b, &x, 8);
      out.insert(out.end(), b, b + 8);
    } else {
      const float y = static_cast<float>(x);
      std::memcpy(b, &y, 4);
      out.insert(out.end(), b, b + 4);
    }
  }
  return out;
}

struct Override {
  WeightType type;
  std::vector<int64_t> values;
};
using Overrides = std::map<std::string, Override>;

// A generated tiny model (f32, HF) per architecture, made once for the whole binary.
const std::filesystem::path& raw_model(Arch arch) {
  static test::ScratchDir dir("engram_raw");
  static std::map<Arch, std::filesystem::path> made;
  auto it = made.find(arch);
  if (it != made.end()) return it->second;
  TinyOptions o;
  o.arch = arch;
  o.engram = true;
  o.dtype = "f32";
  o.seed = 11;
  return made[arch] = make_tiny_model(o, dir / ("m" + std::to_string(static_cast<int>(arch)))).path;
}

// The tiny model of `arch` with the Engram hash tensors of layer 1 replaced: the valid values
// above, then `ov` (canonical name -> type and values).
std::filesystem::path model_with(const test::ScratchDir& dir, Arch arch, const Overrides& ov = {}) {
  const std::filesystem::path src = raw_model(arch);
  const std::string p = "layers.1.engram.";
  Overrides all = {{p + "multipliers", {WeightType::I64, kMultipliers}},
                   {p + "head_sizes", {WeightType::I32, kHeadSizes}}};
  for (const auto& [k, v] : ov) all[k] = v;
  std::vector<SafetensorsTensorData> tensors;
  {
    const WeightIndex idx = WeightIndex::open(src);
    for (const TensorEntry& e : idx.tensors()) {
      auto o = all.find(e.name);
      if (o != all.end()) {
        tensors.push_back({e.stored_name,
                           o->second.type,
                           {static_cast<int64_t>(o->second.values.size())},
                           ints_bytes(o->second.values, o->second.type)});
      } else {
        const auto b = idx.bytes(e);
        tensors.push_back({e.stored_name, e.stored_type, e.shape, std::vector<uint8_t>(b.begin(), b.end())});
      }
    }
  }
  const std::filesystem::path out = dir / "model";
  std::filesystem::remove_all(out);
  write_sharded_safetensors(out, std::move(tensors), 1);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(src / f, out / f);
  return out;
}

// An opened model with its Weights and Engram.
struct Loaded {
  ModelFiles files;
  std::unique_ptr<Weights> weights;
  std::vector<int32_t> token_map;
  // No schema check: some cases give the hash tensors shapes the config does not imply.
  explicit Loaded(const std::filesystem::path& p) : files(open_model(p, {.check_schema = false})) {
    weights = std::make_unique<Weights>(files.index);
    token_map = engram_token_map(*files.tokenizer);
  }
  Engram engram() const { return Engram(files.config, *weights, token_map); }
};

std::vector<int32_t> random_tokens(size_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

std::vector<float> random_h(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> h(n);
  for (float& x : h) x = d(rng);
  return h;
}

TEST(Engram, HashMatchesAHandComputedCase) {
  test::ScratchDir dir("engram");
  const Loaded m(model_with(dir, Arch::DeepseekV3));
  // The generated tokenizer starts with the 256 byte tokens: pad id 2 -> 2, 'A' -> 62, 'b' -> 63.
  EXPECT_EQ(m.token_map[2], 2);
  EXPECT_EQ(m.token_map[65], 62);
  EXPECT_EQ(m.token_map[97], 62);
  EXPECT_EQ(m.token_map[98], 63);
  Engram e = m.engram();
  EXPECT_TRUE(e.is_layer(kLayer));
  EXPECT_FALSE(e.is_layer(0));
  EXPECT_FALSE(e.is_layer(2));
  EXPECT_EQ(e.heads(), 4);
  const int32_t toks[2] = {65, 98};
  e.begin_step(toks);
  // Token 0: tok = (62, pad 2, pad 2). mix2 = 62·m0 ^ 2·m1 = 6148914691236517224 (wrapped);
  // mix3 = mix2 ^ 2·3 = 6148914691236517230. Token 1: tok = (63, 62, 2): mix2 =
  // -3074457345618258601, mix3 = -3074457345618258607 (negative: the floored mod applies).
  const std::vector<int64_t> want = {289, 749, 1276, 1838, 121, 921, 1438, 1689};
  const auto rows = e.step_rows(kLayer);
  EXPECT_EQ(std::vector<int64_t>(rows.begin(), rows.end()), want);
}

// The hash once more, written differently: 128-bit products reduced to 64-bit two's complement.
int64_t wrap64(__int128 v) {
  const unsigned __int128 u = static_cast<unsigned __int128>(v) & ~static_cast<uint64_t>(0);
  return static_cast<int64_t>(static_cast<uint64_t>(u));
}

std::vector<int64_t> expected_rows(const std::vector<int32_t>& comp, int32_t pad, size_t t) {
  auto tok = [&](size_t k) -> __int128 { return t >= k ? comp[t - k] : pad; };
  std::vector<int64_t> out;
  for (int n = 2; n <= 3; ++n) {
    int64_t mix = 0;
    for (int k = 0; k < n; ++k)
      mix ^= wrap64(tok(static_cast<size_t>(k)) * kMultipliers[static_cast<size_t>(k)]);
    for (int j = 0; j < 2; ++j) {
      const size_t h = static_cast<size_t>((n - 2) * 2 + j);
      const int64_t p = kHeadSizes[h];
      out.push_back(((mix % p) + p) % p + kOffsets[h]);
    }
  }
  return out;
}

TEST(Engram, RowsMatchAnIndependentHashAndStayInTheirHeads) {
  test::ScratchDir dir("engram");
  const Loaded m(model_with(dir, Arch::DeepseekV3));
  Engram e = m.engram();
  EXPECT_EQ(e.table(kLayer).rows(), 509 + 521 + 523 + 541);
  EXPECT_EQ(e.table(kLayer).dim(), 8);
  const auto toks = random_tokens(300, static_cast<int32_t>(m.token_map.size()), 5);
  std::vector<int32_t> comp;
  for (int32_t t : toks) comp.push_back(m.token_map[static_cast<size_t>(t)]);
  const int32_t pad = m.token_map[2];
  size_t pos = 0, mismatches = 0;
  for (size_t step : {1, 7, 2, 90, 200}) {  // uneven steps over the 300 tokens
    e.begin_step(std::span<const int32_t>(toks).subspan(pos, step));
    const auto rows = e.step_rows(kLayer);
    ASSERT_EQ(rows.size(), step * 4);
    for (size_t t = 0; t < step; ++t) {
      const auto want = expected_rows(comp, pad, pos + t);
      for (size_t h = 0; h < 4; ++h) {
        const int64_t r = rows[t * 4 + h];
        mismatches += r != want[h];
        ASSERT_GE(r, kOffsets[h]);
        ASSERT_LT(r, kOffsets[h] + kHeadSizes[h]);
        ASSERT_LT(r, e.table(kLayer).rows());
      }
    }
    pos += step;
  }
  EXPECT_EQ(pos, toks.size());
  EXPECT_EQ(mismatches, 0u);
  STRATA_EXPECT_ERROR(e.step_rows(0), "layer 0", "not an Engram layer");
}

// Direct double-precision reference of one step from the start of a sequence.
std::vector<float> reference_forward(const Loaded& m, std::span<const int64_t> rows,
                                     const std::vector<float>& h, int64_t n) {
  const ModelConfig& c = m.files.config;
  const Weights& w = *m.weights;
  const int64_t H = c.hidden_size, S = c.is_v4() ? c.hc_mult : 1, dim = 8, heads = 4, E = heads * dim, K = 4,
                N = 3;
  const std::string p = "layers.1.engram.";
  const auto table = w.vector(p + "multi_head_embedding.embedding.weight");
  const auto wv = w.vector(p + "value_proj.weight"), bv = w.vector(p + "value_proj.bias");
  const auto conv = w.vector(p + "short_conv.conv.weight");
  auto rms = [](const std::vector<double>& x, const std::vector<float>& g, double eps) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * g[i];
    return y;
  };
  auto proj = [&](const std::vector<float>& W, const std::vector<float>& b, const std::vector<double>& x) {
    std::vector<double> y(static_cast<size_t>(H));
    for (int64_t r = 0; r < H; ++r) {
      double s = b[static_cast<size_t>(r)];
      for (int64_t k = 0; k < E; ++k) s += W[static_cast<size_t>(r * E + k)] * x[static_cast<size_t>(k)];
      y[static_cast<size_t>(r)] = s;
    }
    return y;
  };
  std::vector<std::vector<double>> v(static_cast<size_t>(n)), vn(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> e;
    for (int64_t j = 0; j < heads; ++j)
      for (int64_t d = 0; d < dim; ++d)
        e.push_back(table[static_cast<size_t>(rows[t * heads + j] * dim + d)]);
    const auto value = proj(wv, bv, e);
    for (int64_t i = 0; i < S; ++i) {
      const std::string s = std::to_string(i);
      const auto key =
          rms(proj(w.vector(p + "key_projs." + s + ".weight"), w.vector(p + "key_projs." + s + ".bias"), e),
              w.vector(p + "norm1." + s + ".weight"), std::numeric_limits<float>::epsilon());
      std::vector<double> hi(h.begin() + (t * S + i) * H, h.begin() + (t * S + i + 1) * H);
      const auto q = rms(hi, w.vector(p + "norm2." + s + ".weight"), std::numeric_limits<float>::epsilon());
      double g = 0;
      for (int64_t d = 0; d < H; ++d) g += key[static_cast<size_t>(d)] * q[static_cast<size_t>(d)];
      g /= std::sqrt(static_cast<double>(H));
      g = (g > 0 ? 1 : g < 0 ? -1 : 0) * std::sqrt(std::max(std::fabs(g), 1e-6));
      const double a = 1 / (1 + std::exp(-g));
      std::vector<double> vi(static_cast<size_t>(H));
      for (int64_t d = 0; d < H; ++d) vi[static_cast<size_t>(d)] = a * value[static_cast<size_t>(d)];
      const auto vni = rms(vi, w.vector(p + "short_conv.norms." + s + ".weight"), 1e-5);
      v[static_cast<size_t>(t)].insert(v[static_cast<size_t>(t)].end(), vi.begin(), vi.end());
      vn[static_cast<size_t>(t)].insert(vn[static_cast<size_t>(t)].end(), vni.begin(), vni.end());
    }
  }
  std::vector<float> out(h);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t ch = 0; ch < S * H; ++ch) {
      double y = 0;
      for (int64_t j = 0; j < K; ++j) {
        const int64_t src = t - (K - 1 - j) * N;
        if (src >= 0)
          y += conv[static_cast<size_t>(ch * K + j)] * vn[static_cast<size_t>(src)][static_cast<size_t>(ch)];
      }
      out[static_cast<size_t>(t * S * H + ch)] +=
          static_cast<float>(v[static_cast<size_t>(t)][static_cast<size_t>(ch)] + y / (1 + std::exp(-y)));
    }
  return out;
}

TEST(Engram, ApplyMatchesADirectReference) {
  test::ScratchDir dir("engram");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV4}) {
    const Loaded m(model_with(dir, arch));
    Engram e = m.engram();
    const int64_t n = 14, S = arch == Arch::DeepseekV4 ? 4 : 1, H = m.files.config.hidden_size;
    ASSERT_EQ(e.streams(), S);
    const auto toks = random_tokens(n, static_cast<int32_t>(m.token_map.size()), 9);
    auto h = random_h(static_cast<size_t>(n * S * H), 3);
    e.begin_step(toks);
    const auto rows = e.step_rows(kLayer);
    const auto ref = reference_forward(m, rows, h, n);
    const auto before = h;
    e.apply(kLayer, h.data(), n);
    EXPECT_LT(test::max_rel(h, ref), 1e-5) << arch_name(arch);
    EXPECT_GT(test::max_rel(h, before), 1e-2) << "Engram should change h";
  }
}

TEST(Engram, GatesAreInsideZeroOne) {
  test::ScratchDir dir("engram");
  const Loaded m(model_with(dir, Arch::DeepseekV4));
  Engram e = m.engram();
  const int64_t n = 20, S = 4, H = m.files.config.hidden_size;
  e.begin_step(random_tokens(n, static_cast<int32_t>(m.token_map.size()), 2));
  auto h = random_h(static_cast<size_t>(n * S * H), 4);
  // A large hidden state does not saturate the gate: only its direction matters.
  for (size_t i = 0; i < static_cast<size_t>(S * H); ++i) h[i] *= 1e6f;
  e.apply(kLayer, h.data(), n);
  const auto g = e.last_gates(kLayer);
  ASSERT_EQ(g.size(), static_cast<size_t>(n * S));
  float lo = 1, hi = 0;
  for (float x : g) {
    EXPECT_GT(x, 0.0f);
    EXPECT_LT(x, 1.0f);
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_GT(hi - lo, 0.05f) << "gates should vary with the token and the stream";
  EXPECT_TRUE(std::all_of(h.begin(), h.end(), [](float x) { return std::isfinite(x); }));
}

TEST(Engram, OneStepOfNTokensEqualsNStepsOfOne) {
  test::ScratchDir dir("engram");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV4}) {
    const Loaded m(model_with(dir, arch));
    const int64_t n = 16, S = arch == Arch::DeepseekV4 ? 4 : 1, H = m.files.config.hidden_size, C = S * H;
    const auto toks = random_tokens(n, static_cast<int32_t>(m.token_map.size()), 7);
    const auto h0 = random_h(static_cast<size_t>(n * C), 8);

    Engram a = m.engram();
    auto ha = h0;
    a.begin_step(toks);
    a.apply(kLayer, ha.data(), n);

    Engram b = m.engram();
    auto hb = h0;
    std::vector<int64_t> rows_b;
    for (int64_t t = 0; t < n; ++t) {
      b.begin_step(std::span<const int32_t>(toks).subspan(static_cast<size_t>(t), 1));
      const auto r = b.step_rows(kLayer);
      rows_b.insert(rows_b.end(), r.begin(), r.end());
      b.apply(kLayer, hb.data() + t * C, 1);
    }
    const auto ra = a.step_rows(kLayer);
    EXPECT_EQ(std::vector<int64_t>(ra.begin(), ra.end()), rows_b) << arch_name(arch);
    EXPECT_LE(test::max_rel(ha, hb), 1e-6) << arch_name(arch);
    EXPECT_EQ(a.n_past(), n);
    EXPECT_EQ(b.n_past(), n);

    // The history matters: the last token alone, without its predecessors, differs.
    Engram c = m.engram();
    std::vector<float> hc(h0.end() - C, h0.end());
    c.begin_step(std::span<const int32_t>(toks).subspan(static_cast<size_t>(n - 1), 1));
    c.apply(kLayer, hc.data(), 1);
    const std::vector<float> last_a(ha.end() - C, ha.end());
    EXPECT_GT(test::max_rel(hc, last_a), 1e-3) << arch_name(arch);
  }
}

TEST(Engram, ResetForgetsTheSequence) {
  test::ScratchDir dir("engram");
  const Loaded m(model_with(dir, Arch::DeepseekV4));
  const int64_t n = 9, C = 4 * m.files.config.hidden_size;
  const auto toks = random_tokens(n, static_cast<int32_t>(m.token_map.size()), 1);
  const auto h0 = random_h(static_cast<size_t>(n * C), 2);
  Engram e = m.engram();
  auto run = [&] {
    auto h = h0;
    e.begin_step(std::span<const int32_t>(toks).first(4));
    e.apply(kLayer, h.data(), 4);
    e.begin_step(std::span<const int32_t>(toks).subspan(4));
    e.apply(kLayer, h.data() + 4 * C, n - 4);
    return h;
  };
  const auto first = run();
  const auto r1 = e.step_rows(kLayer);
  const std::vector<int64_t> rows1(r1.begin(), r1.end());
  const auto carried = run();  // continues the sequence: different
  EXPECT_GT(test::max_rel(carried, first), 1e-3);
  e.reset();
  EXPECT_EQ(e.n_past(), 0);
  const auto again = run();
  EXPECT_EQ(again, first);
  const auto r2 = e.step_rows(kLayer);
  EXPECT_EQ(std::vector<int64_t>(r2.begin(), r2.end()), rows1);
}

TEST(Engram, MisuseIsAnError) {
  test::ScratchDir dir("engram");
  const Loaded m(model_with(dir, Arch::DeepseekV3));
  Engram e = m.engram();
  const int32_t vocab = static_cast<int32_t>(m.token_map.size());
  const int32_t bad[3] = {5, vocab, 6};
  STRATA_EXPECT_ERROR(e.begin_step(bad), "token id " + std::to_string(vocab), "position 1", "vocabulary");
  const int32_t neg[1] = {-1};
  STRATA_EXPECT_ERROR(e.begin_step(neg), "token id -1");
  EXPECT_EQ(e.n_past(), 0) << "a rejected step leaves the state unchanged";
  const int32_t ok[2] = {5, 6};
  std::vector<float> h(2 * 64, 0.5f);
  e.begin_step(ok);
  STRATA_EXPECT_ERROR(e.apply(kLayer, h.data(), 1), "1 tokens", "the step has 2");
  e.apply(kLayer, h.data(), 2);
  STRATA_EXPECT_ERROR(e.apply(kLayer, h.data(), 2), "applied twice");
  e.begin_step(ok);
  e.begin_step(ok);  // the layer missed the previous step
  STRATA_EXPECT_ERROR(e.apply(kLayer, h.data(), 2), "skipped");
  STRATA_EXPECT_ERROR(e.apply(0, h.data(), 2), "layer 0", "not an Engram layer");
}

TEST(Engram, BadHashTensorsAreErrorsNamingThem) {
  test::ScratchDir dir("engram");
  const std::string mul = "layers.1.engram.multipliers", hs = "layers.1.engram.head_sizes";
  struct Case {
    Overrides ov;
    std::string tensor, what;
  };
  const Case cases[] = {
      {{{mul, {WeightType::I64, {7, 4, 3}}}}, mul, "multiplier 1 is 4"},
      {{{mul, {WeightType::I32, {0, 5, 3}}}}, mul, "multiplier 0 is 0"},
      {{{mul, {WeightType::I64, {7, 5, -3}}}}, mul, "positive odd"},
      {{{mul, {WeightType::I32, {7, 5}}}}, mul, "[3]"},
      {{{mul, {WeightType::F32, {7, 5, 3}}}}, mul, "expected I32 or I64"},
      {{{hs, {WeightType::I32, {509, 521, 523, 547}}}}, hs, "head 3 has size 547"},
      {{{hs, {WeightType::I64, {521, 509, 523, 541}}}}, hs, "head 0 has size 521"},
      {{{hs, {WeightType::I32, {509, 521, 523}}}}, hs, "[4]"},
  };
  for (const Case& c : cases) {
    const Loaded m(model_with(dir, Arch::DeepseekV3, c.ov));
    STRATA_EXPECT_ERROR(m.engram(), "'" + c.tensor + "'", c.what);
  }
  // The valid values load (I32 multipliers too).
  const Loaded ok(model_with(dir, Arch::DeepseekV3, {{mul, {WeightType::I32, {7, 5, 3}}}}));
  EXPECT_NO_THROW(ok.engram());
}

}  // namespace
}  // namespace strata
