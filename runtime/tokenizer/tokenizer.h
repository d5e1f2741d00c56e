// Byte-level BPE tokenizer of the DeepSeek family, loaded from HF `tokenizer.json` (+
// `tokenizer_config.json`) or from GGUF `tokenizer.ggml.*` metadata.
//
// Encoding follows HF `tokenizers` as transformers.js implements it:
//   1. invalid UTF-8 in the input is replaced by U+FFFD exactly as a WHATWG TextDecoder
//      does (each maximal ill-formed subpart becomes one U+FFFD);
//   2. added tokens (special or not) are matched first, greedily left to right, longest
//      match at each position, when parse_special is true;
//   3. every other section goes through the pre-tokenizer: the Split regexes in order
//      (behaviour Isolated), then ByteLevel (bytes -> GPT-2 byte characters);
//   4. each piece is merged by BPE (lowest merge rank first, leftmost on ties).
// Regexes use JavaScript `u`-mode class semantics: \s is the ECMAScript white-space set,
// \d and \w are ASCII (see regex_split.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

class Tokenizer {
 public:
  // tokenizer.json (+ tokenizer_config.json when present, for bos/eos/add_bos). A missing
  // tokenizer.json or malformed JSON throws strata::Error naming the path (and byte offset).
  static Tokenizer from_hf_dir(const std::filesystem::path& dir);
  // tokenizer_config may be null. `source` names the origin in error messages.
  static Tokenizer from_hf_json(const nlohmann::json& tokenizer_json, const nlohmann::json* tokenizer_config,
                                const std::string& source);
  // GGUF key -> value object (GgufFile::metadata_json()).
  static Tokenizer from_gguf_metadata(const nlohmann::json& md, const std::string& source);

  // Token ids of text; no BOS is added. Never throws on any byte string.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  // Text of ids, invalid UTF-8 from partial byte tokens replaced by U+FFFD. An id outside
  // [0, vocab_size()) throws strata::Error naming it; ids inside with no token give "".
  std::string decode(std::span<const int32_t> ids) const;
  // Raw bytes of one token (may be part of a UTF-8 sequence); throws like decode.
  std::string token_bytes(int32_t id) const;

  int32_t bos_id() const;     // -1 when unknown
  int32_t eos_id() const;     // -1 when unknown
  // Whether generation ends at id: the EOS id or one of the ids added by add_eos_ids.
  bool is_eos(int32_t id) const;
  // More ids that end generation (the rest of a config's eos_token_id list).
  void add_eos_ids(std::span<const int64_t> ids);
  bool add_bos() const;       // whether prompts start with BOS
  size_t vocab_size() const;  // max id + 1 over the vocabulary and added tokens
  // Token as stored: byte-level text for vocabulary tokens, content for added tokens,
  // "" for an unused id. Throws strata::Error naming an id outside [0, vocab_size()).
  std::string_view token_text(int32_t id) const;
  bool is_special(int32_t id) const;  // an added token marked special (GGUF: control)
  // Added token id of an exact text, or -1.
  int32_t added_token_id(std::string_view text) const;

  // DeepSeek chat layout (tokenizer_config.json chat_template): BOS, system messages joined
  // by "\n\n", then "<｜User｜>"+content / "<｜Assistant｜>"+content+"<｜end▁of▁sentence｜>",
  // and "<｜Assistant｜>" when add_generation_prompt. Other roles throw strata::Error.
  std::string chat_prompt(const std::vector<ChatMessage>& msgs, bool add_generation_prompt) const;

  // tokenizer.ggml.{model, pre, tokens, token_type, merges, bos_token_id, eos_token_id,
  // add_bos_token}. vocab_rows: the model's vocabulary rows; ids past the tokenizer's get
  // "[PAD<id>]" entries of type UNUSED, so that llama.cpp-family readers find one token per
  // row (as their converter writes them). Ids are UINT32. Throws strata::Error when the split
  // regexes have no GGUF pre name.
  nlohmann::json to_gguf_metadata(int64_t vocab_rows = 0) const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
  std::vector<int32_t> extra_eos_;
};

// Streaming-safe detokenization: bytes of an incomplete UTF-8 sequence at the end are held
// back until the next token completes them. Output is always valid UTF-8.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}
  std::string push(int32_t id);
  // Emits what is held back (a dangling partial sequence becomes U+FFFD) and resets.
  std::string flush();

 private:
  const Tokenizer* tok_;
  std::string pending_;
};

// A small byte-level BPE tokenizer in the tokenizer.json schema: 256 byte tokens, merges
// learnt deterministically from a built-in English+CJK+code text, and the DeepSeek special
// tokens at the top ids; same pre-tokenizer regexes as DeepSeek-V3. vocab_size >= 300
// (throws strata::Error otherwise, or when the text cannot supply that many merges).
nlohmann::json make_synthetic_tokenizer_json(int vocab_size);
nlohmann::json make_synthetic_tokenizer_config_json();

}  // namespace strata
