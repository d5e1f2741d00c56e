// Engram's tokenizer compression: vocabulary ids whose texts differ only by Unicode
// compatibility form, accents, case or surrounding whitespace share one compressed id, the
// input of the n-gram hash (deepseek-ai/Engram engram_demo_v1.py, CompressedTokenizer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace strata {

// The key of one decoded text, as the reference's HF `tokenizers` normalizer sequence gives
// it: NFKC, NFD, drop every combining mark (general category M: Mn, Mc and Me, as HF
// StripAccents does), lowercase each code point by its full context-free mapping (as Rust's
// char::to_lowercase: a final capital sigma becomes σ, not ς), collapse runs of [ \t\r\n]
// into one space; a string that is then exactly " " is kept as " "; otherwise White_Space is
// stripped at both ends and any U+E000 left (the reference's sentinel) becomes a space.
// utf8 must be well-formed UTF-8 (strata::Error otherwise).
std::string engram_normalize(std::string_view utf8);

// Compressed id of every vocabulary id (size tok.vocab_size()). Each id is decoded alone
// (Tokenizer::decode, added and special tokens as their text); a text holding U+FFFD keys by
// the raw token string (Tokenizer::token_text), any other by engram_normalize(text), or by
// the text itself when that is empty. Distinct keys in id order get the ids 0, 1, 2, ...
std::vector<int32_t> engram_token_map(const Tokenizer& tok);

}  // namespace strata
