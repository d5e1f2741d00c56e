// Internal state of Tokenizer, shared by its loaders (HF JSON, GGUF) and encoders.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/regex_split.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata {

enum class TokenKind : uint8_t { kUnused, kNormal, kAdded, kSpecial };

// Greedy longest-match finder of added tokens over bytes (a byte trie).
class AddedTokenMatcher {
 public:
  void add(std::string_view text, int32_t id);
  // Longest added token starting at s[pos]: its id and byte length, or {-1, 0}.
  std::pair<int32_t, size_t> match(std::string_view s, size_t pos) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;
  };
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

// Everything a Tokenizer is built from, before the derived tables are made.
struct TokenizerSpec {
  std::string source;
  std::vector<std::string> texts;                           // by id; "" where unused
  std::vector<TokenKind> kinds;                             // by id
  std::unordered_map<std::string, int32_t> vocab;           // byte-level text -> id (BPE outputs)
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
  std::vector<std::string> split_regexes;
  int32_t bos = -1, eos = -1;
  bool add_bos = false;
};

struct Tokenizer::Impl {
  std::string source;
  std::vector<std::string> texts;  // token as stored
  std::vector<std::string> bytes;  // token as decoded bytes
  std::vector<TokenKind> kinds;
  std::unordered_map<std::string, int32_t> added_ids;  // added token content -> id
  std::vector<std::unique_ptr<SplitRegex>> splits;
  BpeMerges merges;
  std::array<int32_t, 256> byte_ids{};  // id of each single-byte token
  AddedTokenMatcher added;
  int32_t bos = -1, eos = -1;
  bool add_bos = false;

  // Piece bytes -> ids; bounded, cleared when full. Guarded by cache_mu.
  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  // Pieces of a section without added tokens (well-formed UTF-8), after all split regexes.
  void pre_tokenize(std::string_view text, std::vector<std::string_view>& pieces, bool use_jit = true) const;
  // BPE of one piece's bytes, appended to out.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void check_id(int32_t id) const;
};

// Validates a spec and builds the tables; throws strata::Error naming spec.source.
std::shared_ptr<const Tokenizer::Impl> build_tokenizer(TokenizerSpec spec);

// Bytes a byte-level token text stands for (characters outside the byte map are kept as
// their UTF-8).
std::string byte_level_decode(std::string_view text);
// Byte-level text of raw bytes.
std::string byte_level_encode(std::string_view bytes);

}  // namespace strata
