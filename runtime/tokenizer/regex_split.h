// Split pre-tokenizer regexes on PCRE2 (8-bit, UTF mode, JIT when available).
//
// tokenizer.json regexes are written for Rust/Oniguruma and run by transformers.js as
// JavaScript `u` regexes; translate_regex() rewrites the few constructs whose meaning
// differs in PCRE2 so that matches equal the JavaScript ones:
//   \s / \S      -> the explicit ECMAScript white-space class (PCRE2 has no such set);
//   \uXXXX, \u{X} -> \x{X};
// \d, \w, \b stay ASCII (PCRE2 without UCP, as in JavaScript); \p{..} is Unicode either way.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

std::string translate_regex(std::string_view pattern);

// The split regexes of a GGUF `tokenizer.ggml.pre` name, or nullptr when unknown.
const std::vector<std::string>* gguf_pre_regexes(std::string_view pre_name);
// The GGUF pre name whose regexes equal `regexes`, or "" when none does.
std::string gguf_pre_name(const std::vector<std::string>& regexes);

class SplitRegex {
 public:
  // Compiles translate_regex(pattern); throws strata::Error (naming `source` and the
  // pattern offset) when PCRE2 rejects it.
  SplitRegex(const std::string& pattern, const std::string& source);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  const std::string& pattern() const { return pattern_; }
  bool has_jit() const { return jit_; }

  // "Isolated" split of well-formed UTF-8 `text`: every match is a piece and so is every
  // non-empty gap between matches; appended to out in order. use_jit=false forces the
  // PCRE2 interpreter (the reference twin of the JIT path).
  void split(std::string_view text, std::vector<std::string_view>& out, bool use_jit = true) const;

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace strata
