// Tokenizer from HF tokenizer.json (+ tokenizer_config.json).
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/common/json_file.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_impl.h"

namespace strata {
namespace {

using nlohmann::json;

// The GPT-2 split of a ByteLevel pre-tokenizer with use_regex = true.
constexpr const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}/-").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

bool truthy(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

// Collects the split regexes of a pre_tokenizer tree; sets byte_level when one is found.
// Sequences nest; real tokenizers use one level. Deeper than this is a malformed (or hostile)
// file, refused before the recursion could exhaust the stack.
constexpr int kMaxPreTokenizerDepth = 32;

void collect_pre(const json& pt, const std::string& src, std::vector<std::string>& regexes, bool& byte_level,
                 int depth = 0) {
  if (pt.is_null()) return;
  if (depth > kMaxPreTokenizerDepth)
    throw_error({src, "pre_tokenizer", -1},
                "Sequence nested more than " + std::to_string(kMaxPreTokenizerDepth) + " levels deep");
  const std::string type = pt.is_object() ? pt.value("type", "") : "";
  if (type == "Sequence") {
    auto it = pt.find("pretokenizers");
    if (it == pt.end() || !it->is_array())
      throw_error({src, "pre_tokenizer.pretokenizers", -1}, "missing array");
    for (const json& p : *it) collect_pre(p, src, regexes, byte_level, depth + 1);
  } else if (type == "Split") {
    if (byte_level) throw_error({src, "pre_tokenizer", -1}, "a Split after ByteLevel is not supported");
    const std::string behavior = pt.value("behavior", "");
    if (behavior != "Isolated" || truthy(pt, "invert"))
      throw_error({src, "pre_tokenizer.Split", -1},
                  "unsupported Split behavior '" + behavior + "' (only Isolated without invert)");
    const json& pat = pt.contains("pattern") ? pt["pattern"] : json();
    if (pat.contains("Regex") && pat["Regex"].is_string()) {
      regexes.push_back(pat["Regex"].get<std::string>());
    } else if (pat.contains("String") && pat["String"].is_string()) {
      regexes.push_back(regex_escape(pat["String"].get<std::string>()));
    } else {
      throw_error({src, "pre_tokenizer.Split.pattern", -1}, "needs a Regex or String");
    }
  } else if (type == "ByteLevel") {
    if (truthy(pt, "add_prefix_space"))
      throw_error({src, "pre_tokenizer.ByteLevel", -1}, "add_prefix_space is not supported");
    if (!pt.contains("use_regex") || truthy(pt, "use_regex")) regexes.push_back(kGpt2Regex);
    byte_level = true;
  } else {
    throw_error({src, "pre_tokenizer", -1}, "unsupported pre-tokenizer type '" + type + "'");
  }
}

// Token text of a config entry: "text" or {"content": "text"}; "" when absent/null.
std::string config_token(const json* cfg, const char* key) {
  if (!cfg || !cfg->is_object()) return "";
  auto it = cfg->find(key);
  if (it == cfg->end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return "";
}


}  // namespace

static std::shared_ptr<const Tokenizer::Impl> tokenizer_from_hf_json(const json& tj, const json* cfg,
                                                                   const std::string& src) {
  if (!tj.is_object()) throw_error({src, "", -1}, "tokenizer.json is not a JSON object");
  TokenizerSpec spec;
  spec.source = src;

  auto mit = tj.find("model");
  if (mit == tj.end() || !mit->is_object()) throw_error({src, "model", -1}, "missing model object");
  const json& model = *mit;
  if (model.contains("type") && model["type"] != "BPE")
    throw_error({src, "model.type", -1}, "unsupported model type " + model["type"].dump() + " (only BPE)");
  if (truthy(model, "byte_fallback"))
    throw_error({src, "model.byte_fallback", -1}, "byte_fallback is not supported");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(k) && !model[k].is_null())
      throw_error({src, std::string("model.") + k, -1}, "not supported");
  auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object())
    throw_error({src, "model.vocab", -1}, "missing vocabulary object");

  int64_t max_id = -1;
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > INT32_MAX)
      throw_error({src, "model.vocab." + it.key(), -1}, "token id is not a non-negative 32-bit integer");
    max_id = std::max(max_id, it->get<int64_t>());
  }
  const json empty_array = json::array();
  const json& added =
      tj.contains("added_tokens") && tj["added_tokens"].is_array() ? tj["added_tokens"] : empty_array;
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
        a["id"].get<int64_t>() > INT32_MAX || !a.contains("content") || !a["content"].is_string())
      throw_error({src, "added_tokens", -1}, "entry needs an integer id and a string content: " + a.dump());
    if (truthy(a, "lstrip") || truthy(a, "rstrip") || truthy(a, "single_word"))
      throw_error({src, "added_tokens", -1}, "lstrip/rstrip/single_word are not supported: " + a.dump());
    max_id = std::max(max_id, a["id"].get<int64_t>());
  }
  // Ids may leave gaps (unused rows), but an id far past the number of tokens the file defines
  // would size the tables by a number the file does not justify.
  const int64_t defined = static_cast<int64_t>(vit->size() + added.size());
  constexpr int64_t kMaxGap = int64_t{1} << 20;
  if (max_id >= defined + kMaxGap)
    throw_error({src, "model.vocab", -1},
                "token id " + std::to_string(max_id) + " is far past the " + std::to_string(defined) +
                    " tokens the file defines (ids may leave at most " + std::to_string(kMaxGap) + " unused)");
  const auto n = static_cast<size_t>(max_id + 1);
  spec.texts.assign(n, "");
  spec.kinds.assign(n, TokenKind::kUnused);
  spec.vocab.reserve(vit->size());
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    const auto id = static_cast<size_t>(it->get<int64_t>());
    if (spec.kinds[id] != TokenKind::kUnused)
      throw_error({src, "model.vocab." + it.key(), -1}, "id " + std::to_string(id) + " is used twice");
    spec.texts[id] = it.key();
    spec.kinds[id] = TokenKind::kNormal;
    spec.vocab.emplace(it.key(), static_cast<int32_t>(id));
  }
  // An added token may repeat a vocabulary entry (same id, same text: real tokenizers list
  // their special tokens in both), but one id standing for two texts would make the encoder
  // emit an id that decodes to the other text.
  std::unordered_map<std::string, size_t> added_text;
  for (const json& a : added) {
    const auto id = static_cast<size_t>(a["id"].get<int64_t>());
    const std::string text = a["content"].get<std::string>();
    if (spec.kinds[id] == TokenKind::kAdded || spec.kinds[id] == TokenKind::kSpecial)
      throw_error({src, "added_tokens", -1}, "id " + std::to_string(id) + " is given to two added tokens ('" +
                                                 spec.texts[id] + "' and '" + text + "')");
    if (spec.kinds[id] == TokenKind::kNormal && spec.texts[id] != text)
      throw_error({src, "added_tokens", -1}, "added token '" + text + "' has id " + std::to_string(id) +
                                                 ", the id of vocabulary token '" + spec.texts[id] +
                                                 "'; one id cannot stand for both");
    if (const auto [it, fresh] = added_text.emplace(text, id); !fresh)
      throw_error({src, "added_tokens", -1}, "added token '" + text + "' is added twice (ids " +
                                                 std::to_string(it->second) + " and " + std::to_string(id) +
                                                 ")");
    spec.texts[id] = text;
    spec.kinds[id] = truthy(a, "special") ? TokenKind::kSpecial : TokenKind::kAdded;
  }

  if (model.contains("merges") && !model["merges"].is_null()) {
    const json& merges = model["merges"];
    if (!merges.is_array()) throw_error({src, "model.merges", -1}, "not an array");
    spec.merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      const json& m = merges[r];
      const std::string key = "model.merges[" + std::to_string(r) + "]";
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos) throw_error({src, key, -1}, "merge '" + s + "' has no space");
        spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        throw_error({src, key, -1}, "merge is neither \"a b\" nor [a, b]: " + m.dump());
      }
    }
  }

  if (tj.contains("normalizer") && !tj["normalizer"].is_null()) {
    const json& nz = tj["normalizer"];
    const bool empty_seq = nz.is_object() && nz.value("type", "") == "Sequence" &&
                           nz.contains("normalizers") && nz["normalizers"].is_array() &&
                           nz["normalizers"].empty();
    if (!empty_seq) throw_error({src, "normalizer", -1}, "unsupported normalizer " + nz.dump());
  }
  bool byte_level = false;
  collect_pre(tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : json(), src, spec.split_regexes,
              byte_level);
  if (!byte_level)
    throw_error({src, "pre_tokenizer", -1}, "only byte-level BPE (a ByteLevel pre-tokenizer) is supported");
  if (tj.contains("decoder") && !tj["decoder"].is_null() && tj["decoder"].value("type", "") != "ByteLevel")
    throw_error({src, "decoder", -1}, "unsupported decoder " + tj["decoder"].dump() + " (only ByteLevel)");

  // BOS/EOS from the config, looked up among added tokens first, then the vocabulary.
  auto id_of = [&](const char* key) -> int32_t {
    const std::string t = config_token(cfg, key);
    if (t.empty()) return -1;
    for (const json& a : added)
      if (a["content"] == t) return static_cast<int32_t>(a["id"].get<int64_t>());
    auto it = spec.vocab.find(t);
    if (it == spec.vocab.end()) throw_error({src, key, -1}, "token '" + t + "' is not in the vocabulary");
    return it->second;
  };
  spec.bos = id_of("bos_token");
  spec.eos = id_of("eos_token");
  if (cfg && !cfg->is_null() && !cfg->is_object())
    throw_error({"tokenizer_config.json (beside " + src + ")", "", -1}, "is not a JSON object");
  if (cfg && cfg->is_object() && cfg->contains("add_bos_token") && !(*cfg)["add_bos_token"].is_boolean())
    throw_error({"tokenizer_config.json (beside " + src + ")", "add_bos_token", -1},
                "expected true or false, got " + (*cfg)["add_bos_token"].dump());
  spec.add_bos = cfg && cfg->is_object() && truthy(*cfg, "add_bos_token");
  return build_tokenizer(std::move(spec));
}

Tokenizer Tokenizer::from_hf_dir(const std::filesystem::path& dir) {
  const auto tj_path = dir / "tokenizer.json";
  if (!std::filesystem::is_regular_file(tj_path))
    throw_error({tj_path.string(), "", -1}, "tokenizer.json not found");
  const json tj = parse_json_bounded(read_input_file(tj_path, "tokenizer file", uint64_t{256} << 20), tj_path.string());
  const auto cfg_path = dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(cfg_path)) {
    const json cfg = parse_json_bounded(read_input_file(cfg_path, "tokenizer config", uint64_t{16} << 20), cfg_path.string());
    return from_hf_json(tj, &cfg, tj_path.string());
  }
  return from_hf_json(tj, nullptr, tj_path.string());
}

Tokenizer Tokenizer::from_hf_json(const json& tj, const json* cfg, const std::string& src) {
  try {
    return Tokenizer(tokenizer_from_hf_json(tj, cfg, src));
  } catch (const json::exception& e) {  // a value of the wrong JSON type: named with the file
    throw_error({src, "", -1}, std::string("a value has the wrong JSON type: ") + e.what());
  }
}

}  // namespace strata
