// A small deterministic byte-level BPE tokenizer in the tokenizer.json schema, for tiny
// test models when the real DeepSeek tokenizer is not installed.
#include <map>
#include <unordered_map>

#include "runtime/common/error.h"
#include "runtime/tokenizer/regex_split.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_impl.h"

namespace strata {
namespace {

using nlohmann::json;

// Training text: English prose, Chinese, Japanese, Korean, numbers and code.
constexpr const char* kTrainingText = R"TXT(
The quick brown fox jumps over the lazy dog. The model reads the tokens of the prompt and
writes the next token, one at a time, until it reaches the end of the sentence. A mixture of
experts routes every token to a few experts; the router picks the experts with the highest
scores, and the outputs of the selected experts are weighted and added together. Memory is
organised in tiers: the fastest memory holds the hottest weights, the larger and slower memory
holds the rest, and the storage device streams the coldest experts when they are needed.
Attention compares the query of the current token with the keys of all previous tokens and
returns a weighted sum of their values. In the beginning there was the word, and the word was
split into pieces, and the pieces were merged again into tokens that the model understands.
Hello, world! How are you today? I am fine, thank you. What is the weather like in the city?
It is sunny and warm, with a light wind from the west and a temperature of 23 degrees.
There are 1234567 people, 3.14159 apples, 2024-05-17 dates and 0x7fffffff limits here.
深度学习模型通过大量的数据进行训练，然后可以回答问题、翻译语言和编写代码。我们今天去公园散步，
天气很好，阳光明媚。这个系统把专家的权重放在显卡、内存和固态硬盘上，并且根据使用频率来移动它们。
人工智能正在改变世界，研究人员每天都在努力提高模型的效率和准确性。中文分词是一个有趣的问题。
日本語のテキストも少し入れておきます。ひらがなとカタカナと漢字が混ざった文章です。東京は大きな都市で、
たくさんの人が電車で通勤しています。今日はとても良い天気ですね。ありがとうございます。
한국어 문장도 조금 있습니다. 오늘은 날씨가 좋습니다. 감사합니다. 서울은 큰 도시입니다.
Ceci est une phrase en français avec des accents: élève, garçon, très, où, déjà vu.
Это предложение на русском языке. Привет, мир! Как дела? Всё хорошо, спасибо.
def forward(self, x, positions):
    h = self.embed(x)
    for layer in self.layers:
        h = layer(h, positions)
    return self.head(self.norm(h))

class Expert:
    def __init__(self, dim, inter_dim):
        self.w1 = Linear(dim, inter_dim)
        self.w2 = Linear(inter_dim, dim)
        self.w3 = Linear(dim, inter_dim)

int main(int argc, char** argv) {
  std::vector<int> values = {1, 2, 3, 4, 5};
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] % 2 == 0) printf("%d is even\n", values[i]);
  }
  return 0;
}
for (const auto& token : tokens) { out.push_back(token.id); }
if (x != nullptr && y >= 0) { return x->value + y; } else { return -1; }
The tokenizer splits the text into words, numbers, punctuation and spaces, and then it
applies the merges in the order in which they were learnt from the training text.
)TXT";

const char* const kSpecials[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>",
                                 "<｜Assistant｜>", "<｜▁pad▁｜>"};
constexpr int kNumSpecials = 5;

}  // namespace

json make_synthetic_tokenizer_json(int vocab_size) {
  const std::string src = "synthetic tokenizer";
  if (vocab_size < 300)
    throw_error({src, "vocab_size", -1}, "vocab_size " + std::to_string(vocab_size) + " < 300");
  const int n_merges = vocab_size - 256 - kNumSpecials;

  // Words of the training text by the DeepSeek-V3 pre-tokenizer, with their counts.
  std::vector<std::string_view> pieces{std::string_view(kTrainingText)}, next;
  std::vector<std::unique_ptr<SplitRegex>> splits;
  for (const std::string& re : *gguf_pre_regexes("deepseek-v3")) {
    SplitRegex split(re, src);
    next.clear();
    for (std::string_view p : pieces) split.split(p, next);
    pieces.swap(next);
  }
  std::map<std::string_view, int> word_counts;
  for (std::string_view p : pieces) ++word_counts[p];
  std::vector<std::vector<int32_t>> words;
  std::vector<int> counts;
  for (const auto& [w, c] : word_counts) {
    std::vector<int32_t> syms;
    for (char ch : w) syms.push_back(static_cast<uint8_t>(ch));
    words.push_back(std::move(syms));
    counts.push_back(c);
  }

  std::vector<std::string> texts;
  std::unordered_map<std::string, int32_t> ids;
  for (int b = 0; b < 256; ++b) {
    texts.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));
    ids[texts.back()] = b;
  }
  json merges = json::array();
  // Greedy training: the most frequent adjacent pair, ties to the smallest (left, right).
  while (static_cast<int>(texts.size()) < 256 + n_merges) {
    std::map<std::pair<int32_t, int32_t>, int> pair_counts;
    for (size_t w = 0; w < words.size(); ++w)
      for (size_t i = 0; i + 1 < words[w].size(); ++i)
        pair_counts[{words[w][i], words[w][i + 1]}] += counts[w];
    if (pair_counts.empty())
      throw_error({src, "vocab_size", -1}, "the built-in text supports at most " +
                                               std::to_string(texts.size() + kNumSpecials) + " tokens");
    auto best = pair_counts.begin();
    for (auto it = pair_counts.begin(); it != pair_counts.end(); ++it)
      if (it->second > best->second) best = it;
    const auto [l, r] = best->first;
    const std::string merged = texts[static_cast<size_t>(l)] + texts[static_cast<size_t>(r)];
    auto [it, fresh] = ids.try_emplace(merged, static_cast<int32_t>(texts.size()));
    if (fresh) texts.push_back(merged);
    merges.push_back(texts[static_cast<size_t>(l)] + " " + texts[static_cast<size_t>(r)]);
    for (auto& syms : words) {
      std::vector<int32_t> out;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == l && syms[i + 1] == r) {
          out.push_back(it->second);
          ++i;
        } else {
          out.push_back(syms[i]);
        }
      }
      syms.swap(out);
    }
  }

  json vocab = json::object();
  for (size_t id = 0; id < texts.size(); ++id) vocab[texts[id]] = id;
  json added = json::array();
  for (int k = 0; k < kNumSpecials; ++k) {
    const bool special = k < 2 || k == 4;  // BOS, EOS, pad; User/Assistant are plain added tokens
    added.push_back({{"id", vocab_size - kNumSpecials + k},
                     {"content", kSpecials[k]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", !special},
                     {"special", special}});
  }
  json splits_json = json::array();
  for (const std::string& re : *gguf_pre_regexes("deepseek-v3"))
    splits_json.push_back(
        {{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}});
  splits_json.push_back(
      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};

  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", splits_json}}},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

json make_synthetic_tokenizer_config_json() {
  auto tok = [](const char* content) {
    return json{{"__type", "AddedToken"}, {"content", content}, {"lstrip", false},
                {"normalized", true},     {"rstrip", false},    {"single_word", false}};
  };
  return {{"add_bos_token", true},
          {"add_eos_token", false},
          {"bos_token", tok(kSpecials[0])},
          {"eos_token", tok(kSpecials[1])},
          {"pad_token", tok(kSpecials[1])},
          {"clean_up_tokenization_spaces", false},
          {"legacy", true},
          {"model_max_length", 16384},
          {"unk_token", nullptr},
          {"tokenizer_class", "LlamaTokenizerFast"}};
}

}  // namespace strata
