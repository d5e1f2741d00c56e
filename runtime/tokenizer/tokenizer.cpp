#include "runtime/tokenizer/tokenizer.h"

#include <algorithm>

#include "runtime/common/error.h"
#include "runtime/tokenizer/tokenizer_impl.h"
#include "runtime/tokenizer/utf8.h"

namespace strata {
namespace {

constexpr size_t kMaxCachedPiece = 256;
constexpr size_t kMaxCacheEntries = 1 << 16;

}  // namespace

// ---------------------------------------------------------------------------------------
// Added-token trie

void AddedTokenMatcher::add(std::string_view text, int32_t id) {
  if (text.empty()) return;
  first_byte_[static_cast<uint8_t>(text[0])] = true;
  size_t node = 0;
  for (char ch : text) {
    const auto b = static_cast<uint8_t>(ch);
    auto& kids = nodes_[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), b,
                               [](const std::pair<uint8_t, int32_t>& kv, uint8_t v) { return kv.first < v; });
    if (it != kids.end() && it->first == b) {
      node = static_cast<size_t>(it->second);
    } else {
      const auto child = static_cast<int32_t>(nodes_.size());
      kids.insert(it, {b, child});
      nodes_.emplace_back();
      node = static_cast<size_t>(child);
    }
  }
  nodes_[node].token = id;
}

std::pair<int32_t, size_t> AddedTokenMatcher::match(std::string_view s, size_t pos) const {
  if (pos >= s.size() || !first_byte_[static_cast<uint8_t>(s[pos])]) return {-1, 0};
  std::pair<int32_t, size_t> best{-1, 0};
  size_t node = 0;
  for (size_t j = pos; j < s.size(); ++j) {
    const auto b = static_cast<uint8_t>(s[j]);
    const auto& kids = nodes_[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), b,
                               [](const std::pair<uint8_t, int32_t>& kv, uint8_t v) { return kv.first < v; });
    if (it == kids.end() || it->first != b) break;
    node = static_cast<size_t>(it->second);
    if (nodes_[node].token >= 0) best = {nodes_[node].token, j + 1 - pos};
  }
  return best;
}

// ---------------------------------------------------------------------------------------
// Byte-level text

std::string byte_level_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t start = i;
    const uint32_t cp = utf8::next_codepoint(text, i);
    const int b = utf8::codepoint_to_byte(cp);
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(text.substr(start, i - start));
    }
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  const auto& table = utf8::byte_to_codepoint();
  for (char ch : bytes) utf8::append(out, table[static_cast<uint8_t>(ch)]);
  return out;
}

// ---------------------------------------------------------------------------------------
// Building

std::shared_ptr<const Tokenizer::Impl> build_tokenizer(TokenizerSpec spec) {
  auto impl = std::make_shared<Tokenizer::Impl>();
  const std::string& src = spec.source;
  if (spec.texts.empty()) throw_error({src, "vocab", -1}, "tokenizer has no tokens");
  if (spec.texts.size() != spec.kinds.size())
    throw_error({src, "vocab", -1}, "token texts and kinds differ in count");

  for (int b = 0; b < 256; ++b) {
    const std::string t = byte_level_encode(std::string(1, static_cast<char>(b)));
    auto it = spec.vocab.find(t);
    if (it == spec.vocab.end())
      throw_error({src, "vocab", -1},
                  "vocabulary lacks the byte token '" + t + "' (byte " + std::to_string(b) + ")");
    // The encoder falls back to these ids for every byte: each must decode to its byte, not
    // to an added or special token that took its id or its text.
    if (spec.kinds[static_cast<size_t>(it->second)] != TokenKind::kNormal)
      throw_error({src, "vocab", -1}, "the byte token '" + t + "' (byte " + std::to_string(b) + ") has id " +
                                          std::to_string(it->second) + ", which is the added token '" +
                                          spec.texts[static_cast<size_t>(it->second)] + "'");
    impl->byte_ids[static_cast<size_t>(b)] = it->second;
  }

  std::vector<BpeMerges::Merge> merges;
  merges.reserve(spec.merges.size());
  for (size_t r = 0; r < spec.merges.size(); ++r) {
    // Plain references: clang 14 cannot capture structured bindings in a lambda.
    const std::string& l = spec.merges[r].first;
    const std::string& rt = spec.merges[r].second;
    auto lookup = [&](const std::string& t) {
      auto it = spec.vocab.find(t);
      if (it == spec.vocab.end())
        throw_error({src, "merges[" + std::to_string(r) + "]", -1},
                    "merge '" + l + " " + rt + "' references unknown token '" + t + "'");
      return it->second;
    };
    merges.push_back({lookup(l), lookup(rt), lookup(l + rt)});
  }
  impl->merges = BpeMerges(std::move(merges));

  impl->bytes.resize(spec.texts.size());
  for (size_t id = 0; id < spec.texts.size(); ++id) {
    const std::string& t = spec.texts[id];
    switch (spec.kinds[id]) {
      case TokenKind::kUnused:
        break;
      case TokenKind::kNormal:
        impl->bytes[id] = byte_level_decode(t);
        break;
      case TokenKind::kAdded:
      case TokenKind::kSpecial:
        impl->bytes[id] = t;
        if (!t.empty()) {
          impl->added.add(t, static_cast<int32_t>(id));
          impl->added_ids[t] = static_cast<int32_t>(id);
        }
        break;
    }
  }
  for (const std::string& re : spec.split_regexes)
    impl->splits.push_back(std::make_unique<SplitRegex>(re, src));

  const auto n = static_cast<int32_t>(spec.texts.size());
  if (spec.bos >= n) throw_error({src, "bos", -1}, "bos id " + std::to_string(spec.bos) + " is out of range");
  if (spec.eos >= n) throw_error({src, "eos", -1}, "eos id " + std::to_string(spec.eos) + " is out of range");
  impl->source = std::move(spec.source);
  impl->texts = std::move(spec.texts);
  impl->kinds = std::move(spec.kinds);
  impl->bos = spec.bos;
  impl->eos = spec.eos;
  impl->add_bos = spec.add_bos;
  return impl;
}

// ---------------------------------------------------------------------------------------
// Encoding

void Tokenizer::Impl::pre_tokenize(std::string_view text, std::vector<std::string_view>& pieces,
                                   bool use_jit) const {
  pieces.assign(1, text);
  std::vector<std::string_view> next;
  for (const auto& re : splits) {
    next.clear();
    for (std::string_view p : pieces) re->split(p, next, use_jit);
    pieces.swap(next);
  }
}

void Tokenizer::Impl::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  const bool cacheable = piece.size() < kMaxCachedPiece;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(std::string(piece));
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) ids[i] = byte_ids[static_cast<uint8_t>(piece[i])];
  merges.apply(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu);
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(std::string(piece), std::move(ids));
  }
}

void Tokenizer::Impl::check_id(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= texts.size())
    throw_error({source, "", -1}, "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                      std::to_string(texts.size()) + ")");
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  const Impl& im = *impl_;
  std::string clean;
  if (!utf8::is_valid(text)) {
    clean = utf8::sanitize(text);
    text = clean;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::vector<std::string_view> pieces;
  auto section = [&](std::string_view s) {
    if (s.empty()) return;
    im.pre_tokenize(s, pieces);
    for (std::string_view p : pieces) im.encode_piece(p, out);
  };
  size_t start = 0;
  if (parse_special && !im.added.empty()) {
    for (size_t i = 0; i < text.size();) {
      const auto [id, len] = im.added.match(text, i);
      if (id < 0) {
        ++i;
        continue;
      }
      section(text.substr(start, i - start));
      out.push_back(id);
      i += len;
      start = i;
    }
  }
  section(text.substr(start));
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding and accessors

std::string Tokenizer::token_bytes(int32_t id) const {
  impl_->check_id(id);
  return impl_->bytes[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string raw;
  for (int32_t id : ids) {
    impl_->check_id(id);
    raw += impl_->bytes[static_cast<size_t>(id)];
  }
  return utf8::is_valid(raw) ? raw : utf8::sanitize(raw);
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }

bool Tokenizer::is_eos(int32_t id) const {
  return id == impl_->eos || std::find(extra_eos_.begin(), extra_eos_.end(), id) != extra_eos_.end();
}

void Tokenizer::add_eos_ids(std::span<const int64_t> ids) {
  for (int64_t id : ids)
    if (id >= 0 && id <= INT32_MAX && !is_eos(static_cast<int32_t>(id))) extra_eos_.push_back(static_cast<int32_t>(id));
}
bool Tokenizer::add_bos() const { return impl_->add_bos; }
size_t Tokenizer::vocab_size() const { return impl_->texts.size(); }

std::string_view Tokenizer::token_text(int32_t id) const {
  impl_->check_id(id);
  return impl_->texts[static_cast<size_t>(id)];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->kinds.size() &&
         impl_->kinds[static_cast<size_t>(id)] == TokenKind::kSpecial;
}

int32_t Tokenizer::added_token_id(std::string_view text) const {
  auto it = impl_->added_ids.find(std::string(text));
  return it == impl_->added_ids.end() ? -1 : it->second;
}

}  // namespace strata
