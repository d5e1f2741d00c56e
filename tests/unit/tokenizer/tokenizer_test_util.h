// Shared fixtures of the tokenizer tests: the real DeepSeek-V3 tokenizer (when installed),
// the synthetic one, and the corpus.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace strata::test {

// Directory of the installed DeepSeek-V3 tokenizer files (may not exist).
std::filesystem::path real_tokenizer_dir();
std::filesystem::path node_modules_dir();
// The real tokenizer, loaded once; nullptr when its files are absent.
const Tokenizer* real_tokenizer();
const Tokenizer& synthetic_tokenizer();

struct CorpusLine {
  std::string bytes;  // "text" as UTF-8, or the decoded "hex" bytes
  std::string note;
  bool from_hex = false;
};
std::vector<CorpusLine> load_corpus();

}  // namespace strata::test
