// Tokenizer from / to GGUF `tokenizer.ggml.*` metadata (llama.cpp conventions).
#include "runtime/common/error.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_impl.h"

namespace strata {
namespace {

using nlohmann::json;

// llama.cpp token types.
constexpr int kTypeNormal = 1, kTypeControl = 3, kTypeUserDefined = 4, kTypeUnused = 5;

const json& require(const json& md, const std::string& key, const std::string& src) {
  auto it = md.find(key);
  if (it == md.end()) throw_error({src, key, -1}, "missing GGUF tokenizer key");
  return *it;
}

// A token id of `tokens` tokens (tokenizer.ggml.tokens), or -1 when the key is absent.
int32_t optional_id(const json& md, const std::string& key, const std::string& src, size_t tokens) {
  auto it = md.find(key);
  if (it == md.end() || it->is_null()) return -1;
  if (!it->is_number_integer()) throw_error({src, key, -1}, "not an integer");
  const int64_t v = it->get<int64_t>();
  if (v < 0) throw_error({src, key, -1}, "token id " + std::to_string(v) + " is negative");
  if (static_cast<uint64_t>(v) >= tokens)
    throw_error({src, key, -1},
                "token id " + std::to_string(v) + " is past the vocabulary: 'tokenizer.ggml.tokens' has " +
                    std::to_string(tokens) + " tokens (ids 0 to " + std::to_string(tokens - 1) + ")");
  return static_cast<int32_t>(v);
}

}  // namespace

Tokenizer Tokenizer::from_gguf_metadata(const json& md, const std::string& src) {
  if (!md.is_object()) throw_error({src, "", -1}, "GGUF metadata is not an object");
  const json& model = require(md, "tokenizer.ggml.model", src);
  if (model != "gpt2")
    throw_error({src, "tokenizer.ggml.model", -1},
                "unsupported tokenizer model " + model.dump() + " (only byte-level BPE 'gpt2')");
  const json& pre = require(md, "tokenizer.ggml.pre", src);
  const std::string pre_name = pre.is_string() ? pre.get<std::string>() : pre.dump();
  const std::vector<std::string>* regexes = gguf_pre_regexes(pre_name);
  if (!regexes) throw_error({src, "tokenizer.ggml.pre", -1}, "unknown pre-tokenizer '" + pre_name + "'");

  const json& tokens = require(md, "tokenizer.ggml.tokens", src);
  if (!tokens.is_array() || tokens.empty())
    throw_error({src, "tokenizer.ggml.tokens", -1}, "not a non-empty array");
  const json* types = md.contains("tokenizer.ggml.token_type") ? &md["tokenizer.ggml.token_type"] : nullptr;
  if (types && (!types->is_array() || types->size() != tokens.size()))
    throw_error({src, "tokenizer.ggml.token_type", -1},
                "needs one entry per token (" + std::to_string(tokens.size()) + ")");

  TokenizerSpec spec;
  spec.source = src;
  spec.texts.resize(tokens.size());
  spec.kinds.resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!tokens[i].is_string())
      throw_error({src, "tokenizer.ggml.tokens[" + std::to_string(i) + "]", -1}, "not a string");
    int type = kTypeNormal;
    if (types) {
      if (!(*types)[i].is_number_integer())
        throw_error({src, "tokenizer.ggml.token_type[" + std::to_string(i) + "]", -1}, "not an integer");
      type = (*types)[i].get<int>();
    }
    std::string text = tokens[i].get<std::string>();
    const auto id = static_cast<int32_t>(i);
    if (type == kTypeUnused) {
      spec.kinds[i] = TokenKind::kUnused;
      continue;
    }
    spec.kinds[i] = type == kTypeControl       ? TokenKind::kSpecial
                    : type == kTypeUserDefined ? TokenKind::kAdded
                                               : TokenKind::kNormal;
    spec.vocab.emplace(text, id);  // first id wins, as in the HF vocabulary
    spec.texts[i] = std::move(text);
  }

  if (md.contains("tokenizer.ggml.merges")) {
    const json& merges = md["tokenizer.ggml.merges"];
    if (!merges.is_array()) throw_error({src, "tokenizer.ggml.merges", -1}, "not an array");
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string key = "tokenizer.ggml.merges[" + std::to_string(r) + "]";
      if (!merges[r].is_string()) throw_error({src, key, -1}, "not a string");
      const std::string s = merges[r].get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) throw_error({src, key, -1}, "merge '" + s + "' has no space");
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    }
  }
  spec.split_regexes = *regexes;
  spec.bos = optional_id(md, "tokenizer.ggml.bos_token_id", src, tokens.size());
  spec.eos = optional_id(md, "tokenizer.ggml.eos_token_id", src, tokens.size());
  auto ab = md.find("tokenizer.ggml.add_bos_token");
  spec.add_bos = ab != md.end() && ab->is_boolean() && ab->get<bool>();
  return Tokenizer(build_tokenizer(std::move(spec)));
}

json Tokenizer::to_gguf_metadata(int64_t vocab_rows) const {
  const Impl& im = *impl_;
  std::vector<std::string> regexes;
  for (const auto& s : im.splits) regexes.push_back(s->pattern());
  const std::string pre = gguf_pre_name(regexes);
  if (pre.empty())
    throw_error({im.source, "tokenizer.ggml.pre", -1}, "the split regexes have no GGUF pre-tokenizer name");

  json tokens = json::array(), types = json::array(), merges = json::array();
  for (size_t id = 0; id < im.texts.size(); ++id) {
    switch (im.kinds[id]) {
      case TokenKind::kUnused:
        tokens.push_back("[PAD" + std::to_string(id) + "]");
        types.push_back(kTypeUnused);
        break;
      case TokenKind::kNormal:
        tokens.push_back(im.texts[id]);
        types.push_back(kTypeNormal);
        break;
      case TokenKind::kAdded:
        tokens.push_back(im.texts[id]);
        types.push_back(kTypeUserDefined);
        break;
      case TokenKind::kSpecial:
        tokens.push_back(im.texts[id]);
        types.push_back(kTypeControl);
        break;
    }
  }
  for (auto id = static_cast<int64_t>(im.texts.size()); id < vocab_rows; ++id) {
    tokens.push_back("[PAD" + std::to_string(id) + "]");
    types.push_back(kTypeUnused);
  }
  for (const auto& m : im.merges.merges())
    merges.push_back(im.texts[static_cast<size_t>(m.left)] + " " + im.texts[static_cast<size_t>(m.right)]);

  json md = json::object();
  md["tokenizer.ggml.model"] = "gpt2";
  md["tokenizer.ggml.pre"] = pre;
  md["tokenizer.ggml.tokens"] = std::move(tokens);
  md["tokenizer.ggml.token_type"] = std::move(types);
  md["tokenizer.ggml.merges"] = std::move(merges);
  if (im.bos >= 0) md["tokenizer.ggml.bos_token_id"] = static_cast<uint32_t>(im.bos);
  if (im.eos >= 0) md["tokenizer.ggml.eos_token_id"] = static_cast<uint32_t>(im.eos);
  md["tokenizer.ggml.add_bos_token"] = im.add_bos;
  return md;
}

}  // namespace strata
